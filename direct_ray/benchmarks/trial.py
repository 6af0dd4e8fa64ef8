"""Trial benchmarks (issue 3): DIRECT vs random on digits, Ray overhead, peak memory on a big pool.

    python -m direct_ray.benchmarks.trial [--quick] [--skip-memory]

1. DIRECT and random, same seed and budget, on the embedded digits (K = 2): balanced
   accuracy and minority labels bought per round.
2. Ray overhead of the default workload: the share of each round's wall time spent outside
   train, score and select (actor calls, task scheduling, bookkeeping, checkpoints).
3. Peak memory of a trial on a 1,000,000 x 64 float32 features pool: the extra resident
   memory of every process of the Ray session plus the object store's shared memory,
   sampled every 50 ms, against the size of the inputs.
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
    curves = {s: run_trial(trial_config(s, digits, rounds, 20), context=TrialContext(verbose=False)).curve
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
            rows += run_trial(cfg, context=TrialContext(verbose=False, output=Path(tempfile.mkdtemp()))).curve[1:]
        wall = sum(r["round_seconds"] for r in rows)
        work = sum(r["train_seconds"] + r["score_seconds"] + r["select_seconds"] for r in rows)
        shares[strategy] = 1 - work / wall
        walls[strategy] = statistics.median(r["round_seconds"] for r in rows)
    print(f"{'strategy':>10} {'median round (s)':>16} {'outside train/score/select':>27}")
    for strategy in shares:
        print(f"{strategy:>10} {walls[strategy]:>16.3f} {shares[strategy]:>26.1%}")
    print("(round 0, which includes starting the actors, is excluded; target <= 10%)")


class MemorySampler:
    """Peak of (sum of RSS of this process tree and Ray's workers) + object-store shared memory."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        total = 0
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                if proc.pid == psutil.Process().pid or "ray::" in cmd or "default_worker.py" in cmd:
                    mem = proc.memory_full_info()
                    total += mem.uss  # unique pages only: shared object-store pages are counted once below
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        shm = psutil.disk_usage("/dev/shm").used if Path("/dev/shm").exists() else 0
        return total + shm

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.05)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def memory(n: int) -> None:
    print(f"\n== Peak memory of a trial on a {n:,} x 64 float32 features pool ==")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pool.npz"
        y = (rng.random(n) < 0.9).astype(np.int64)
        x = rng.normal(size=(n, 64)).astype(np.float32)
        x[:, 0] += 2.0 * y
        y_test = (rng.random(2000) < 0.9).astype(np.int64)
        x_test = rng.normal(size=(2000, 64)).astype(np.float32)
        np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=y_test)
        inputs = x.nbytes + y.nbytes + x_test.nbytes + y_test.nbytes
        del x, y
        spec = DatasetSpec(kind="features", path=str(path), num_classes=2)
        warm = trial_config("random", DatasetSpec(kind="digits", num_classes=2), 1, 20)
        run_trial(warm, context=TrialContext(verbose=False))  # start the workers first: count the trial only
        baseline = MemorySampler.current()
        with MemorySampler() as sampler:
            start = time.perf_counter()
            state = run_trial(trial_config("direct", spec, 3, 100), context=TrialContext(verbose=False))
            seconds = time.perf_counter() - start
        extra = sampler.peak - baseline
        print(f"inputs {inputs / 2**20:,.0f} MiB; peak extra memory {extra / 2**20:,.0f} MiB = "
              f"{extra / inputs:.2f}x the inputs (target < 2x); 4 rounds in {seconds:.1f}s, "
              f"median round {statistics.median(r['round_seconds'] for r in state.curve[1:]):.2f}s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and a 100k pool")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        direct_vs_random(rounds=4 if args.quick else 10)
        overhead(rounds=4 if args.quick else 10, repeats=1 if args.quick else 2)
        if not args.skip_memory:
            memory(100_000 if args.quick else 1_000_000)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
