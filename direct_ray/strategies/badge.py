"""BADGE: k-means++ seeding on gradient embeddings of the last layer.

Ash, Zhang, Krishnamurthy, Langford, Agarwal. "Deep Batch Active Learning by Diverse,
Uncertain Gradient Lower Bounds." ICLR 2020 (arXiv:1906.03671, 2019).

This module also holds the small helpers that the other embedding baselines share
(:func:`gradient_residuals`, :func:`gradient_inner`, :func:`subsample`,
:func:`require_positive`), because the gradient-embedding identity they rely on is BADGE's.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from direct_ray.strategies.base import BatchStrategy


def require_positive(name: str, value, *, integer: bool = True):
    """Return ``value`` if it is a positive int (or positive real when ``integer`` is False).

    Raises ``ValueError`` naming the option otherwise: strategy options come from sweep
    files, so a typo must fail loudly at construction, not deep inside a round.
    """
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value) if integer else float(value)


def gradient_residuals(probs: np.ndarray, labels: Optional[np.ndarray] = None) -> np.ndarray:
    """``a_i = p_i - onehot(y_i)``: the gradient of cross-entropy w.r.t. the logits.

    With ``labels=None`` the label is the model's own prediction ``argmax p_i`` (BADGE's
    "hallucinated" label). The last-layer weight gradient is ``g_i = a_i (x) h_i`` (outer
    product with the penultimate features ``h_i``), so ``<g_i, g_j> = <a_i, a_j> <h_i, h_j>``
    and nothing of size N x K*D is ever built. Returned as float64, shape N x K.
    """
    a = np.array(probs, dtype=np.float64, copy=True)
    if labels is None:
        labels = np.argmax(a, axis=1)
    a[np.arange(a.shape[0]), labels] -= 1.0
    return a


def gradient_inner(a_rows: np.ndarray, h_rows: np.ndarray, a_col: np.ndarray, h_col: np.ndarray) -> np.ndarray:
    """Inner products ``<a_i (x) h_i, a_c (x) h_c>`` of many rows with one column, O(n (K + D))."""
    return (a_rows @ a_col) * (h_rows @ h_col).astype(np.float64)


def subsample(indices: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` of ``indices``, uniformly without replacement, in ascending order."""
    if indices.size <= size:
        return indices
    return np.sort(rng.choice(indices, size=size, replace=False))


def kmeans_pp_seeding(
    a: np.ndarray, h: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """k-means++ seeding (D^2 sampling) of ``k`` distinct rows of the embedding ``g_i = a_i (x) h_i``.

    As in the authors' code the first centre is the row of largest gradient norm; each next
    centre is drawn with probability proportional to its squared distance to the nearest
    centre chosen so far. Squared distances use
    ``|g_i - g_c|^2 = |a_i|^2 |h_i|^2 + |a_c|^2 |h_c|^2 - 2 <a_i, a_c> <h_i, h_c>``:
    O(n (K + D)) time and O(n) extra memory per centre. When every remaining row coincides
    with a centre (all squared distances 0), the next one is drawn uniformly from the rest.
    Returns positions into the rows, in the order chosen.
    """
    n = a.shape[0]
    if not 0 <= k <= n:
        raise ValueError(f"cannot seed {k} centres from {n} rows")
    sq_norm = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", h, h, dtype=np.float64)
    chosen = np.empty(k, dtype=np.int64)
    if k == 0:
        return chosen
    taken = np.zeros(n, dtype=bool)
    nearest = np.full(n, np.inf)
    centre = int(np.argmax(sq_norm))
    for step in range(k):
        chosen[step] = centre
        taken[centre] = True
        if step == k - 1:
            break
        d2 = sq_norm + sq_norm[centre] - 2.0 * gradient_inner(a, h, a[centre], h[centre])
        np.minimum(nearest, np.maximum(d2, 0.0), out=nearest)
        nearest[centre] = 0.0  # exactly 0 despite rounding; earlier centres stay 0 by the minimum
        cumulative = np.cumsum(nearest)
        total = cumulative[-1]
        if total > 0.0:
            # side="right" never lands on a zero-mass row (a centre).
            centre = int(np.searchsorted(cumulative, rng.random() * total, side="right"))
            if centre >= n:  # rng.random() * total rounded up to total
                centre = int(np.flatnonzero(nearest)[-1])
        else:
            centre = int(rng.choice(np.flatnonzero(~taken)))
    return chosen


class Badge(BatchStrategy):
    """BADGE (Ash et al., 2019): diverse, uncertain batches in gradient-embedding space.

    Each unlabeled example is represented by the gradient of the cross-entropy loss w.r.t.
    the last linear layer at the model's predicted label, ``g_i = (p_i - e_{yhat_i}) (x) h_i``
    (``h_i`` = penultimate features, ``embeddings=``); its norm is large where the model is
    uncertain, and k-means++ seeding on these vectors picks a batch that is both uncertain
    and spread out. The K*D-dimensional vectors are never formed (see
    :func:`kmeans_pp_seeding`).

    Approximation to scale: k-means++ is sequential (one pass over the candidates per
    centre, so O(budget * n * (K + D))); when the unlabeled pool holds more than
    ``max_candidates`` examples (default 50,000) the seeding runs on a uniform random subset
    of that size, exact otherwise. Peak extra memory is the candidates' float32 features
    (``max_candidates * D * 4`` bytes, 100 MB at D = 512) plus a few float64 vectors of
    length ``max_candidates``. The bias gradient is not included (as in the paper).
    """

    name = "badge"
    needs_embeddings = True

    def __init__(self, b_parallel: int = 1, max_candidates: int = 50_000) -> None:
        super().__init__(b_parallel)
        self.max_candidates = require_positive("max_candidates", max_candidates)

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        candidates = subsample(unlabeled, max(self.max_candidates, budget), rng)
        a = gradient_residuals(probs[candidates])
        h = np.asarray(embeddings[candidates], dtype=np.float32)
        return candidates[kmeans_pp_seeding(a, h, budget, rng)]

    def __repr__(self) -> str:
        return f"Badge(b_parallel={self.b_parallel}, max_candidates={self.max_candidates})"
