"""The report's tables, as markdown (for people) and CSV (for other tools); no matplotlib needed."""

from __future__ import annotations

import csv
import math
from itertools import groupby
from pathlib import Path
from typing import Sequence

from analysis.budget import BudgetSummary
from analysis.savings import BASELINES, SavingsRow


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (pipes in cells escaped)."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _labels(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.0f}"


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def describe_saving(row: SavingsRow) -> tuple[str, str, str]:
    """(labels needed, saving, per-seed saving) as words a reader can take in at a glance."""
    if not row.reached:
        return "never reaches", f"never reaches (best {row.best:.3f})", _per_seed(row)
    return _labels(row.labels), _percent(row.saving), _per_seed(row)


def _per_seed(row: SavingsRow) -> str:
    est, paired = row.per_seed, row.n_seeds
    if paired == 1:
        return "one seed: no uncertainty" if est.n else "the one seed never reaches"
    if est.n == 0:
        return f"no seed reaches (0 of {paired})"
    if est.n == 1:
        return f"{_percent(est.mean)} (only 1 of {paired} seeds reaches: no uncertainty)"
    short = f"; {paired - est.n} of {paired} never reach" if est.n < paired else ""
    return f"{_percent(est.mean)} ± {_percent(est.se)} ({est.n} seeds{short})"


def _row_order(row: SavingsRow) -> tuple:
    """Setting, then baselines in the order of ``BASELINES`` (random first), then method and target."""
    rank = BASELINES.index(row.baseline.strategy) if row.baseline.strategy in BASELINES else len(BASELINES)
    return row.setting, rank, row.baseline, row.method, row.fraction


_SAVINGS_HEADER = ("method", "vs baseline", "target bal. acc.", "baseline labels", "labels needed", "saving",
                   "per-seed saving (mean ± SE)")


def savings_markdown(rows: Sequence[SavingsRow], fraction: float | None = None) -> str:
    """One table per setting; only the rows at ``fraction`` if given (else a target column per row)."""
    if fraction is not None:
        rows = [r for r in rows if r.fraction == fraction]
    if not rows:
        return "_No savings to report: neither random nor galaxy was run, or the baseline never improved._"
    parts = []
    for setting, items in groupby(sorted(rows, key=_row_order),
                                  key=lambda r: r.setting):
        body = []
        for r in items:
            labels, saving, per_seed = describe_saving(r)
            target = f"{r.target:.3f}" if fraction is not None else f"{100 * r.fraction:g}% of gain: {r.target:.3f}"
            body.append([r.method.label, r.baseline.label, target, _labels(r.baseline_labels), labels, saving,
                         per_seed])
        parts.append(f"**{setting.label}**\n\n" + markdown_table(_SAVINGS_HEADER, body))
    return "\n\n".join(parts)


def summary_markdown(summaries: Sequence[BudgetSummary]) -> str:
    """Fixed-budget view of every setting and method."""
    header = ("setting", "method", "effective b_parallel", "seeds", "labels (budget)", "bal. acc. at budget",
              "AUC (normalised)", "minority labels at budget", "selection s / round")
    body = [
        [s.setting.label, s.method.label,
         f"{s.effective_b_parallel}" + (" (sequential)" if s.effective_b_parallel < s.method.b_parallel else ""),
         str(s.n_seeds), f"{s.budget.low}-{s.budget.high}", s.accuracy.format(3), s.auc.format(3),
         s.minority_labels.format(1) + (" (observed)" if s.minority_from_observed else ""), s.select_seconds.format(2)]
        for s in summaries
    ]
    return markdown_table(header, body)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Plain CSV with a header row; NaN written as an empty cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])
    return path


def savings_csv(rows: Sequence[SavingsRow], path: Path) -> Path:
    """Every savings row with raw numbers (fractions, not percent)."""
    header = ("dataset", "num_classes", "noise_model", "noise_rate", "strategy", "b_parallel", "baseline",
              "baseline_b_parallel", "fraction", "target_balanced_accuracy", "baseline_labels", "labels", "saving",
              "per_seed_saving_mean", "per_seed_saving_se", "seeds_reached", "seeds_paired")
    return write_csv(path, header, [
        (r.setting.dataset, r.setting.num_classes, r.setting.noise_model, r.setting.noise_rate, r.method.strategy,
         r.method.b_parallel, r.baseline.strategy, r.baseline.b_parallel, r.fraction, r.target, r.baseline_labels,
         r.labels, r.saving, r.per_seed.mean, r.per_seed.se, r.per_seed.n, r.n_seeds)
        for r in rows
    ])


def summary_csv(summaries: Sequence[BudgetSummary], path: Path) -> Path:
    """Every fixed-budget summary with raw numbers."""
    header = ("dataset", "num_classes", "noise_model", "noise_rate", "strategy", "b_parallel",
              "effective_b_parallel", "seeds", "budget_low", "budget", "balanced_accuracy_mean",
              "balanced_accuracy_se", "auc_mean", "auc_se", "minority_labels_mean", "minority_labels_se",
              "select_seconds_mean")
    return write_csv(path, header, [
        (s.setting.dataset, s.setting.num_classes, s.setting.noise_model, s.setting.noise_rate, s.method.strategy,
         s.method.b_parallel, s.effective_b_parallel, s.n_seeds, s.budget.low, s.budget.high, s.accuracy.mean,
         s.accuracy.se, s.auc.mean, s.auc.se, s.minority_labels.mean, s.minority_labels.se, s.select_seconds.mean)
        for s in summaries
    ])


__all__ = ["describe_saving", "markdown_table", "savings_csv", "savings_markdown", "summary_csv",
           "summary_markdown", "write_csv"]
