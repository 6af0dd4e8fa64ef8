"""Selection strategies: DIRECT, GALAXY and the paper's baselines, behind one contract.

>>> from direct_ray.strategies import make_strategy
>>> strategy = make_strategy("direct", b_parallel=5)

Every strategy's ``select(probs, observed, budget=, annotate=, rng=, embeddings=None)``
buys exactly ``budget`` labels (fewer only when the pool runs out) and returns the pool
indices bought, in order. See :mod:`direct_ray.strategies.base` for the full contract.
Modules are imported lazily so that listing the names costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from direct_ray.strategies.base import (
    UNLABELED,
    AnnotateFn,
    BatchStrategy,
    LabelBuyer,
    SelectionError,
    Strategy,
)

# name -> (module, class). The names are a contract used by studies and outside tools.
_REGISTRY: dict[str, tuple[str, str]] = {
    "direct": ("direct_ray.strategies.direct", "Direct"),
    "galaxy": ("direct_ray.strategies.galaxy", "Galaxy"),
    "direct_paper": ("direct_ray.strategies.direct", "DirectPaper"),
    "random": ("direct_ray.strategies.uncertainty", "RandomSampling"),
    "confidence": ("direct_ray.strategies.uncertainty", "LeastConfidence"),
    "margin": ("direct_ray.strategies.uncertainty", "MarginSampling"),
    "entropy": ("direct_ray.strategies.uncertainty", "EntropySampling"),
    "mlp": ("direct_ray.strategies.uncertainty", "MostLikelyPositive"),
    "badge": ("direct_ray.strategies.badge", "Badge"),
    "cluster_margin": ("direct_ray.strategies.cluster_margin", "ClusterMargin"),
    "base": ("direct_ray.strategies.base_sampling", "BalancedBoundary"),
    "bait": ("direct_ray.strategies.bait", "Bait"),
    "similar": ("direct_ray.strategies.similar", "Similar"),
}

STRATEGY_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name`` (a clear error listing the valid names otherwise)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGY_NAMES)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def make_strategy(name: str, b_parallel: int = 1, **options: Any) -> Strategy:
    """Build the strategy registered under ``name`` with ``b_parallel`` parallel annotators.

    ``options`` are passed to the strategy's constructor (strategy-specific knobs).
    """
    return strategy_class(name)(b_parallel=b_parallel, **options)


__all__ = [
    "UNLABELED",
    "AnnotateFn",
    "BatchStrategy",
    "LabelBuyer",
    "SelectionError",
    "Strategy",
    "STRATEGY_NAMES",
    "make_strategy",
    "strategy_class",
]
