"""Per-trial learning curves from the results table, grouped by setting and method, averaged over seeds.

Vocabulary used across the analysis:

* a *setting* is what the data and annotators look like: dataset (its name carries the
  number of classes), noise model and noise rate;
* a *method* is how labels are bought: strategy and ``b_parallel``;
* a *trial* is one seed of one method in one setting, and its *curve* is one row per round,
  indexed by ``n_labeled`` (labels bought so far).

Everything here is pure numpy on top of the Arrow table: no plotting, no pandas.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from direct_ray.results.read import ResultsError
from direct_ray.results.schema import ACCURACY_COLUMNS, TRIAL_KEY_COLUMNS

# Curve metrics carried per trial (all numeric, one value per round).
METRICS = (*ACCURACY_COLUMNS, "n_minority_labels", "n_noisy_labels", "select_seconds")
# Columns that must be constant within one trial.
_TRIAL_KEYS = TRIAL_KEY_COLUMNS


@dataclass(frozen=True, order=True)
class Setting:
    """What the data and the annotators look like."""

    dataset: str
    num_classes: int
    noise_model: str
    noise_rate: float

    @property
    def noise_label(self) -> str:
        return "no noise" if self.noise_model == "none" else f"{self.noise_model} noise {self.noise_rate:g}"

    @property
    def label(self) -> str:
        return f"{self.dataset}, {self.noise_label}"


@dataclass(frozen=True, order=True)
class Method:
    """How labels are bought: the strategy, how many annotators work in parallel, and how they spend time.

    ``annotation`` names a non-default annotation setting (:func:`annotation_label`); empty
    for instant synchronous annotation, so studies without an ``annotation`` axis read as before.
    """

    strategy: str
    b_parallel: int
    annotation: str = ""

    @property
    def label(self) -> str:
        base = f"{self.strategy}, b_parallel={self.b_parallel}"
        return f"{base}, {self.annotation}" if self.annotation else base


def annotation_label(config: str | None) -> str:
    """A short name for an ``annotation_config`` JSON value ("" for instant synchronous annotation).

    ``async overlap 2 lognormal(30 s, sigma 1) speeds 1/1/2/0.5/1``: the mode (and the
    rounds' overlap when asynchronous), the latency model and its parameters, then speeds and
    stragglers when set.
    """
    data = json.loads(config) if config else {}
    latency = data.get("latency")
    if not latency and data.get("mode", "sync") == "sync":
        return ""
    parts = [data.get("mode", "sync")]
    if "overlap" in data:
        parts.append(f"overlap {data['overlap']}")
    if latency:
        params = (f"{latency['seconds']:g} s" if latency["model"] == "fixed"
                  else f"{latency['median']:g} s, sigma {latency['sigma']:g}")
        parts.append(f"{latency['model']}({params})")
    if data.get("speeds"):
        parts.append("speeds " + "/".join(f"{s:g}" for s in data["speeds"]))
    if data.get("straggler"):
        parts.append(f"stragglers {data['straggler']['probability']:g}x{data['straggler']['factor']:g}")
    return " ".join(parts)


@dataclass(frozen=True)
class TrialCurve:
    """One trial's curve, sorted by round; ``values[m][i]`` is metric ``m`` at ``n_labeled[i]``."""

    trial_id: str
    setting: Setting
    method: Method
    seed: int
    effective_b_parallel: int
    n_labeled: np.ndarray
    values: Mapping[str, np.ndarray]
    minority_from_observed: bool = False


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds and its standard error (NaN with fewer than two seeds)."""

    mean: float
    se: float
    n: int

    def format(self, digits: int = 3, percent: bool = False) -> str:
        """``0.812 ± 0.013 (4 seeds)``; ``0.812 (1 seed, no uncertainty)``; ``n/a`` with no value."""
        if self.n == 0 or math.isnan(self.mean):
            return "n/a"
        scale, unit = (100.0, "%") if percent else (1.0, "")
        seeds = f"{self.n} seed{'s' if self.n != 1 else ''}"
        if self.n < 2 or math.isnan(self.se):
            return f"{self.mean * scale:.{digits}f}{unit} ({seeds}, no uncertainty)"
        return f"{self.mean * scale:.{digits}f}{unit} ± {self.se * scale:.{digits}f}{unit} ({seeds})"


def estimate(values: Iterable[float]) -> Estimate:
    """Mean and standard error (sample std / sqrt(n)) of the finite values; NaNs are left out."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return Estimate(math.nan, math.nan, 0)
    se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else math.nan
    return Estimate(float(arr.mean()), se, int(arr.size))


@dataclass(frozen=True)
class MeanCurve:
    """A metric averaged over seeds at every ``n_labeled`` that all seeds reached."""

    n_labeled: np.ndarray
    mean: np.ndarray
    se: np.ndarray  # NaN with one seed
    n_seeds: int


def mean_curve(curves: Sequence[TrialCurve], metric: str = "balanced_accuracy") -> MeanCurve:
    """Average ``metric`` over the trials (seeds) at the ``n_labeled`` values common to all of them.

    Restricting to the common points keeps the mean from jumping where an unfinished seed
    stops; the standard error is the sample standard deviation over seeds / sqrt(seeds).
    """
    if not curves:
        raise ValueError("mean_curve needs at least one trial")
    common = curves[0].n_labeled
    for curve in curves[1:]:
        common = np.intersect1d(common, curve.n_labeled)
    stacked = np.stack(
        [curve.values[metric][np.searchsorted(curve.n_labeled, common)] for curve in curves]
    ).astype(np.float64)
    n = len(curves)
    se = stacked.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(common.shape, math.nan)
    return MeanCurve(common, stacked.mean(axis=0), se, n)


def _column(table: pa.Table, name: str) -> list | None:
    return table.column(name).to_pylist() if name in table.column_names else None


def trial_curves(table: pa.Table) -> list[TrialCurve]:
    """One :class:`TrialCurve` per ``trial_id`` in a ``curves`` table (as read by ``read_table``).

    ``n_minority_labels`` falls back to the minority part (classes 0..K-2) of
    ``n_labeled_per_class`` where a file lacks it; that counts *observed* labels, and the
    curve says so (``minority_from_observed``). ``effective_b_parallel`` falls back to
    ``b_parallel``. A trial whose keys change between rows, or that repeats a round, is an error.
    """
    if table.num_rows == 0:
        raise ResultsError("the curves table has no rows")
    table = table.sort_by([("trial_id", "ascending"), ("round", "ascending")])
    cols = {name: _column(table, name) for name in (*_TRIAL_KEYS, "trial_id", "round", "n_labeled",
                                                    "effective_b_parallel", "n_labeled_per_class", "annotation_config",
                                                    *METRICS)}
    trial_ids = np.asarray(cols["trial_id"], dtype=object)
    starts = np.flatnonzero(np.r_[True, trial_ids[1:] != trial_ids[:-1]])
    stops = np.r_[starts[1:], len(trial_ids)]
    curves = []
    for start, stop in zip(starts, stops):
        tid = trial_ids[start]
        keys = {}
        for key in _TRIAL_KEYS:
            distinct = set(cols[key][start:stop])
            if len(distinct) != 1:
                raise ResultsError(f"trial {tid}: column {key!r} changes between rounds ({sorted(map(str, distinct))})")
            keys[key] = distinct.pop()
        rounds = np.asarray(cols["round"][start:stop])
        if np.any(np.diff(rounds) == 0):
            raise ResultsError(f"trial {tid}: round {int(rounds[np.flatnonzero(np.diff(rounds) == 0)[0]])} appears twice")
        n_labeled = np.asarray(cols["n_labeled"][start:stop], dtype=np.int64)
        if np.any(np.diff(n_labeled) <= 0):
            raise ResultsError(f"trial {tid}: n_labeled does not grow from round to round")
        values = {}
        for metric in METRICS:
            raw = cols[metric][start:stop] if cols[metric] is not None else [None] * (stop - start)
            values[metric] = np.asarray([math.nan if v is None else v for v in raw], dtype=np.float64)
        from_observed = bool(np.isnan(values["n_minority_labels"]).any())
        if from_observed:
            k = int(keys["num_classes"])
            values["n_minority_labels"] = np.asarray(
                [sum(per_class[: k - 1]) for per_class in cols["n_labeled_per_class"][start:stop]], dtype=np.float64
            )
        effective = cols["effective_b_parallel"]
        effective = {v for v in effective[start:stop] if v is not None} if effective is not None else set()
        curves.append(
            TrialCurve(
                trial_id=str(tid),
                setting=Setting(str(keys["dataset"]), int(keys["num_classes"]), str(keys["noise_model"]),
                                float(keys["noise_rate"])),
                method=Method(str(keys["strategy"]), int(keys["b_parallel"]),
                              annotation_label(cols["annotation_config"][start] if cols["annotation_config"] else None)),
                seed=int(keys["seed"]),
                effective_b_parallel=int(max(effective)) if effective else int(keys["b_parallel"]),
                n_labeled=n_labeled,
                values=values,
                minority_from_observed=from_observed,
            )
        )
    return curves


Groups = Mapping[Setting, Mapping[Method, Sequence[TrialCurve]]]


def group_curves(curves: Iterable[TrialCurve]) -> dict[Setting, dict[Method, list[TrialCurve]]]:
    """``{setting: {method: [trial per seed, by seed]}}``, settings and methods sorted.

    Two trials with the same setting, method and seed cannot be averaged honestly (they
    differ in something the setting does not name, e.g. two noise configurations with the
    same model and rate, or two studies in one directory): that is an error naming both.
    """
    nested: dict[Setting, dict[Method, dict[int, TrialCurve]]] = defaultdict(lambda: defaultdict(dict))
    for curve in curves:
        seeds = nested[curve.setting][curve.method]
        if curve.seed in seeds:
            raise ResultsError(
                f"trials {seeds[curve.seed].trial_id} and {curve.trial_id} are both {curve.setting.label}, "
                f"{curve.method.label}, seed {curve.seed}; they differ in something else (noise configuration? "
                "two studies in one directory?); analyse them from separate results directories"
            )
        seeds[curve.seed] = curve
    return {
        setting: {method: [seeds[s] for s in sorted(seeds)] for method, seeds in sorted(methods.items())}
        for setting, methods in sorted(nested.items())
    }


def strategies(groups: Groups) -> list[str]:
    """Every strategy in the study, sorted."""
    return sorted({m.strategy for methods in groups.values() for m in methods})


__all__ = [
    "METRICS",
    "Estimate",
    "Groups",
    "MeanCurve",
    "Method",
    "Setting",
    "TrialCurve",
    "annotation_label",
    "estimate",
    "group_curves",
    "mean_curve",
    "strategies",
]
