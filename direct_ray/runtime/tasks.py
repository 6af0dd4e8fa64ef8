"""The training task: train on the labeled set, score the pool, predict the test split.

One Ray remote task per round does all three, so the model never leaves the worker that
trained it (a ResNet-18 is 45 MB; the scores are what the selection needs). The pool and
test inputs arrive as object-store references put once per trial, so they are shared
zero-copy, never re-serialised per round. It asks for ``num_gpus`` from the trial's
resources and trains on CUDA when Ray gives it a GPU. A trial that asked for a GPU and
landed where torch sees none fails with a clear error instead of training on the CPU.
"""

from __future__ import annotations

import platform

import numpy as np
import ray

from direct_ray.training import ModelConfig, fit_and_score


class NoGPUError(RuntimeError):
    """The trial asked for a GPU (``gpus_per_trial > 0``) but torch sees no CUDA device here."""


def device_name(torch, device: str) -> str:
    """``cpu`` or ``cuda:<GPU model>``, e.g. ``cuda:NVIDIA H200`` (what the results record)."""
    return device if device == "cpu" else f"cuda:{torch.cuda.get_device_name(torch.device(device))}"


def _train_and_score(
    model: dict,
    x_pool: np.ndarray,
    labeled: np.ndarray,
    labels: np.ndarray,
    x_test: np.ndarray,
    num_classes: int,
    seed: int,
    want_embeddings: bool,
    needs_gpu: bool = False,
):
    import torch

    if needs_gpu and not torch.cuda.is_available():
        raise NoGPUError(
            f"gpus_per_trial > 0 but torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) sees no "
            f"CUDA device on {platform.node()}: install a CUDA build of torch and an NVIDIA driver there, "
            "or set resources.gpus_per_trial: 0 to train on the CPU"
        )
    result = fit_and_score(
        ModelConfig.from_dict(model), x_pool, labeled, labels, x_test, num_classes, seed, with_embeddings=want_embeddings
    )
    info = {
        "test_pred": result.test_pred,
        "n_trained": int(len(labeled)),  # labels the model learned from
        "train_seconds": result.train_seconds,
        "score_seconds": result.score_seconds,
        "device": device_name(torch, result.device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    return result.probs, result.embeddings, info


train_and_score = ray.remote(num_returns=3, max_retries=2)(_train_and_score)
