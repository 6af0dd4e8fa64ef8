"""Annotation time: learning curves against simulated annotation time, time to target, team utilisation.

A trial whose annotators take simulated time (a study with an ``annotation`` axis, see
``docs/async.md``) records per round ``annotation_seconds`` (the wall time to buy the round's
labels) and ``annotator_busy_seconds`` (the summed labelling time of the team). From them:

* the *annotation clock* of a trial after round ``r`` is the sum of ``annotation_seconds``
  up to ``r`` (training takes no simulated time), so a learning curve can be drawn against
  hours of annotation as well as against labels;
* *time to target*: beside the labels a method needs to reach a balanced accuracy, the
  annotation hours it needs. Targets are fractions of the way from the setting's first-round
  accuracy (mean over all its trials) to the lowest final seed-averaged accuracy among its
  methods, so every method reaches the last one;
* *team utilisation*: ``busy / (B_parallel x wall)``, the share of the paid team time spent
  labelling (GALAXY, one query at a time, uses one annotator of ``B_parallel``).

Trials without these columns, or whose labels were all instant, are left out: the section is
empty for a study without annotation time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import pyarrow as pa

from analysis.curves import Estimate, Groups, Method, Setting, TrialCurve, estimate
from analysis.savings import labels_to_reach
from analysis.tables import markdown_table

DEFAULT_FRACTIONS = (0.5, 0.8, 0.9, 1.0)
_HOUR = 3600.0


@dataclass(frozen=True)
class Clock:
    """One trial's annotation clock: cumulative hours after each round, and its team's totals."""

    hours: np.ndarray  # cumulative simulated annotation hours after each round (by round)
    busy_hours: float
    wall_hours: float


def trial_clocks(table: pa.Table) -> dict[str, Clock]:
    """Each trial's clock, from a ``curves`` table; trials without annotation time are left out."""
    needed = ("trial_id", "round", "annotation_seconds", "annotator_busy_seconds")
    if any(name not in table.column_names for name in needed):
        return {}
    table = table.sort_by([("trial_id", "ascending"), ("round", "ascending")])
    ids = table.column("trial_id").to_pylist()
    seconds = np.asarray([math.nan if v is None else v for v in table.column("annotation_seconds").to_pylist()])
    busy = np.asarray([math.nan if v is None else v for v in table.column("annotator_busy_seconds").to_pylist()])
    clocks = {}
    start = 0
    for stop in [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]] + [len(ids)]:
        wall = seconds[start:stop]
        if np.isfinite(wall).all() and wall.sum() > 0:
            clocks[ids[start]] = Clock(np.cumsum(wall) / _HOUR, float(busy[start:stop].sum()) / _HOUR, float(wall.sum()) / _HOUR)
        start = stop
    return clocks


def timed_groups(groups: Groups, clocks: Mapping[str, Clock]) -> dict[Setting, dict[Method, list[TrialCurve]]]:
    """The groups restricted to trials with annotation time (settings or methods left empty are dropped)."""
    out: dict[Setting, dict[Method, list[TrialCurve]]] = {}
    for setting, methods in groups.items():
        kept = {m: [c for c in curves if c.trial_id in clocks] for m, curves in methods.items()}
        kept = {m: curves for m, curves in kept.items() if curves}
        if kept:
            out[setting] = kept
    return out


@dataclass(frozen=True)
class TimeToTarget:
    """Labels and annotation hours one method needs to reach one target (per seed: mean ± se)."""

    setting: Setting
    method: Method
    fraction: float
    target: float
    labels: Estimate
    hours: Estimate


def _targets(methods: Mapping[Method, Sequence[TrialCurve]], fractions: Sequence[float]) -> list[tuple[float, float]]:
    first = float(np.mean([c.values["balanced_accuracy"][0] for cs in methods.values() for c in cs]))
    last = min(float(np.mean([c.values["balanced_accuracy"][-1] for c in cs])) for cs in methods.values())
    if not last > first:
        return []
    return [(f, first + f * (last - first)) for f in fractions]


def time_to_target(groups: Groups, clocks: Mapping[str, Clock],
                   fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[TimeToTarget]:
    """For every timed setting and method: labels and hours to each target (see the module docstring)."""
    rows = []
    for setting, methods in timed_groups(groups, clocks).items():
        for fraction, target in _targets(methods, fractions):
            for method, curves in methods.items():
                labels = [labels_to_reach(c.n_labeled, c.values["balanced_accuracy"], target) for c in curves]
                hours = [labels_to_reach(clocks[c.trial_id].hours, c.values["balanced_accuracy"], target) for c in curves]
                rows.append(TimeToTarget(setting, method, fraction, target, estimate(labels), estimate(hours)))
    return rows


@dataclass(frozen=True)
class Utilisation:
    """A method's team utilisation in one setting: pooled over its seeds, and per seed."""

    setting: Setting
    method: Method
    pooled: float
    per_seed: Estimate
    wall_hours: Estimate


def utilisation(groups: Groups, clocks: Mapping[str, Clock]) -> list[Utilisation]:
    """``busy / (B_parallel x wall)`` per setting and method (strategy, annotation, b_parallel)."""
    rows = []
    for setting, methods in timed_groups(groups, clocks).items():
        for method, curves in methods.items():
            trial = [clocks[c.trial_id] for c in curves]
            pooled = sum(t.busy_hours for t in trial) / (method.b_parallel * sum(t.wall_hours for t in trial))
            per_seed = estimate(t.busy_hours / (method.b_parallel * t.wall_hours) for t in trial)
            rows.append(Utilisation(setting, method, pooled, per_seed, estimate(t.wall_hours for t in trial)))
    return rows


def _method_cells(method: Method) -> list[str]:
    return [method.strategy, method.annotation or "sync (instant)", str(method.b_parallel)]


def time_to_target_markdown(rows: Sequence[TimeToTarget]) -> str:
    body = [[r.setting.label, *_method_cells(r.method), f"{r.fraction:.0%} ({r.target:.3f})",
             r.labels.format(0), r.hours.format(2)] for r in rows]
    return markdown_table(["setting", "strategy", "annotation", "b_parallel", "target", "labels", "annotation hours"],
                          body)


def utilisation_markdown(rows: Sequence[Utilisation]) -> str:
    body = [[r.setting.label, *_method_cells(r.method), f"{r.pooled:.3f}", r.per_seed.format(3), r.wall_hours.format(2)]
            for r in rows]
    return markdown_table(["setting", "strategy", "annotation", "b_parallel", "utilisation (pooled)",
                           "utilisation (per seed)", "annotation hours"], body)


def time_curves_figure(groups: Groups, clocks: Mapping[str, Clock], path: Path) -> Optional[Path]:
    """Balanced accuracy against annotation hours (seed means), one panel per timed setting; None without matplotlib."""
    from analysis.plots import pyplot

    plt = pyplot()
    timed = timed_groups(groups, clocks)
    if plt is None or not timed:
        return None
    fig, axes = plt.subplots(1, len(timed), figsize=(6.5 * len(timed), 4.5), squeeze=False)
    for ax, (setting, methods) in zip(axes[0], timed.items()):
        for method, curves in methods.items():
            rounds = min(len(c.n_labeled) for c in curves)
            hours = np.mean([clocks[c.trial_id].hours[:rounds] for c in curves], axis=0)
            accuracy = np.mean([c.values["balanced_accuracy"][:rounds] for c in curves], axis=0)
            ax.plot(hours, accuracy, marker="o", markersize=3, label=method.label)
        ax.set_title(setting.label)
        ax.set_xlabel("simulated annotation hours")
        ax.set_ylabel("balanced accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def annotation_section(table: pa.Table, groups: Groups, out_dir: Path, figures: bool,
                       fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Optional[str]:
    """The report's *Annotation time* section (markdown), or None when no trial took annotation time."""
    clocks = trial_clocks(table)
    if not timed_groups(groups, clocks):
        return None
    figure = time_curves_figure(groups, clocks, out_dir / "annotation_time.png") if figures else None
    parts = [
        "## Annotation time\n\nSimulated annotation time (never slept; `docs/async.md`): the annotators' wall "
        "time to buy each round's labels, summed over rounds (training takes no simulated time).",
        f"![balanced accuracy against annotation hours]({figure.relative_to(out_dir).as_posix()})"
        if figure is not None else "_No figure (matplotlib missing or figures turned off)._",
        "### Team utilisation\n\n`busy / (b_parallel x wall)`: the share of the paid team time spent labelling "
        "(1 = nobody ever waits).\n\n" + utilisation_markdown(utilisation(groups, clocks)),
        "### Labels and hours to target\n\nTargets are fractions of the way from the setting's first-round "
        "balanced accuracy to the lowest final seed-averaged one among its methods; mean ± standard error over "
        "seeds.\n\n" + time_to_target_markdown(time_to_target(groups, clocks, fractions)),
    ]
    return "\n\n".join(parts)


__all__ = [
    "Clock",
    "TimeToTarget",
    "Utilisation",
    "annotation_section",
    "time_to_target",
    "trial_clocks",
    "utilisation",
]
