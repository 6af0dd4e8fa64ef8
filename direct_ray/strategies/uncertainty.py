"""The cheap baselines: random sampling and the uncertainty samplers (paper, section 5.1).

Each sampler turns the model's softmax into one *sort key* per example and buys the
``budget`` unlabeled examples with the lowest keys (ties: lower pool index first), in that
order:

=================  ===================  ==============================================
name               class                key (lowest bought first)
=================  ===================  ==============================================
``random``         RandomSampling       none: uniform without replacement from ``rng``
``confidence``     LeastConfidence      max_k p_k (least confident first; Settles 2009)
``margin``         MarginSampling       p_top1 - p_top2 (smallest margin first)
``entropy``        EntropySampling      sum_k p_k log p_k = -H(p) (highest entropy first)
``mlp``            MostLikelyPositive   -(probability of the minority classes)
=================  ===================  ==============================================

Speed: one round costs about one ``np.argsort`` of the pool. The keys are computed in
blocks of rows that fit in cache, with one vector operation per column (numpy's ``max``
along a short last axis pays a per-row overhead that alone costs as much as the sort),
and the batch is taken with :func:`~direct_ray.strategies.base.top_k_lowest`
(``argpartition``, O(N)). No N x K temporary is made; keys are computed on the whole
pool and then restricted to the unlabeled examples. Entropy is the dearest (one ``log``
per probability): float64 probabilities cost about three times as much as float32.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from direct_ray.strategies.base import BatchStrategy, top_k_lowest

# Rows per block: about 64k probabilities (256 KiB of float32), which stays in L2 cache.
_BLOCK_ELEMENTS = 1 << 16


def _blockwise(probs: np.ndarray, key: Callable[[np.ndarray, np.ndarray], None]) -> np.ndarray:
    """Apply ``key(block, out)`` to row blocks of ``probs``; return the N keys it writes."""
    n, k = probs.shape
    out = np.empty(n, dtype=probs.dtype)
    rows = max(256, _BLOCK_ELEMENTS // k)
    for start in range(0, n, rows):
        key(probs[start : start + rows], out[start : start + rows])
    return out


def _max_prob(block: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, block[:, 0])
    for j in range(1, block.shape[1]):
        np.maximum(out, block[:, j], out=out)


def _margin(block: np.ndarray, out: np.ndarray) -> None:
    """``out = top1 - top2`` per row, keeping a running (top1, top2) pair over the columns."""
    top1 = np.maximum(block[:, 0], block[:, 1])
    top2 = np.minimum(block[:, 0], block[:, 1])
    low = np.empty_like(top1)
    for j in range(2, block.shape[1]):
        col = block[:, j]
        np.minimum(top1, col, out=low)  # the column's candidate for second place
        np.maximum(top2, low, out=top2)
        np.maximum(top1, col, out=top1)
    np.subtract(top1, top2, out=out)


def _neg_entropy(block: np.ndarray, out: np.ndarray) -> None:
    """``out = sum_k p_k log p_k`` per row, with ``0 log 0 = 0``.

    The row sums are one matrix-vector product: a BLAS ``gemv`` computes each row's sum in
    one thread with a fixed order, so the keys are reproducible on a given machine.
    """
    plogp = np.maximum(block, np.finfo(block.dtype).tiny)
    np.log(plogp, out=plogp)
    plogp *= block
    np.dot(plogp, np.ones(block.shape[1], dtype=block.dtype), out=out)


class RandomSampling(BatchStrategy):
    """Uniform sampling without replacement from the unlabeled pool, drawn from ``rng``."""

    name = "random"

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        return rng.choice(unlabeled, size=budget, replace=False)


class _LowestKeyFirst(BatchStrategy):
    """Buys the unlabeled examples with the lowest :meth:`sort_keys`, lowest first.

    Ties go to the lower pool index, so the choice is deterministic and ignores ``rng``.
    """

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        keys = self.sort_keys(probs)
        if unlabeled.size != keys.size:
            keys = keys[unlabeled]
        return unlabeled[top_k_lowest(keys, budget)]

    @abstractmethod
    def sort_keys(self, probs: np.ndarray) -> np.ndarray:
        """One key per row of ``probs`` (N x K); the sampler buys the lowest keys first."""


class LeastConfidence(_LowestKeyFirst):
    """Least confidence (Settles 2009): the examples whose top class probability is lowest."""

    name = "confidence"

    def sort_keys(self, probs: np.ndarray) -> np.ndarray:
        return _blockwise(probs, _max_prob)


class MarginSampling(_LowestKeyFirst):
    """Margin sampling: the smallest gap between the two most probable classes first."""

    name = "margin"

    def sort_keys(self, probs: np.ndarray) -> np.ndarray:
        return _blockwise(probs, _margin)


class EntropySampling(_LowestKeyFirst):
    """Entropy sampling: the highest predictive entropy ``-sum_k p_k log p_k`` first."""

    name = "entropy"

    def sort_keys(self, probs: np.ndarray) -> np.ndarray:
        return _blockwise(probs, _neg_entropy)


class MostLikelyPositive(_LowestKeyFirst):
    """Most Likely Positive: the examples the model finds most likely to be rare.

    The imbalanced datasets keep K-1 original classes and merge the rest into class
    ``K-1``, the majority. By default the score is the total minority probability
    ``1 - probs[:, K-1]`` (highest first); it is ranked as ``probs[:, K-1]`` ascending,
    the same order without the rounding of ``1 - p``. With ``positive_classes=`` the
    score is instead ``sum(probs[:, c] for c in positive_classes)``, highest first.
    """

    name = "mlp"

    def __init__(self, b_parallel: int = 1, positive_classes: Optional[Sequence[int]] = None) -> None:
        super().__init__(b_parallel)
        if positive_classes is not None:
            classes = tuple(positive_classes)
            if not classes or any(
                isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0 for c in classes
            ):
                raise ValueError(
                    f"positive_classes must be a non-empty sequence of class indices >= 0, got {positive_classes!r}"
                )
            if len(set(classes)) != len(classes):
                raise ValueError(f"positive_classes must not repeat a class, got {positive_classes!r}")
            positive_classes = tuple(sorted(int(c) for c in classes))
        self.positive_classes: Optional[tuple[int, ...]] = positive_classes

    def sort_keys(self, probs: np.ndarray) -> np.ndarray:
        k = probs.shape[1]
        if self.positive_classes is None:
            return probs[:, k - 1].copy()
        if self.positive_classes[-1] >= k or len(self.positive_classes) == k:
            raise ValueError(
                f"positive_classes {self.positive_classes} must be a proper subset of the classes 0..{k - 1}"
            )
        positive = self.positive_classes

        def neg_positive_mass(block: np.ndarray, out: np.ndarray) -> None:
            np.negative(block[:, positive[0]], out=out)
            for c in positive[1:]:
                out -= block[:, c]

        return _blockwise(probs, neg_positive_mass)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(b_parallel={self.b_parallel}, positive_classes={self.positive_classes})"
