"""Train a fresh model on the labeled set and score the whole pool: the work of one round.

:func:`fit_and_score` is what the runtime's remote training task calls. It re-initialises
the model from the seed every call (a ResNet-18 from ImageNet or file weights when
``pretrained``), trains it with Adam on class-weighted cross-entropy, then scores the pool
(softmax probabilities and penultimate-layer embeddings) and the test split in batches.
It uses CUDA when available and is bitwise deterministic on the CPU for a given seed and
thread count.

This module imports torch only inside :func:`fit_and_score` (the networks and loops live in
:mod:`direct_ray.models`), so parsing a study's ``model:`` mapping does not load torch. The
mapping itself, :class:`ModelConfig` with its per-kind defaults, lives in
:mod:`direct_ray.model_config` (imported by both modules) and is re-exported here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from direct_ray.model_config import DEFAULTS, MODEL_KINDS, ModelConfig

__all__ = ["DEFAULTS", "MODEL_KINDS", "FitResult", "ModelConfig", "fit_and_score"]


@dataclass
class FitResult:
    """What one round's training and scoring returns (arrays on the CPU).

    ``embeddings`` are the penultimate-layer features of the pool (the MLP's hidden layer,
    the ResNet's 512-d pooled features, the inputs themselves for ``linear``), or ``None``
    when ``fit_and_score`` was asked not to compute them.
    """

    probs: np.ndarray
    embeddings: np.ndarray | None
    test_pred: np.ndarray
    train_seconds: float
    score_seconds: float
    device: str


def _validate(
    config: ModelConfig, x_pool: np.ndarray, labeled: np.ndarray, labels: np.ndarray, x_test: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if config.kind == "resnet18":
        if x_pool.ndim != 4 or x_pool.shape[1] != 3 or x_pool.dtype != np.uint8:
            raise ValueError(
                f"model kind 'resnet18' needs uint8 images N x 3 x H x W, got {x_pool.dtype} of shape {x_pool.shape}"
            )
    elif x_pool.ndim != 2 or not np.issubdtype(x_pool.dtype, np.floating):
        raise ValueError(
            f"model kind {config.kind!r} needs float features N x D, got {x_pool.dtype} of shape {x_pool.shape}"
            + ("; use kind 'resnet18' for images" if x_pool.ndim == 4 else "")
        )
    if x_test.shape[1:] != x_pool.shape[1:] or x_test.dtype != x_pool.dtype:
        raise ValueError(f"x_test ({x_test.dtype}, {x_test.shape}) must match x_pool ({x_pool.dtype}, {x_pool.shape}) per row")
    labeled = np.asarray(labeled)
    labels = np.asarray(labels)
    if labeled.ndim != 1 or not np.issubdtype(labeled.dtype, np.integer) or labeled.size == 0:
        raise ValueError(f"labeled must be a non-empty 1-D integer array of pool indices, got {labeled.dtype} {labeled.shape}")
    if labeled.min() < 0 or labeled.max() >= len(x_pool):
        raise ValueError(f"labeled indices must lie in 0..{len(x_pool) - 1}")
    if labels.shape != labeled.shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, one per labeled index ({labeled.shape}), got {labels.dtype} {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    if config.kind == "resnet18" and labeled.size < 2:
        raise ValueError("model kind 'resnet18' needs at least 2 labeled examples (batch norm)")
    return labeled.astype(np.int64, copy=False), labels.astype(np.int64, copy=False)


def fit_and_score(
    config: ModelConfig,
    x_pool: np.ndarray,
    labeled: np.ndarray,
    labels: np.ndarray,
    x_test: np.ndarray,
    num_classes: int,
    seed: int,
    device: str | None = None,
    *,
    with_embeddings: bool = True,
) -> FitResult:
    """Train from scratch on ``x_pool[labeled]`` with ``labels``, then score the pool and the test split.

    ``x_pool`` and ``x_test`` are never written to (read-only arrays from Ray's object store
    are fine): only the labeled rows and one scoring batch at a time are copied.
    ``device=None`` picks ``"cuda"`` when available, else ``"cpu"``. ``with_embeddings=False``
    skips the N x D embedding output (``FitResult.embeddings`` is then ``None``), which
    matters for memory on a large pool when the strategy does not use embeddings.
    """
    labeled, labels = _validate(config, x_pool, labeled, labels, x_test, num_classes)
    import torch

    from direct_ray import models

    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    start = time.perf_counter()
    net = models.train(config, x_pool[labeled], labels, num_classes, seed, dev)
    trained = time.perf_counter()
    probs, embeddings = models.score(net, x_pool, dev, with_embeddings)
    test_probs, _ = models.score(net, x_test, dev, False)
    done = time.perf_counter()
    return FitResult(
        probs=probs,
        embeddings=embeddings,
        test_pred=test_probs.argmax(axis=1).astype(np.int64),
        train_seconds=trained - start,
        score_seconds=done - trained,
        device=str(dev),
    )
