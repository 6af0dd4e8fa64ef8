"""SIMILAR (FLQMI): submodular mutual information with the labeled rare-class examples.

Kothawade, Beck, Killamsetty, Iyer. "SIMILAR: Submodular Information Measures Based Active
Learning in Realistic Scenarios." NeurIPS 2021 (arXiv:2107.00717).
"""

from __future__ import annotations

import heapq
from typing import Literal

import numpy as np

from direct_ray.strategies.badge import gradient_residuals, require_positive, subsample
from direct_ray.strategies.base import BatchStrategy, top_k_lowest

Representation = Literal["gradients", "features"]
_REPRESENTATIONS = ("gradients", "features")
_CHUNK = 2_048


class _Embedding:
    """Unit-norm representations of rows, kept factored so nothing of size N x K*D is built.

    ``gradients`` (the SIMILAR authors' default): the loss gradient w.r.t. the last layer's
    bias and weights, ``g = [a, a (x) h]`` with ``a = p - onehot(label)``, so that
    ``<g_i, g_j> = <a_i, a_j> (1 + <h_i, h_j>)``. ``features``: ``h`` itself. Rows of zero
    norm (a one-hot prediction) have cosine similarity 0 with everything.
    """

    def __init__(self, kind: Representation, h: np.ndarray, a: np.ndarray) -> None:
        self.kind = kind
        self.h = np.asarray(h, dtype=np.float32)
        self.a = a
        h_sq = np.einsum("ij,ij->i", self.h, self.h, dtype=np.float64)
        norm = np.sqrt(h_sq) if kind == "features" else np.sqrt(np.einsum("ij,ij->i", a, a) * (1.0 + h_sq))
        self.inv_norm = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)

    def cosine(self, other: "_Embedding") -> np.ndarray:
        """len(self) x len(other) cosine similarities (float32)."""
        dots = (self.h @ other.h.T).astype(np.float64)
        if self.kind == "gradients":
            dots = (self.a @ other.a.T) * (1.0 + dots)
        dots *= self.inv_norm[:, None]
        dots *= other.inv_norm[None, :]
        return dots.astype(np.float32)

    def cosine_sums(self, other: "_Embedding") -> np.ndarray:
        """For every row of self, the sum of its cosine similarities to all rows of ``other``, O(n K D)."""
        if self.kind == "features":
            total = (other.h * other.inv_norm[:, None]).sum(axis=0, dtype=np.float64)
            return (self.h @ total) * self.inv_norm
        # sum_j <a_i, a_j> (1 + <h_i, h_j>) / |g_j|  =  a_i . s  +  a_i^T M h_i
        weighted = other.a * other.inv_norm[:, None]
        s = weighted.sum(axis=0)
        m = weighted.T @ other.h.astype(np.float64)  # K x D
        return (self.a @ s + np.einsum("ik,ik->i", self.a, self.h @ m.T)) * self.inv_norm


def flqmi_greedy(similarity: np.ndarray, budget: int, eta: float) -> np.ndarray:
    """Lazy greedy maximisation of FLQMI over the rows of ``similarity`` (candidates x queries, in [0, 1]).

    ``f(A; Q) = sum_{q in Q} max_{a in A} s(a, q) + eta * sum_{a in A} max_{q in Q} s(a, q)``
    is monotone submodular, so a candidate's last computed gain bounds its current gain and
    the lazy (Minoux) greedy returns exactly the plain greedy's choice. Ties go to the lower
    row. Returns ``budget`` distinct row positions in selection order.
    """
    n = similarity.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"cannot choose {budget} of {n} candidates")
    relevance = eta * similarity.max(axis=1, initial=0.0).astype(np.float64)
    gains = similarity.sum(axis=1, dtype=np.float64) + relevance
    heap = [(-gain, row, 0) for row, gain in enumerate(gains)]
    heapq.heapify(heap)
    covered = np.zeros(similarity.shape[1], dtype=np.float32)
    chosen = np.empty(budget, dtype=np.int64)
    for step in range(budget):
        while True:
            _, row, computed_at = heapq.heappop(heap)
            if computed_at == step:
                break
            gain = float(np.maximum(similarity[row] - covered, 0.0).sum(dtype=np.float64)) + relevance[row]
            heapq.heappush(heap, (-gain, row, step))
        chosen[step] = row
        np.maximum(covered, similarity[row], out=covered)
    return chosen


class Similar(BatchStrategy):
    """SIMILAR with FLQMI (Kothawade et al., 2021): examples that cover the labeled rare-class set.

    The query set Q is every labeled example whose *observed* label is a minority class
    ``0..K-2`` (class ``K-1`` is the majority by the project's convention). The batch is the
    lazy-greedy maximiser of FLQMI (:func:`flqmi_greedy`, ``eta`` = 1 as in the authors'
    code) with the authors' kernel ``s = (1 + cos) / 2`` on last-layer gradient embeddings
    (``representation="gradients"``: candidates at their predicted label, queries at their
    observed label) or on the raw features (``"features"``). Only candidate x query
    similarities are formed, never candidate x candidate.

    Fallback: while no rare-class example is labeled (Q empty) FLQMI is undefined; the
    batch is then the ``budget`` unlabeled examples of highest total minority-class
    probability ``1 - p_{K-1}`` (Most Likely Positive).

    Approximations to scale: at most ``max_queries`` (default 1,000) rare-class examples,
    uniformly sampled, form Q; the greedy runs on the ``max_candidates`` (default 20,000, or
    the budget if larger) unlabeled examples with the largest ``sum_{q in Q} s(a, q)`` -- the
    largest gain each could ever add to the query-coverage term, computed exactly for the
    whole pool in O(N K D) -- instead of all of them. Memory: the candidates x queries
    float32 kernel (80 MB at the defaults).
    """

    name = "similar"
    needs_embeddings = True

    def __init__(
        self,
        b_parallel: int = 1,
        eta: float = 1.0,
        representation: Representation = "gradients",
        max_candidates: int = 20_000,
        max_queries: int = 1_000,
    ) -> None:
        super().__init__(b_parallel)
        self.eta = require_positive("eta", eta, integer=False)
        if representation not in _REPRESENTATIONS:
            raise ValueError(f"representation must be one of {_REPRESENTATIONS}, got {representation!r}")
        self.representation: Representation = representation
        self.max_candidates = require_positive("max_candidates", max_candidates)
        self.max_queries = require_positive("max_queries", max_queries)

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        majority = probs.shape[1] - 1
        queries = np.flatnonzero((observed >= 0) & (observed != majority))
        if queries.size == 0:
            return unlabeled[top_k_lowest(probs[unlabeled, majority].astype(np.float64), budget)]
        queries = subsample(queries, self.max_queries, rng)
        query = self._embed(probs, embeddings, queries, observed[queries])

        coverage_bound = np.empty(unlabeled.size)
        for start in range(0, unlabeled.size, _CHUNK):
            rows = unlabeled[start : start + _CHUNK]
            coverage_bound[start : start + rows.size] = self._embed(probs, embeddings, rows).cosine_sums(query)
        n_cand = min(unlabeled.size, max(self.max_candidates, budget))
        candidates = np.sort(unlabeled[top_k_lowest(-coverage_bound, n_cand)])
        del coverage_bound

        similarity = np.empty((candidates.size, queries.size), dtype=np.float32)
        for start in range(0, candidates.size, _CHUNK):
            block = self._embed(probs, embeddings, candidates[start : start + _CHUNK]).cosine(query)
            similarity[start : start + block.shape[0]] = (block + 1.0) * 0.5
        return candidates[flqmi_greedy(similarity, budget, self.eta)]

    def _embed(self, probs, embeddings, rows: np.ndarray, labels=None) -> _Embedding:
        a = gradient_residuals(probs[rows], labels) if self.representation == "gradients" else None
        return _Embedding(self.representation, embeddings[rows], a)

    def __repr__(self) -> str:
        return (
            f"Similar(b_parallel={self.b_parallel}, eta={self.eta}, representation={self.representation!r}, "
            f"max_candidates={self.max_candidates}, max_queries={self.max_queries})"
        )
