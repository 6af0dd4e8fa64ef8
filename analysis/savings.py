"""The label-savings table: how many labels each method needs to reach a baseline's accuracy.

The rule is :data:`RULE` below; the report prints it verbatim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from analysis.curves import Estimate, Method, Setting, TrialCurve, estimate, mean_curve

RULE = """\
* Targets. For a baseline (random or GALAXY) in one setting, take its seed-averaged balanced
  accuracy curve, its first point ``a0`` (after the initial random batch) and its last point
  ``a1``; the target for fraction ``f`` is ``a0 + f * (a1 - a0)``. ``f = 1`` is the
  baseline's final accuracy. A baseline that does not improve (``a1 <= a0``) gives no targets.
* Labels needed. The first crossing of the target on a curve, linearly interpolated between
  the two rounds around it (the curve's first ``n_labeled`` if it starts at or above the
  target); NaN ("never reaches") if the curve stays below it.
* Saving. ``1 - labels(method) / labels(baseline)``, each on its seed-averaged curve.
* Baseline matching. A method is compared with the baseline at the same ``b_parallel``
  (else the baseline's smallest ``b_parallel``), so DIRECT with 5 parallel annotators is
  compared with GALAXY asked for 5 (which runs sequentially anyway).
* Uncertainty. Per seed: the same rule on seed ``s`` of the method against seed ``s`` of the
  baseline (pairs matched by seed; each seed's targets come from that seed's baseline curve);
  reported as mean ± standard error over the seeds where both reach the target, with the
  number of such seeds. One seed gives no uncertainty, and the report says so.
"""

DEFAULT_FRACTIONS = (0.5, 0.8, 0.9, 1.0)
BASELINES = ("random", "galaxy")


def labels_to_reach(n_labeled: np.ndarray, values: np.ndarray, target: float) -> float:
    """Labels at the first crossing of ``target``, interpolated linearly; NaN if never reached.

    ``n_labeled`` is increasing. If the first point is already at or above the target, the
    answer is the first ``n_labeled`` (nothing earlier was measured).
    """
    n_labeled = np.asarray(n_labeled, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    above = np.flatnonzero(values >= target)
    if above.size == 0:
        return math.nan
    i = int(above[0])
    if i == 0:
        return float(n_labeled[0])
    x0, x1, y0, y1 = n_labeled[i - 1], n_labeled[i], values[i - 1], values[i]
    return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))


def target_accuracy(values: np.ndarray, fraction: float) -> float:
    """``first + fraction * (last - first)``; NaN if the curve does not improve (last <= first).

    Capped at ``last`` so that rounding never puts the ``fraction = 1`` target above the
    curve's own final value (the baseline must reach its own final accuracy).
    """
    first, last = float(values[0]), float(values[-1])
    if not last > first:
        return math.nan
    return min(first + fraction * (last - first), last)


def saving(labels: float, baseline_labels: float) -> float:
    """``1 - labels / baseline_labels``: 0.9 means 90% fewer labels; NaN if either is NaN."""
    if math.isnan(labels) or math.isnan(baseline_labels):
        return math.nan
    return 1.0 - labels / baseline_labels


@dataclass(frozen=True)
class SavingsRow:
    """One method against one baseline at one target, in one setting."""

    setting: Setting
    method: Method
    baseline: Method
    fraction: float
    target: float  # balanced accuracy, from the baseline's seed-averaged curve
    baseline_labels: float
    labels: float  # NaN: never reaches the target
    best: float  # the method's best seed-averaged balanced accuracy (to say how far it fell short)
    saving: float  # NaN when the method never reaches the target
    per_seed: Estimate  # per-seed paired savings
    n_seeds: int  # seeds paired with the baseline (per_seed.n of them reached the target)

    @property
    def reached(self) -> bool:
        return not math.isnan(self.labels)


def baseline_for(method: Method, methods: Sequence[Method], baseline: str) -> Method | None:
    """The baseline method to compare ``method`` with: same ``b_parallel`` if run, else the smallest."""
    candidates = sorted((m for m in methods if m.strategy == baseline), key=lambda m: m.b_parallel)
    same = [m for m in candidates if m.b_parallel == method.b_parallel]
    return (same or candidates or [None])[0]


def per_seed_savings(
    trials: Sequence[TrialCurve], baseline_trials: Sequence[TrialCurve], fraction: float,
    metric: str = "balanced_accuracy",
) -> tuple[list[float], int]:
    """Savings of each seed against the same seed of the baseline (NaN where either misses); paired count."""
    by_seed = {t.seed: t for t in baseline_trials}
    out = []
    for trial in trials:
        base = by_seed.get(trial.seed)
        if base is None:
            continue
        target = target_accuracy(base.values[metric], fraction)
        if math.isnan(target):
            out.append(math.nan)
            continue
        base_labels = labels_to_reach(base.n_labeled, base.values[metric], target)
        out.append(saving(labels_to_reach(trial.n_labeled, trial.values[metric], target), base_labels))
    return out, len(out)


def savings_rows(
    setting: Setting,
    methods: Mapping[Method, Sequence[TrialCurve]],
    baseline: str,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    metric: str = "balanced_accuracy",
) -> list[SavingsRow]:
    """Every non-baseline method of one setting against ``baseline``, at every target fraction.

    Empty when the baseline was not run in this setting or does not improve on its first point.
    """
    rows = []
    for method, trials in methods.items():
        if method.strategy == baseline:
            continue
        base_method = baseline_for(method, list(methods), baseline)
        if base_method is None:
            continue
        base_curve = mean_curve(methods[base_method], metric)
        curve = mean_curve(trials, metric)
        for fraction in fractions:
            target = target_accuracy(base_curve.mean, fraction)
            if math.isnan(target):
                continue
            base_labels = labels_to_reach(base_curve.n_labeled, base_curve.mean, target)
            labels = labels_to_reach(curve.n_labeled, curve.mean, target)
            seed_savings, paired = per_seed_savings(trials, methods[base_method], fraction, metric)
            rows.append(
                SavingsRow(
                    setting=setting,
                    method=method,
                    baseline=base_method,
                    fraction=float(fraction),
                    target=target,
                    baseline_labels=base_labels,
                    labels=labels,
                    best=float(np.max(curve.mean)),
                    saving=saving(labels, base_labels),
                    per_seed=estimate(seed_savings),
                    n_seeds=paired,
                )
            )
    return rows


def savings_table(
    groups: Mapping[Setting, Mapping[Method, Sequence[TrialCurve]]],
    baselines: Sequence[str] = BASELINES,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> list[SavingsRow]:
    """:func:`savings_rows` for every setting and every baseline that was run."""
    return [
        row
        for setting, methods in groups.items()
        for baseline in baselines
        for row in savings_rows(setting, methods, baseline, fractions)
    ]


__all__ = [
    "BASELINES",
    "RULE",
    "DEFAULT_FRACTIONS",
    "SavingsRow",
    "baseline_for",
    "labels_to_reach",
    "per_seed_savings",
    "saving",
    "savings_rows",
    "savings_table",
    "target_accuracy",
]
