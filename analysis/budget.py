"""Fixed-budget summaries: accuracy at a budget and area under the learning curve, per method.

These feed the noise-robustness and b_parallel views and the summary table. The budget is
per dataset: by default the largest ``n_labeled`` that every trial of the dataset reached
(so every method is read at the same point), or one the user names. The area under the
curve is normalised by the budget range, so it reads as the mean balanced accuracy over
``[first common n_labeled, budget]`` and is comparable across studies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from analysis.curves import Estimate, Groups, Method, Setting, TrialCurve, estimate


def value_at(n_labeled: np.ndarray, values: np.ndarray, budget: float) -> float:
    """``values`` at ``budget`` labels, linearly interpolated; NaN outside the curve's range."""
    if budget < n_labeled[0] or budget > n_labeled[-1]:
        return math.nan
    return float(np.interp(budget, n_labeled, values))


def normalized_auc(n_labeled: np.ndarray, values: np.ndarray, low: float, high: float) -> float:
    """Trapezoid area under the curve on ``[low, high]`` divided by ``high - low``.

    The curve is interpolated at both ends; NaN if the curve does not cover the range.
    ``low == high`` gives the value at that point.
    """
    if low > high or low < n_labeled[0] or high > n_labeled[-1]:
        return math.nan
    if low == high:
        return value_at(n_labeled, values, low)
    inside = n_labeled[(n_labeled > low) & (n_labeled < high)]
    grid = np.concatenate([[low], inside, [high]]).astype(np.float64)
    ys = np.interp(grid, n_labeled, values)
    return float(np.sum((ys[1:] + ys[:-1]) / 2.0 * np.diff(grid)) / (high - low))


@dataclass(frozen=True)
class Budget:
    """The range of labels a dataset's methods are compared over."""

    low: int  # the first n_labeled every trial has (the initial batch)
    high: int  # the budget


def dataset_budgets(groups: Groups, budget: int | None = None) -> dict[str, Budget]:
    """Per dataset: ``low`` = the largest first ``n_labeled``, ``high`` = ``budget`` or the
    smallest last ``n_labeled`` over the dataset's trials (the last budget every trial reached)."""
    firsts: dict[str, list[int]] = {}
    lasts: dict[str, list[int]] = {}
    for setting, methods in groups.items():
        for trials in methods.values():
            for t in trials:
                firsts.setdefault(setting.dataset, []).append(int(t.n_labeled[0]))
                lasts.setdefault(setting.dataset, []).append(int(t.n_labeled[-1]))
    return {
        d: Budget(max(firsts[d]), int(budget) if budget is not None else min(lasts[d])) for d in sorted(firsts)
    }


@dataclass(frozen=True)
class BudgetSummary:
    """One method in one setting at the dataset's budget, over seeds."""

    setting: Setting
    method: Method
    budget: Budget
    effective_b_parallel: int
    accuracy: Estimate  # balanced accuracy at the budget
    auc: Estimate  # normalised area under the balanced-accuracy curve up to the budget
    minority_labels: Estimate  # minority labels bought by the budget
    select_seconds: Estimate  # selection (annotation) wall time per round, mean over rounds
    n_seeds: int
    minority_from_observed: bool


def summarize(setting: Setting, method: Method, trials: Sequence[TrialCurve], budget: Budget) -> BudgetSummary:
    """Per-seed values at the budget, then mean ± standard error over seeds (seeds short of it drop out)."""
    def per_seed(fn) -> Estimate:
        return estimate(fn(t) for t in trials)

    return BudgetSummary(
        setting=setting,
        method=method,
        budget=budget,
        effective_b_parallel=max(t.effective_b_parallel for t in trials),
        accuracy=per_seed(lambda t: value_at(t.n_labeled, t.values["balanced_accuracy"], budget.high)),
        auc=per_seed(lambda t: normalized_auc(t.n_labeled, t.values["balanced_accuracy"], budget.low, budget.high)),
        minority_labels=per_seed(lambda t: value_at(t.n_labeled, t.values["n_minority_labels"], budget.high)),
        select_seconds=per_seed(lambda t: float(np.nanmean(t.values["select_seconds"]))
                                if np.isfinite(t.values["select_seconds"]).any() else math.nan),
        n_seeds=len(trials),
        minority_from_observed=any(t.minority_from_observed for t in trials),
    )


def budget_summaries(groups: Groups, budget: int | None = None) -> list[BudgetSummary]:
    """:func:`summarize` for every setting and method, each at its dataset's budget."""
    budgets = dataset_budgets(groups, budget)
    return [
        summarize(setting, method, trials, budgets[setting.dataset])
        for setting, methods in groups.items()
        for method, trials in methods.items()
    ]


def robustness_series(
    summaries: Sequence[BudgetSummary],
) -> dict[tuple[str, str], dict[Method, list[BudgetSummary]]]:
    """``{(dataset, noise model): {method: summaries sorted by noise rate}}`` for each real noise model.

    The clean runs (noise model ``none``) are the rate-0 point of every noise model's series.
    Empty when the study has no noise model other than ``none``.
    """
    clean: dict[tuple[str, Method], BudgetSummary] = {
        (s.setting.dataset, s.method): s for s in summaries if s.setting.noise_model == "none"
    }
    series: dict[tuple[str, str], dict[Method, list[BudgetSummary]]] = {}
    for s in summaries:
        if s.setting.noise_model == "none":
            continue
        series.setdefault((s.setting.dataset, s.setting.noise_model), {}).setdefault(s.method, []).append(s)
    for (dataset, _), methods in series.items():
        for method, items in methods.items():
            base = clean.get((dataset, method))
            if base is not None and all(i.setting.noise_rate != 0 for i in items):
                items.append(base)
            items.sort(key=lambda i: i.setting.noise_rate)
    return {key: dict(sorted(series[key].items())) for key in sorted(series)}


def b_parallel_series(summaries: Sequence[BudgetSummary]) -> dict[Setting, dict[str, list[BudgetSummary]]]:
    """``{setting: {strategy: summaries sorted by b_parallel}}``: the effect of parallel annotators."""
    out: dict[Setting, dict[str, list[BudgetSummary]]] = {}
    for s in summaries:
        out.setdefault(s.setting, {}).setdefault(s.method.strategy, []).append(s)
    for strategies in out.values():
        for items in strategies.values():
            items.sort(key=lambda i: i.method.b_parallel)
    return {setting: dict(sorted(out[setting].items())) for setting in sorted(out)}


__all__ = [
    "Budget",
    "BudgetSummary",
    "b_parallel_series",
    "budget_summaries",
    "dataset_budgets",
    "normalized_auc",
    "robustness_series",
    "summarize",
    "value_at",
]
