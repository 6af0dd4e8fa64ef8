"""Selection time and memory of the embedding baselines, next to DIRECT.

``python -m direct_ray.benchmarks.embedding_selection [--quick] [--strategies badge,bait,...]``

One round (budget 1,000, ``b_parallel`` 10, instant annotator) on synthetic imbalanced pools
of N = 100,000 and 1,000,000 examples, K = 10 classes, with 512-d float32 embeddings (2 GB
at N = 10^6): the probabilities and labels of :func:`direct_ray.benchmarks.selection.make_pool`
(class K-1 the majority, 1,000 labeled at the start), and embeddings ``mu_y + noise`` that
cluster by true class. ``--quick`` uses N = 10,000 and 100,000.

Each strategy runs twice with the same seed: once timed (wall clock), once under
``tracemalloc`` for the peak memory it allocates beyond its inputs. The last column is the
machine's 1-minute load average after the row: on a shared machine the times scale with
it. DIRECT's row reads "n/a" while :mod:`direct_ray.strategies.direct` does not exist.

Memory ceilings (none builds an N x N matrix; default options; measured peaks at
N = 10^6, K = 10, D = 512 in parentheses, next to the 2 GB of embeddings):

* badge: the candidates' float32 features, ``min(|U|, 50,000) * D * 4`` bytes, + O(N K) (~120 MB);
* cluster_margin: HAC on 4,000 examples, chunked nearest-centroid assignment (~215 MB);
* base: about two ``|U| x K`` float64 arrays (~0.2 GB);
* bait: 50,000 sampled float32 features + ``4,000 * K^2`` float64 state (~160 MB);
* similar: the ``20,000 x |Q|`` float32 kernel (|Q| <= 1,000: <= 80 MB) + O(N K) (~115 MB).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from direct_ray.benchmarks.selection import Pool, make_pool, peak_memory, timed
from direct_ray.strategies import make_strategy, strategy_class

EMBEDDING_STRATEGIES = ("badge", "cluster_margin", "base", "bait", "similar")
REFERENCE = "direct"
_GEN_CHUNK = 1 << 17


@dataclass(frozen=True)
class Setup:
    sizes: tuple[int, ...]
    num_classes: int = 10
    dim: int = 512
    budget: int = 1000
    b_parallel: int = 10
    initial: int = 1000


FULL = Setup(sizes=(100_000, 1_000_000))
QUICK = Setup(sizes=(10_000, 100_000))


def make_embeddings(truth: np.ndarray, num_classes: int, dim: int, seed: int) -> np.ndarray:
    """float32 ``mu_y + N(0, I)`` with class means of norm ~3, built in chunks (no float64 copy)."""
    rng = np.random.default_rng(seed)
    means = (3.0 / np.sqrt(dim)) * rng.standard_normal((num_classes, dim)).astype(np.float32)
    out = np.empty((truth.size, dim), dtype=np.float32)
    for start in range(0, truth.size, _GEN_CHUNK):
        rows = slice(start, min(truth.size, start + _GEN_CHUNK))
        out[rows] = rng.standard_normal((rows.stop - rows.start, dim), dtype=np.float32)
        out[rows] += means[truth[rows]]
    return out


def available(name: str) -> bool:
    """False when the strategy's module is not there yet (DIRECT is written in parallel)."""
    try:
        strategy_class(name)
    except ModuleNotFoundError:
        return False
    return True


def one_round(name: str, pool: Pool, embeddings: np.ndarray, setup: Setup, seed: int):
    def run() -> np.ndarray:
        strategy = make_strategy(name, b_parallel=setup.b_parallel)  # fresh: Cluster-Margin clusters once per object
        return strategy.select(
            pool.probs, pool.observed, budget=setup.budget, annotate=lambda idx: pool.truth[idx],
            rng=np.random.default_rng(seed), embeddings=embeddings,
        )

    return run


def measure(name: str, pool: Pool, embeddings: np.ndarray, setup: Setup, seed: int) -> Optional[tuple[float, int]]:
    if not available(name):
        return None
    run = one_round(name, pool, embeddings, setup, seed)
    seconds = timed(run)
    gc.collect()
    memory = peak_memory(run)
    gc.collect()
    return seconds, memory


def table(setup: Setup, names: Sequence[str], seed: int, out=sys.stdout) -> None:
    print(
        f"One round: K={setup.num_classes} D={setup.dim} float32 embeddings, budget={setup.budget:,}, "
        f"b_parallel={setup.b_parallel}, {setup.initial:,} labeled at start; time = one run, "
        f"memory = peak extra bytes in a second run (tracemalloc)",
        file=out,
    )
    print(f"{'N':>10}  {'strategy':<15}{'time [s]':>10}{'peak extra MB':>15}{'/ embeddings':>14}{'load':>7}", file=out)
    for n in setup.sizes:
        pool = make_pool(n, setup.num_classes, setup.initial, seed)
        embeddings = make_embeddings(pool.truth, setup.num_classes, setup.dim, seed + 1)
        for name in names:
            result = measure(name, pool, embeddings, setup, seed + 2)
            if result is None:
                print(f"{n:>10,}  {name:<15}{'n/a':>10}{'n/a':>15}{'n/a':>14}", file=out, flush=True)
                continue
            seconds, memory = result
            print(
                f"{n:>10,}  {name:<15}{seconds:>10.2f}{memory / 2**20:>15.1f}{memory / embeddings.nbytes:>13.3f}x"
                f"{os.getloadavg()[0]:>7.1f}",
                file=out, flush=True,
            )
        del pool, embeddings
        gc.collect()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    choices = (*EMBEDDING_STRATEGIES, REFERENCE)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10,000 and 100,000 instead of 10^5 and 10^6")
    parser.add_argument("--strategies", default=",".join(choices), help=f"comma-separated subset of: {','.join(choices)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    unknown = sorted(set(args.names) - set(choices))
    if unknown or not args.names:
        parser.error(f"--strategies must name some of {', '.join(choices)}; got {args.strategies!r}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    table(QUICK if args.quick else FULL, args.names, args.seed)
    print(f"total {time.perf_counter() - start:.0f} s", file=sys.stdout)


if __name__ == "__main__":
    main()
