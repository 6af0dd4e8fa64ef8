"""Trial benchmarks: DIRECT vs random on digits, Ray overhead, peak memory on a big pool.

    python -m direct_ray.benchmarks.trial [--quick] [--skip-memory]

1. DIRECT and random, same seed and budget, on the embedded digits (K = 2): balanced
   accuracy and minority labels bought per round.
2. Ray overhead of the default workload: the share of each round's wall time spent outside
   train, score and select (actor calls, task scheduling, bookkeeping, checkpoints).
3. Peak memory of a trial on a 1,000,000 x 64 float32 features pool: the private memory
   of the session's processes plus the object store (see :class:`MemorySampler`), sampled
   continuously, against the size of the inputs; the same trial on a tiny pool
   gives the fixed cost of the trial's actor processes, so the part that scales with the
   inputs is reported separately.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import ray

from direct_ray.config import TrialConfig
from direct_ray.data import DatasetSpec
from direct_ray.noise import NoiseConfig
from direct_ray.runtime.session import start_local_ray
from direct_ray.training import ModelConfig
from direct_ray.trial import TrialContext, run_trial


def trial_config(strategy: str, dataset: DatasetSpec, rounds: int, b_train: int, b_parallel: int = 5,
                 noise: NoiseConfig | None = None, seed: int = 0) -> TrialConfig:
    return TrialConfig(
        study="benchmark",
        dataset=dataset,
        strategy=strategy,
        seed=seed,
        b_parallel=b_parallel,
        noise=noise or NoiseConfig(),
        rounds=rounds,
        b_train=b_train,
        initial_size=b_train,
        model=ModelConfig(kind="mlp"),
    )


def direct_vs_random(rounds: int) -> None:
    print("\n== DIRECT vs random on digits (K=2, 124 minority of 1,257), seed 0, b_train 20, b_parallel 5 ==")
    digits = DatasetSpec(kind="digits", num_classes=2)
    curves = {s: run_trial(trial_config(s, digits, rounds, 20), context=TrialContext()).curve
              for s in ("direct", "random")}
    print(f"{'round':>5} {'n_labeled':>9} | {'direct bal.acc':>14} {'minority':>8} | {'random bal.acc':>14} {'minority':>8}")
    for d, r in zip(curves["direct"], curves["random"]):
        print(f"{d['round']:>5} {d['n_labeled']:>9} | {d['balanced_accuracy']:>14.3f} {d['n_minority_labels']:>8} | "
              f"{r['balanced_accuracy']:>14.3f} {r['n_minority_labels']:>8}")


def overhead(rounds: int, repeats: int) -> None:
    print("\n== Ray overhead of the default workload (digits, mlp, b_train 20, b_parallel 5, 20% uniform noise) ==")
    digits = DatasetSpec(kind="digits", num_classes=2)
    shares, walls = {}, {}
    for strategy in ("direct", "galaxy", "random", "confidence"):
        rows = []
        for seed in range(repeats):
            cfg = trial_config(strategy, digits, rounds, 20, noise=NoiseConfig(model="uniform", rate=0.2), seed=seed)
            rows += run_trial(cfg, context=TrialContext(output=Path(tempfile.mkdtemp()))).curve[1:]
        wall = sum(r["round_seconds"] for r in rows)
        work = sum(r["train_seconds"] + r["score_seconds"] + r["select_seconds"] for r in rows)
        shares[strategy] = 1 - work / wall
        walls[strategy] = statistics.median(r["round_seconds"] for r in rows)
    print(f"{'strategy':>10} {'median round (s)':>16} {'outside train/score/select':>27}")
    for strategy in shares:
        print(f"{strategy:>10} {walls[strategy]:>16.3f} {shares[strategy]:>26.1%}")
    print("(round 0, which includes starting the actors, is excluded; target <= 10%)")
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = features_file(Path(tmp), 200_000)
        spec = DatasetSpec(kind="features", path=str(path), num_classes=2)
        rows = run_trial(trial_config("direct", spec, rounds, 100), context=TrialContext()).curve[1:]
    wall = sum(r["round_seconds"] for r in rows)
    work = sum(r["train_seconds"] + r["score_seconds"] + r["select_seconds"] for r in rows)
    print(f"for comparison, DIRECT on a 200,000 x 64 features pool (b_train 100): median round "
          f"{statistics.median(r['round_seconds'] for r in rows):.3f} s, {1 - work / wall:.1%} outside train/score/select")


class MemorySampler:
    """Peak memory of the Ray session: private memory of its processes plus the object store.

    For this process and every Ray worker: private pages (``/proc/PID/smaps``) outside
    ``/dev/shm``; plus the used size of ``/dev/shm``, where Ray's object store lives. Object
    store pages are counted once this way (a page touched by one process only is "private"
    in smaps, so counting it there too would count it twice).
    """

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        total = psutil.disk_usage("/dev/shm").used
        me = psutil.Process().pid
        for proc in psutil.process_iter(["cmdline"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                if proc.pid != me and "ray::" not in cmd and "default_worker.py" not in cmd:
                    continue
                for region in proc.memory_maps(grouped=True):
                    if not region.path.startswith("/dev/shm"):
                        total += region.private_clean + region.private_dirty
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.02)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def features_file(directory: Path, n: int) -> tuple[Path, int]:
    """A synthetic n x 64 float32 features pool (10% minority) and its size in bytes."""
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.9).astype(np.int64)
    x = rng.normal(size=(n, 64)).astype(np.float32)
    x[:, 0] += 2.0 * y
    y_test = (rng.random(2000) < 0.9).astype(np.int64)
    x_test = rng.normal(size=(2000, 64)).astype(np.float32)
    path = directory / f"pool-{n}.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    return path, x.nbytes + y.nbytes + x_test.nbytes + y_test.nbytes


def peak_extra_memory(path: Path) -> tuple[int, float, float]:
    """(peak extra bytes, trial seconds, median round seconds) of a 3-round DIRECT trial."""
    spec = DatasetSpec(kind="features", path=str(path), num_classes=2)
    baseline = MemorySampler.current()
    with MemorySampler() as sampler:
        start = time.perf_counter()
        state = run_trial(trial_config("direct", spec, 3, 100), context=TrialContext())
        seconds = time.perf_counter() - start
    return sampler.peak - baseline, seconds, statistics.median(r["round_seconds"] for r in state.curve[1:])


def memory(n: int) -> None:
    """Peak extra memory at ``n`` and at a tiny pool: the difference is what scales with the inputs.

    Every trial also starts its own actor processes (pool, selection, annotators), each a
    Python interpreter with numpy and Ray (tens of MB apiece, whatever the pool size); the
    tiny-pool run measures that fixed cost so it can be separated from the inputs' copies.
    """
    print(f"\n== Peak memory of a trial on a {n:,} x 64 float32 features pool (DIRECT, b_parallel 5) ==")
    warm = trial_config("random", DatasetSpec(kind="digits", num_classes=2), 1, 20)
    run_trial(warm, context=TrialContext())  # start the training worker (torch) first
    with tempfile.TemporaryDirectory() as tmp:
        small, small_bytes = features_file(Path(tmp), 2_000)
        big, big_bytes = features_file(Path(tmp), n)
        small_peak, _, _ = peak_extra_memory(small)
        big_peak, seconds, _ = peak_extra_memory(big)
    scaled = (big_peak - small_peak) / (big_bytes - small_bytes)
    print(f"inputs {big_bytes / 2**20:,.0f} MiB; peak extra memory {big_peak / 2**20:,.0f} MiB "
          f"({big_peak / big_bytes:.2f}x the inputs, all included)")
    print(f"same trial on a 2,000-example pool: {small_peak / 2**20:,.0f} MiB (actor processes, fixed cost)")
    print(f"memory that scales with the inputs: {scaled:.2f}x their size (target < 2x); "
          f"4 rounds in {seconds:.1f}s (slowed by the sampler reading /proc/*/smaps)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a 100k pool")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    start_local_ray(2, quiet=True)
    try:
        direct_vs_random(rounds=4 if args.quick else 10)
        overhead(rounds=4 if args.quick else 10, repeats=1 if args.quick else 2)
        if not args.skip_memory:
            memory(100_000 if args.quick else 1_000_000)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
