"""Selection speed and memory: one round of each strategy against a sorting floor.

``python -m direct_ray.benchmarks.selection [--quick] [--strategies direct,galaxy,...]``

One round on a synthetic imbalanced pool (float32 softmax of noisy logits, so classes
separate imperfectly), 1,000 examples labeled at the start, an instant annotator that
returns the true labels. Every time is a median over ``--repeats`` runs, and the
repeats are interleaved (floor, then each strategy, then again) so that a machine that
gets busier or quieter mid-run shifts all of them alike. Each time is reported as a ratio to
a floor measured in the same process:

* DIRECT and GALAXY against ``K`` calls of ``np.argsort`` on ``N`` float32 scores (the
  per-class margin scores they have to sort), targets 3x and 5x;
* the uncertainty baselines against one such ``np.argsort``, target 1.5x.

Peak extra memory (``tracemalloc``, in a separate run) is compared with ``N * K * 8`` bytes
(one int64 per example and class). A second table times DIRECT and GALAXY for growing
``N`` and divides by ``N log2 N`` to show the growth.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from direct_ray.strategies import make_strategy
from direct_ray.strategies.reduction import margin_scores, row_max

ALL_STRATEGIES = ("direct", "galaxy", "random", "confidence", "margin", "entropy", "mlp")
PER_CLASS = {"direct": 3.0, "galaxy": 5.0}  # target, as a multiple of K argsorts
ONE_SORT_TARGET = 1.5  # every other strategy, as a multiple of one argsort
_GEN_CHUNK = 1 << 20


@dataclass(frozen=True)
class Setup:
    """One benchmark configuration (``--quick`` shrinks the sizes)."""

    n: int
    num_classes: int
    budget: int
    b_parallel: int
    initial: int
    repeats: int
    scaling_sizes: tuple[int, ...]


FULL = Setup(1_000_000, 10, 1000, 10, 1000, 3, (10**4, 10**5, 10**6, 10**7))
QUICK = Setup(100_000, 10, 1000, 10, 1000, 3, (10**3, 10**4, 10**5))


@dataclass(frozen=True)
class Pool:
    probs: np.ndarray
    truth: np.ndarray
    observed: np.ndarray


def make_pool(n: int, num_classes: int, initial: int, seed: int = 0) -> Pool:
    """An imbalanced pool (class sizes geometric from 1 to 20) with imperfect float32 softmax.

    Built in row chunks, in float32, so that 10^7 x 10 stays at the size of the result.
    """
    rng = np.random.default_rng(seed)
    prior = np.geomspace(1.0, 20.0, num_classes)
    truth = rng.choice(num_classes, size=n, p=prior / prior.sum())
    probs = np.empty((n, num_classes), dtype=np.float32)
    for start in range(0, n, _GEN_CHUNK):
        rows = slice(start, min(n, start + _GEN_CHUNK))
        logits = rng.standard_normal((rows.stop - rows.start, num_classes), dtype=np.float32)
        logits *= np.float32(1.5)
        logits[np.arange(logits.shape[0]), truth[rows]] += np.float32(2.5)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        probs[rows] = logits
    observed = np.full(n, -1, dtype=np.int64)
    start_set = rng.choice(n, size=min(initial, n // 2), replace=False)
    observed[start_set] = truth[start_set]
    return Pool(probs, truth, observed)


def select_once(name: str, pool: Pool, setup: Setup, seed: int) -> Callable[[], np.ndarray]:
    strategy = make_strategy(name, b_parallel=setup.b_parallel)
    truth = pool.truth

    def run() -> np.ndarray:
        return strategy.select(
            pool.probs, pool.observed, budget=setup.budget, annotate=lambda idx: truth[idx],
            rng=np.random.default_rng(seed),
        )

    return run


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by ``fn`` beyond what was allocated before it (tracemalloc)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def sort_floor(probs: np.ndarray) -> Callable[[], None]:
    """K argsorts of the per-class margin scores (float32), the work no per-class method avoids."""
    maxima = row_max(probs)
    scores = [margin_scores(probs, k, maxima) for k in range(probs.shape[1])]

    def run() -> None:
        for s in scores:
            np.argsort(s)

    return run


def main_table(setup: Setup, names: Sequence[str], seed: int, out=sys.stdout) -> None:
    pool = make_pool(setup.n, setup.num_classes, setup.initial, seed)
    n, k = pool.probs.shape
    floor = sort_floor(pool.probs)
    runs = {name: select_once(name, pool, setup, seed + 1) for name in names}
    floor_times: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(setup.repeats):
        floor_times.append(timed(floor))
        for name in names:
            times[name].append(timed(runs[name]))
    k_sorts = statistics.median(floor_times)
    one_sort = k_sorts / k
    reference = n * k * 8
    print(
        f"One round: N={n:,} K={k} budget={setup.budget:,} b_parallel={setup.b_parallel}, float32 probs, "
        f"{int((pool.observed >= 0).sum()):,} labeled at start, instant annotator; medians of {setup.repeats}",
        file=out,
    )
    print(f"floor: {k} x np.argsort = {k_sorts:.3f} s, one np.argsort = {one_sort:.4f} s", file=out)
    print(f"{'strategy':<11}{'time [s]':>9}  {'ratio':>7} {'to floor':<12}{'target':>7}  {'ok':<4}"
          f"{'peak extra MB':>14}  {'/ N*K*8':>8}", file=out)
    for name in names:
        t = statistics.median(times[name])
        per_class = name in PER_CLASS
        ratio = t / (k_sorts if per_class else one_sort)
        target = PER_CLASS.get(name, ONE_SORT_TARGET)
        memory = peak_memory(runs[name])
        print(
            f"{name:<11}{t:>9.3f}  {ratio:>6.2f}x {('K argsorts' if per_class else '1 argsort'):<12}"
            f"{target:>6.1f}x  {'yes' if ratio <= target else 'NO':<4}{memory / 2**20:>14.1f}  {memory / reference:>7.2f}x",
            file=out,
        )


def scaling_table(setup: Setup, names: Sequence[str], seed: int, out=sys.stdout) -> None:
    names = [name for name in names if name in PER_CLASS]
    if not names:
        return
    k = setup.num_classes
    print(f"\nGrowth with N (K={k}, budget={setup.budget:,}, b_parallel={setup.b_parallel}); "
          f"ns / (N log2 N) should stay flat, as the sorting floor's does", file=out)
    header = f"{'N':>12}{'K argsorts [s]':>16}{'ns/(N lg N)':>13}"
    for name in names:
        header += f"{name + ' [s]':>14}{'ns/(N lg N)':>13}{'/ floor':>9}"
    print(header, file=out)
    for n in setup.scaling_sizes:
        pool = make_pool(n, k, setup.initial, seed)
        repeats = 1 if n >= 10**7 else setup.repeats
        floor = sort_floor(pool.probs)
        runs = {name: select_once(name, pool, setup, seed + 1) for name in names}
        floor_times: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(repeats):
            floor_times.append(timed(floor))
            for name in names:
                times[name].append(timed(runs[name]))
        k_sorts = statistics.median(floor_times)
        row = f"{n:>12,}{k_sorts:>16.3f}{k_sorts / (n * np.log2(n)) * 1e9:>13.2f}"
        for name in names:
            t = statistics.median(times[name])
            row += f"{t:>14.3f}{t / (n * np.log2(n)) * 1e9:>13.2f}{t / k_sorts:>8.2f}x"
        print(row + ("  (1 repeat)" if repeats == 1 else ""), file=out)
        del pool, runs, floor


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    parser.add_argument(
        "--strategies", default=",".join(ALL_STRATEGIES),
        help=f"comma-separated subset of: {','.join(ALL_STRATEGIES)}",
    )
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_STRATEGIES))
    if unknown or not names:
        parser.error(f"--strategies must name some of {', '.join(ALL_STRATEGIES)}; got {args.strategies!r}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    args.names = names
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    setup = QUICK if args.quick else FULL
    if args.repeats is not None:
        setup = Setup(**{**setup.__dict__, "repeats": args.repeats})
    main_table(setup, args.names, args.seed)
    scaling_table(setup, args.names, args.seed)


if __name__ == "__main__":
    main()
