"""GPU check: a small ResNet-18 study, four trials sharing each GPU, on CIFAR-shaped images.

``python -m direct_ray.benchmarks.gpu [--trials 4] [--rounds 3] [--b-train 100] [--pool 5000]``

Builds a CIFAR-shaped dataset in memory (32x32 RGB uint8 images of 10 classes, each class a
colour pattern plus noise, made imbalanced the paper's way with K = 2), puts it in Ray's
object store once, and runs ``--trials`` DIRECT trials at the same time, each reserving
``gpus_per_trial: 0.25`` (four trials per GPU) through :func:`direct_ray.trial.run_trial` in
zero-CPU runner actors. While they run, ``nvidia-smi`` is sampled every second. Prints the
device each trial trained on, the per-round train and score seconds, and the GPU's mean and
peak utilisation. Stops with a clear message on a machine without a CUDA GPU.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import threading
import time

import numpy as np
import ray

from direct_ray.config import TrialConfig
from direct_ray.data import Dataset, imbalanced_labels
from direct_ray.runtime.inputs import put_dataset
from direct_ray.runtime.priority import coordination_actor
from direct_ray.runtime.session import connect
from direct_ray.trial import TrialContext, run_trial

GPUS_PER_TRIAL = 0.25


def cifar_like(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """10 classes of 32x32 RGB images (a per-class colour pattern plus noise), K = 2 the paper's way."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, size=(10, 3, 32, 32))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, size=n)
        x = np.clip(patterns[y] * 0.6 + rng.normal(0, 40, size=(n, 3, 32, 32)), 0, 255).astype(np.uint8)
        return x, imbalanced_labels(y, 2)

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    return Dataset("cifar-like-k2", "images", x_train, y_train, x_test, y_test, 2)


class Runner:
    """Runs one trial in its own process (a stand-in for a Tune trainable)."""

    def run(self, config: dict, dataset) -> list[dict]:
        return run_trial(TrialConfig.from_dict(config), context=TrialContext(), dataset=dataset).curve


RunnerActor = coordination_actor(Runner)


class GpuSampler(threading.Thread):
    """Samples ``nvidia-smi``'s utilisation of GPU 0 every second until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m direct_ray.benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4, help="trials at once (4 share one GPU)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--b-train", type=int, default=100)
    parser.add_argument("--pool", type=int, default=5000, help="training images in the pool")
    parser.add_argument("--epochs", type=int, default=5, help="ResNet-18 epochs per round")
    parser.add_argument("--address", help="Ray cluster address (default: a local session)")
    args = parser.parse_args(argv)
    connect(args.address, None)
    if not ray.cluster_resources().get("GPU"):
        print("no GPU in this Ray session: run this on a machine (or cluster) with a CUDA GPU")
        return 2
    dataset = put_dataset(cifar_like(args.pool, args.pool // 5))
    configs = [
        TrialConfig(study="gpu-check", dataset={"kind": "cifar10", "num_classes": 2}, strategy="direct", seed=seed,
                    b_parallel=5, noise={"model": "none"}, rounds=args.rounds, b_train=args.b_train,
                    initial_size=args.b_train, model={"kind": "resnet18", "epochs": args.epochs},
                    resources={"cpus_per_trial": 1, "gpus_per_trial": GPUS_PER_TRIAL})
        for seed in range(args.trials)
    ]
    sampler = GpuSampler()
    sampler.start()
    start = time.perf_counter()
    curves = ray.get([RunnerActor.remote().run.remote(c.to_dict(), dataset) for c in configs])
    wall = time.perf_counter() - start
    sampler.stopped.set()
    print(f"{args.trials} trials at {GPUS_PER_TRIAL} GPU each, {args.rounds} rounds of {args.b_train} labels, "
          f"ResNet-18 {args.epochs} epochs per round: {wall:.1f} s")
    print("| trial | device | round | n_labeled | train s | score s | balanced acc |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for config, curve in zip(configs, curves):
        for row in curve:
            print(f"| s{config.seed} | {row['device']} | {row['round']} | {row['n_labeled']} | {row['train_seconds']:.2f} "
                  f"| {row['score_seconds']:.2f} | {row['balanced_accuracy']:.3f} |")
    if sampler.samples:
        print(f"GPU utilisation: mean {statistics.mean(sampler.samples):.0f}%, "
              f"peak {max(sampler.samples):.0f}% over {len(sampler.samples)} samples")
    else:
        print("GPU utilisation: nvidia-smi gave no samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
