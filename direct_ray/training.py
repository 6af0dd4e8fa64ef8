"""Train a fresh model on the labeled set and score the whole pool: the work of one round.

:func:`fit_and_score` is what the runtime's remote training task calls. It re-initialises
the model from the seed every call (a ResNet-18 from ImageNet or file weights when
``pretrained``), trains it with Adam on class-weighted cross-entropy, then scores the pool
(softmax probabilities and penultimate-layer embeddings) and the test split in batches.
It uses CUDA when available and is bitwise deterministic on the CPU for a given seed and
thread count.

This module imports torch only inside :func:`fit_and_score` (the networks and loops live in
:mod:`direct_ray.models`), so parsing a study's ``model:`` mapping does not load torch.

Per-kind defaults (any of them can be set in the study's ``model:`` mapping):

========= ====== ===== ============ ========== ==========================================
kind      epochs lr    weight_decay batch_size why
========= ====== ===== ============ ========== ==========================================
mlp       50     0.01  5e-5         128        fast on one CPU core (digits, 300 labels,
                                               1,257-example pool: about 0.1 s) and as
                                               accurate there as longer schedules
linear    50     0.01  5e-5         128        softmax regression on the given features
resnet18  20     0.01  5e-5         128        the paper's Adam and lr 0.01, GALAXY's weight
                                               decay; the paper trains 500 epochs per round
                                               (set ``epochs: 500`` to reproduce it exactly)
========= ====== ===== ============ ========== ==========================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from direct_ray.validation import check_keys

MODEL_KINDS = ("mlp", "linear", "resnet18")

DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"epochs": 50, "lr": 1e-2, "weight_decay": 5e-5, "batch_size": 128},
    "linear": {"epochs": 50, "lr": 1e-2, "weight_decay": 5e-5, "batch_size": 128},
    "resnet18": {"epochs": 20, "lr": 1e-2, "weight_decay": 5e-5, "batch_size": 128},
}

# Fields only one kind uses: giving them to another kind in a study is an error.
_KIND_ONLY = {"hidden": "mlp", "pretrained": "resnet18"}


@dataclass(frozen=True)
class ModelConfig:
    """The network and its optimiser settings; ``None`` means the kind's default (see module doc).

    ``pretrained`` (resnet18 only): ``False`` for random initialisation, ``True`` for
    torchvision's ImageNet weights (downloaded when online, read from torch's hub cache
    otherwise), or a path to a ``.pth`` state_dict of a torchvision ResNet-18 (its ``fc``
    is ignored). ``class_weighted``: cross-entropy weights each labeled example by the
    inverse frequency of its class among the labeled set (GALAXY's training code).
    """

    kind: str = "mlp"
    pretrained: bool | str = False
    hidden: int = 128
    epochs: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    class_weighted: bool = True

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind: unknown model {self.kind!r}; choose one of {list(MODEL_KINDS)}")
        for name, value in DEFAULTS[self.kind].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        _check_int("hidden", self.hidden, 1)
        _check_int("epochs", self.epochs, 1)
        # The ResNet's batch norm needs at least two examples per training batch.
        _check_int("batch_size", self.batch_size, 2 if self.kind == "resnet18" else 1)
        _check_number("lr", self.lr, positive=True)
        _check_number("weight_decay", self.weight_decay, positive=False)
        if not isinstance(self.class_weighted, bool):
            raise ValueError(f"class_weighted must be true or false, got {self.class_weighted!r}")
        if not isinstance(self.pretrained, (bool, str)) or self.pretrained == "":
            raise ValueError(f"pretrained must be true, false or a path to a .pth state_dict, got {self.pretrained!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Parse a study's ``model:`` mapping: ``kind`` plus hyperparameters overriding the defaults."""
        check_keys(data, [f.name for f in fields(cls)], what="model", hint=" such as {kind: mlp}")
        kind = data.get("kind", cls.kind)
        for key, only in _KIND_ONLY.items():
            if key in data and kind != only:
                raise ValueError(f"{key}: only kind {only!r} uses it, not {kind!r}")
        return cls(**dict(data))

    def to_dict(self) -> dict:
        """Every setting this kind uses, defaults resolved (what ``from_dict`` accepts back)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if _KIND_ONLY.get(f.name, self.kind) == self.kind
        }


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(name: str, value: Any, positive: bool) -> None:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value)
    if bad or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} number, got {value!r}")


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
