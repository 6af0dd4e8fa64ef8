"""DIRECT's variants on planted pools: what one round buys, per variant and setting.

    python -m direct_ray.benchmarks.direct_variants [--k 2,3,10] [--b-parallel 1,10]
        [--noise 0,0.2] [--seeds 5] [--n 10000] [--budget 200] [--variants paper,lowest,...]

A planted pool has ``N`` examples, the last class holding ~90 % and the other ``K-1``
sharing the rest; the "model" outputs ``softmax(2.5 * onehot(true) + N(0, 1))``, so each
class's sorted list has a true cut that the labels have to find. The annotator is
persistent: ``noise * N`` examples, chosen at random, always come back as a random other
class. 2 % of the pool, drawn at random, is labeled (through the same annotator) before
the round; then one round of ``budget`` labels is bought.

Reported per variant and setting, as means over seeds (the share with its standard error):

* ``minority``: share of the labels bought whose true class is a minority class;
* ``covered``: minority classes with at least one true example bought (of ``K-1``);
* ``cut error``: mean over classes of ``|j_hat - j*|`` in list positions, ``j_hat`` the cut
  estimated from the observed labels after the round (the variant's tie rule) and ``j*``
  the cut of Definition 4.1 on all true labels;
* ``phase 1`` / ``phase 2``: labels bought by VReduce and near the cut, and the minority
  share of phase 1's labels (``p1 minority``, over the seeds where phase 1 bought any);
* ``ms``: wall time of the round.

The pools depend on the seed only, so every variant (and any outside implementation fed
through :func:`planted_setting`) sees the same pools and the same annotator.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from direct_ray.strategies import make_strategy
from direct_ray.strategies.base import UNLABELED
from direct_ray.strategies.direct import Direct
from direct_ray.strategies.reduction import TieRule, class_order, labeled_positions, row_max, threshold_estimate

MAJORITY_SHARE = 0.9
SIGNAL = 2.5
INITIAL_FRACTION = 0.02

# The paper's reading of every open choice (what ``direct_paper`` fixes).
_PAPER: dict[str, Any] = dict(
    threshold_tie="half",
    phase1_fraction=0.5,
    phase1_cap=None,
    version_space="paper",
    version_space_slack=0,
    phase1_order="random",
    phase2_order="random",
)
# name -> (registered strategy, constructor options); "default" is ``direct`` as shipped.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper": ("direct_paper", {}),
    "lowest": ("direct", {**_PAPER, "threshold_tie": "lowest"}),
    "midpoint": ("direct", {**_PAPER, "threshold_tie": "midpoint"}),
    "minority": ("direct", {**_PAPER, "threshold_tie": "minority"}),
    "lowest_cap60": ("direct", {**_PAPER, "threshold_tie": "lowest", "phase1_cap": 60}),
    **{
        f"lowest_near{slack}": (
            "direct",
            {**_PAPER, "threshold_tie": "lowest", "version_space": "near_optimal", "version_space_slack": slack},
        )
        for slack in (0, 1, 2)
    },
    **{
        f"{tie}_near0": ("direct", {**_PAPER, "threshold_tie": tie, "version_space": "near_optimal"})
        for tie in ("half", "midpoint", "minority")
    },
    "authors_like": ("direct", {**_PAPER, "threshold_tie": "lowest", "phase1_cap": 60, "phase1_order": "most_first"}),
    "default": ("direct", {}),
    "random": ("random", {}),
}


@dataclass(frozen=True)
class Setting:
    """One planted setting: number of classes, parallel annotators, share of examples relabelled."""

    k: int
    b_parallel: int
    noise: float


@dataclass(frozen=True)
class PlantedPool:
    """One seed's pool: model outputs, true and annotated labels, and the labels known at the start."""

    probs: np.ndarray
    truth: np.ndarray
    annotated: np.ndarray
    observed: np.ndarray


@dataclass(frozen=True)
class RoundResult:
    """The numbers of one round (see the module docstring)."""

    minority: float
    covered: int
    cut_error: float
    phase1: int
    phase1_minority: float
    phase2: int
    seconds: float


def planted_setting(seed: int, n: int, k: int, noise: float) -> PlantedPool:
    """The planted pool of the module docstring, a pure function of its arguments."""
    rng = np.random.default_rng([seed, n, k, int(round(noise * 1000))])
    minority = rng.random(n) >= MAJORITY_SHARE
    truth = np.where(minority, rng.integers(0, k - 1, n), k - 1)
    logits = SIGNAL * np.eye(k)[truth] + rng.normal(size=(n, k))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    annotated = truth.copy()
    flipped = rng.choice(n, int(round(noise * n)), replace=False)
    annotated[flipped] = (truth[flipped] + rng.integers(1, k, flipped.size)) % k
    observed = np.full(n, UNLABELED, dtype=np.int64)
    initial = rng.choice(n, int(round(INITIAL_FRACTION * n)), replace=False)
    observed[initial] = annotated[initial]
    return PlantedPool(probs, truth, annotated, observed)


def cut_error(pool: PlantedPool, observed: np.ndarray, tie: TieRule) -> float:
    """Mean over classes of ``|j_hat - j*|``: cut from ``observed`` (rule ``tie``) vs all true labels."""
    n, k = pool.probs.shape
    maxima = row_max(pool.probs)
    errors = []
    for c in range(k):
        order = class_order(pool.probs, c, maxima)
        estimate = threshold_estimate(*labeled_positions(observed[order], c), n, tie)
        true_cut = threshold_estimate(*labeled_positions(pool.truth[order], c), n, "lowest")
        errors.append(abs(estimate - true_cut))
    return float(np.mean(errors))


def summarize(pool: PlantedPool, bought: np.ndarray, phase1: np.ndarray, seconds: float, tie: TieRule) -> RoundResult:
    """The per-round numbers of the module docstring for the examples ``bought`` (``phase1``: those VReduce bought)."""
    k = pool.probs.shape[1]
    true_bought = pool.truth[bought]
    observed = pool.observed.copy()
    observed[bought] = pool.annotated[bought]
    covered = np.unique(true_bought[true_bought != k - 1]).size
    return RoundResult(
        minority=float(np.mean(true_bought != k - 1)),
        covered=int(covered),
        cut_error=cut_error(pool, observed, tie),
        phase1=int(phase1.size),
        phase1_minority=float(np.mean(pool.truth[phase1] != k - 1)) if phase1.size else float("nan"),
        phase2=int(bought.size) - int(phase1.size),
        seconds=seconds,
    )


class CountingAnnotator:
    """Returns the pool's annotated labels; counts single batches (VReduce) and queued lists.

    DIRECT buys phase 1 batch by batch and phase 2 as fixed lists through ``queue``, so the
    two counts are the labels of each phase.
    """

    def __init__(self, annotated: np.ndarray) -> None:
        self.annotated = annotated
        self.single: list[int] = []

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        self.single.extend(np.asarray(indices).tolist())
        return self.annotated[indices]

    def queue(self, indices: np.ndarray, b_parallel: int) -> np.ndarray:
        return self.annotated[indices]


def run_variant(variant: str, pool: PlantedPool, setting: Setting, budget: int, seed: int) -> RoundResult:
    """One round of ``variant`` on ``pool``; its selection generator depends on the seed only."""
    name, options = VARIANTS[variant]
    strategy = make_strategy(name, b_parallel=setting.b_parallel, **options)
    annotator = CountingAnnotator(pool.annotated)
    start = time.perf_counter()
    bought = strategy.select(pool.probs, pool.observed, budget, annotator, np.random.default_rng([seed, 2]))
    seconds = time.perf_counter() - start
    is_direct = isinstance(strategy, Direct)
    phase1 = np.array(annotator.single if is_direct else [], dtype=np.int64)
    tie = strategy.threshold_tie if is_direct else "lowest"
    return summarize(pool, bought, phase1, seconds, tie)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (0 for a single value)."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return mean, se


def table(rows: dict[tuple[Setting, str], list[RoundResult]], variants: Sequence[str]) -> None:
    """Two markdown tables: minority share per setting x variant, then every number per row."""
    settings = list(dict.fromkeys(s for s, _ in rows))
    print("| K | B_parallel | noise | " + " | ".join(variants) + " |")
    print("|---|---|---|" + "---|" * len(variants))
    for s in settings:
        cells = []
        for v in variants:
            m, se = mean_se([r.minority for r in rows[s, v]])
            cells.append(f"{m:.3f} ± {se:.3f}")
        print(f"| {s.k} | {s.b_parallel} | {s.noise:g} | " + " | ".join(cells) + " |")
    print()
    print("| K | B_parallel | noise | variant | minority | covered | cut error | phase 1 | p1 minority | phase 2 | ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in settings:
        for v in variants:
            rs = rows[s, v]
            m, se = mean_se([r.minority for r in rs])
            print(
                f"| {s.k} | {s.b_parallel} | {s.noise:g} | {v} | {m:.3f} ± {se:.3f} | "
                f"{statistics.fmean(r.covered for r in rs):.1f}/{s.k - 1} | "
                f"{statistics.fmean(r.cut_error for r in rs):.0f} | "
                f"{statistics.fmean(r.phase1 for r in rs):.0f} | {_nanmean([r.phase1_minority for r in rs])} | "
                f"{statistics.fmean(r.phase2 for r in rs):.0f} | "
                f"{1000 * statistics.fmean(r.seconds for r in rs):.0f} |",
            )


def _nanmean(values: Sequence[float]) -> str:
    kept = [v for v in values if v == v]
    return f"{statistics.fmean(kept):.3f}" if kept else "-"


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    return lambda text: [kind(x) for x in text.split(",") if x]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=_csv(int), default=[2, 3, 10], help="numbers of classes (comma-separated)")
    parser.add_argument("--b-parallel", type=_csv(int), default=[1, 10], help="B_parallel values (comma-separated)")
    parser.add_argument("--noise", type=_csv(float), default=[0.0, 0.2], help="shares of examples relabelled")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..S-1")
    parser.add_argument("--n", type=int, default=10_000, help="pool size")
    parser.add_argument("--budget", type=int, default=200, help="labels bought in the round")
    parser.add_argument(
        "--variants", type=_csv(str), default=list(VARIANTS), help=f"comma-separated, from: {','.join(VARIANTS)}"
    )
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rows: dict[tuple[Setting, str], list[RoundResult]] = {}
    for k in args.k:
        for b_parallel in args.b_parallel:
            for noise in args.noise:
                setting = Setting(k, b_parallel, noise)
                for seed in range(args.seeds):
                    pool = planted_setting(seed, args.n, k, noise)
                    for v in args.variants:
                        rows.setdefault((setting, v), []).append(run_variant(v, pool, setting, args.budget, seed))
    table(rows, args.variants)


if __name__ == "__main__":
    main()
