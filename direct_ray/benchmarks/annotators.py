"""Annotator benchmark: what one label costs through the selection actor's Ray calls.

    python -m direct_ray.benchmarks.annotators [--b-parallel 5] [--batches 300] [--repeats 3]

Starts ``b_parallel`` annotator actors on a 20,000-example pool with 20% uniform noise and
times, in the same Ray session, three ways of buying ``batches x b_parallel`` labels:

* baseline: the same number of empty actor calls (``__ray_ready__``), ``b_parallel`` at a
  time: the floor any per-label Ray call pays;
* single-label batches, as an adaptive strategy (DIRECT's VReduce, GALAXY) buys them: one
  query per annotator per call, ``b_parallel`` calls in flight, wait for all;
* worklists, as a fixed list is bought: each annotator gets its whole share in one call.

It prints milliseconds per batch of ``b_parallel`` labels and each way's ratio to the
baseline (medians over ``--repeats``), plus the CPU time the annotator processes spent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import psutil
import ray

from direct_ray.noise import NoiseConfig
from direct_ray.runtime.annotators import AnnotatorActor, Oracle
from direct_ray.runtime.session import start_local_ray

POOL = 20_000


def _timed(fn, pids: list[int]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the processes ``pids``) of ``fn()``."""

    def cpu() -> float:
        return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)

    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m direct_ray.benchmarks.annotators", description=__doc__.split("\n\n")[0])
    parser.add_argument("--b-parallel", type=int, default=5, help="annotators, and labels per batch (default 5)")
    parser.add_argument("--batches", type=int, default=300, help="batches per measurement (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per way; medians are printed (default 3)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray session (default 2)")
    args = parser.parse_args(argv)

    start_local_ray(args.cpus, quiet=True)
    try:
        team = [AnnotatorActor.remote(i) for i in range(args.b_parallel)]
        pids = ray.get([a.__ray_call__.remote(lambda _self: os.getpid()) for a in team])
        truth = [ray.put(np.random.default_rng(0).integers(0, 2, POOL))]
        oracle = Oracle(NoiseConfig(model="uniform", rate=0.2), num_classes=2, seed=0)
        ray.get([a.brief.remote("bench", truth, oracle) for a in team])
        n, b = args.batches, args.b_parallel

        def baseline() -> None:
            for _ in range(n):
                ray.get([a.__ray_ready__.remote() for a in team])

        def single() -> None:
            for batch in range(n):
                ray.get([a.label.remote("bench", [(batch * b + j, (1, batch, j))]) for j, a in enumerate(team)])

        def worklists() -> None:
            ray.get([a.label.remote("bench", [(batch * b + j, (2, batch, j)) for batch in range(n)]) for j, a in enumerate(team)])

        ways = {"baseline (empty calls)": baseline, "single-label batches": single, "worklists": worklists}
        results = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():  # interleaved, so machine noise hits every way
                results[name].append(_timed(fn, pids))
    finally:
        ray.shutdown()

    base = statistics.median(wall for wall, _ in results["baseline (empty calls)"])
    print(f"{n} batches of {b} labels, {b} annotators, {args.cpus} CPUs; medians of {args.repeats}")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:>24}: {wall / n * 1e3:6.2f} ms per batch ({wall / base:4.2f}x the baseline), "
              f"annotator CPU {cpu / (n * b) * 1e3:.2f} ms per label")


if __name__ == "__main__":
    main()
