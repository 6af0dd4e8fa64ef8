"""BAIT: greedy forward-backward selection on the Fisher information of the last layer.

Ash, Goel, Krishnamurthy, Kakade. "Gone Fishing: Neural Active Learning with Fisher
Embeddings." NeurIPS 2021 (arXiv:2106.09675).

Notation. For an example with softmax output ``p`` (K classes) and penultimate features
``h`` (D dims), the Fisher information of the last linear layer (K*D weights) is
``I(x) = (diag(p) - p p^T) (x) h h^T = V^T V`` with the r x K*D "Fisher embedding"
``V = R (x) h^T``, ``R^T R = diag(p) - p p^T`` (``r = K - 1`` rows suffice, see
:func:`fisher_factors`). BAIT chooses the batch S that
minimises ``tr((lambda I + M_S)^{-1} F)``, F the pool's average Fisher and M_S the Fisher
of the labeled set plus S, greedily: forward selection of ``oversample * budget`` examples,
then backward removal down to ``budget``, each step by a rank-K Woodbury update.

Everything below exploits the Kronecker structure ``V = R (x) h^T``: a quadratic form
``V B V^T`` or product ``V U`` costs O(K^2 D) per example, not O(K^2 D^2) for the K*D x
K*D matrices involved, and no per-example K*D-dimensional vector is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from direct_ray.strategies.badge import require_positive, subsample
from direct_ray.strategies.base import BatchStrategy

_CHUNK = 2_048


def fisher_factors(probs: np.ndarray, max_rank: Optional[int] = None) -> np.ndarray:
    """``R`` (n x r x K) with ``R^T R`` = ``diag(p) - p p^T``, or its best rank-r approximation.

    ``diag(p) - p p^T`` has rank at most K - 1 (the all-ones vector is in its kernel), so
    ``r = K - 1`` rows (its eigenvectors scaled by the square roots of the eigenvalues) are
    exact; ``max_rank`` below that keeps the top ``max_rank`` eigen-directions.
    """
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    rank = k - 1 if max_rank is None else min(k - 1, max_rank)
    cov = np.einsum("ic,ce->ice", p, np.eye(k)) - p[:, :, None] * p[:, None, :]
    values, vectors = np.linalg.eigh(cov)  # ascending
    values = np.sqrt(np.maximum(values[:, k - rank :], 0.0))
    return values[:, :, None] * vectors[:, :, k - rank :].transpose(0, 2, 1)


def average_fisher(probs: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(1/n) sum_i (diag(p_i) - p_i p_i^T) (x) h_i h_i^T`` as a K*D x K*D matrix (class-major)."""
    n, k = probs.shape
    d = h.shape[1]
    acc = np.zeros((k * k, d * d))
    for start in range(0, n, _CHUNK):
        p = np.asarray(probs[start : start + _CHUNK], dtype=np.float64)
        x = np.asarray(h[start : start + _CHUNK], dtype=np.float64)
        s = (np.einsum("ic,ce->ice", p, np.eye(k)) - p[:, :, None] * p[:, None, :]).reshape(-1, k * k)
        hh = (x[:, :, None] * x[:, None, :]).reshape(-1, d * d)
        acc += s.T @ hh
    acc /= max(n, 1)
    return acc.reshape(k, k, d, d).transpose(0, 2, 1, 3).reshape(k * d, k * d)


def quadratic_forms(r: np.ndarray, h: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``V_i B V_i^T`` (n x r x r) for every row, ``V_i = R_i (x) h_i^T``, B a K*D x K*D matrix."""
    n, rank, k = r.shape
    d = h.shape[1]
    blocks = b.reshape(k, d, k, d).transpose(0, 2, 1, 3).reshape(k * k * d, d)  # [c, c', a] x b
    out = np.empty((n, rank, rank))
    for start in range(0, n, _CHUNK):
        x = h[start : start + _CHUNK]
        t = (x @ blocks.T).reshape(-1, k, k, d)  # sum_b B[c,a,c',b] h_b
        t = np.einsum("icja,ia->icj", t, x)
        out[start : start + _CHUNK] = r[start : start + _CHUNK] @ t @ r[start : start + _CHUNK].transpose(0, 2, 1)
    return out


def right_products(r: np.ndarray, h: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``V_i U`` (n x r x m) for every row, U a K*D x m matrix."""
    k = r.shape[2]
    d = h.shape[1]
    m = u.shape[1]
    t = (h @ u.reshape(k, d, m).transpose(1, 0, 2).reshape(d, k * m)).reshape(-1, k, m)
    return r @ t


def _traces(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``tr(a_i^{-1} b_i)`` for stacks of small square matrices."""
    return np.trace(np.linalg.solve(a, b), axis1=1, axis2=2)


@dataclass(frozen=True)
class BaitSelection:
    """Result of :func:`bait_greedy`.

    ``chosen``: positions into the candidate rows, in selection order, ``budget`` of them.
    ``forward_objective`` / ``backward_objective``: BAIT's objective
    ``tr((lambda I + M_S)^{-1} F)`` (smaller is better) before the first step and after every
    forward step, and after every backward step. The forward values decrease at every step
    (each step removes the largest possible amount); the backward ones increase by the
    least possible amount.
    """

    chosen: np.ndarray
    forward_objective: np.ndarray
    backward_objective: np.ndarray


class _FisherState:
    """``A^{-1} = (lambda I + M)^{-1}``, the objective, and for every tracked row
    ``G_i = V_i A^{-1} V_i^T`` and ``H_i = V_i A^{-1} F A^{-1} V_i^T`` (r x r each)."""

    def __init__(self, a_inv: np.ndarray, fisher: np.ndarray, r: np.ndarray, h: np.ndarray) -> None:
        self.a_inv = a_inv
        self.fisher = fisher
        self.r = r
        self.h = h
        self.g = quadratic_forms(r, h, a_inv)
        self.hq = quadratic_forms(r, h, a_inv @ fisher @ a_inv)
        self.objective = float(np.sum(a_inv * fisher))
        self.eye = np.eye(r.shape[1])

    def change(self, sign: float) -> np.ndarray:
        """Objective decrease from adding each row (sign +1) / increase from removing it (sign -1)."""
        return _traces(self.eye + sign * self.g, self.hq)

    def keep(self, rows: np.ndarray) -> None:
        """Track only ``rows`` from now on (boolean mask or positions)."""
        self.r, self.h, self.g, self.hq = self.r[rows], self.h[rows], self.g[rows], self.hq[rows]

    def update(self, row: int, sign: float) -> None:
        """Add (+1) or remove (-1) tracked row ``row``'s Fisher ``V^T V`` to M (Woodbury, rank r).

        With ``U = A^{-1} V^T``, ``W = (sign I + V U)^{-1}``, ``Q = A^{-1} F U`` and
        ``C = U^T F U``: ``A^{-1} <- A^{-1} - U W U^T``; for every tracked row i,
        ``G_i <- G_i - V_i U W U^T V_i^T`` and
        ``H_i <- H_i + V_i U W C W U^T V_i^T - V_i U W Q^T V_i^T - V_i Q W U^T V_i^T``.
        A few stacked r x r products per call, run by numpy's own loops (they stay fast when
        other processes compete for the cores, unlike thousands of tiny threaded BLAS calls).
        """
        k = self.r.shape[1]
        v = (self.r[row][:, :, None] * self.h[row][None, None, :]).reshape(k, -1)  # r x K*D
        u = self.a_inv @ v.T
        w = np.linalg.inv(sign * self.eye + v @ u)
        fu = self.fisher @ u
        q = self.a_inv @ fu
        wmw = w @ (u.T @ fu) @ w
        both = right_products(self.r, self.h, np.hstack([u, q]))  # [V U | V Q], n x r x 2r
        vu, vq = both[:, :, :k], both[:, :, k:]
        e = vu @ w
        z = vu @ wmw - vq @ w
        stacked = np.concatenate([vu, vq], axis=1)  # n x 2r x r
        prod = e @ stacked.transpose(0, 2, 1)  # [V U W U^T V^T | V U W Q^T V^T]
        self.g -= prod[:, :, :k]
        self.hq += vu @ z.transpose(0, 2, 1) - prod[:, :, k:].transpose(0, 2, 1)
        self.a_inv = self.a_inv - u @ w @ u.T
        self.a_inv = 0.5 * (self.a_inv + self.a_inv.T)


def bait_greedy(
    r: np.ndarray,
    h: np.ndarray,
    budget: int,
    fisher: np.ndarray,
    labeled_fisher: np.ndarray,
    n_labeled: int,
    lam: float = 1.0,
    oversample: float = 2.0,
) -> BaitSelection:
    """BAIT's forward-backward greedy on candidates with Fisher factors ``r`` (n x r x K) and features ``h``.

    Follows the authors' code: ``A = lam I + n_L / (n_L + B) * labeled_fisher`` (the labeled
    set's average Fisher) and each candidate's Fisher scaled by ``B / (n_L + B)``; forward
    selection adds the candidate with the largest objective decrease ``tr((I + V A^{-1}
    V^T)^{-1} V A^{-1} F A^{-1} V^T)`` until ``ceil(oversample * budget)`` (at most n) are
    chosen, then backward removal drops the chosen example whose removal increases the
    objective least, ``tr((I - V A^{-1} V^T)^{-1} V A^{-1} F A^{-1} V^T)``, down to ``budget``.
    """
    n = r.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"cannot choose {budget} of {n} candidates")
    dim = fisher.shape[0]
    scale = budget / (n_labeled + budget) if budget else 0.0
    a = lam * np.eye(dim) + (n_labeled / (n_labeled + budget) if n_labeled else 0.0) * labeled_fisher
    state = _FisherState(np.linalg.inv(a), fisher, np.sqrt(scale) * r, h)
    forward = [state.objective]
    selected = np.zeros(n, dtype=bool)
    order: list[int] = []
    for _ in range(min(n, int(np.ceil(oversample * budget)))):
        gain = state.change(+1.0)
        gain[selected] = -np.inf
        best = int(np.argmax(gain))
        state.update(best, +1.0)
        selected[best] = True
        order.append(best)
        state.objective -= float(gain[best])
        forward.append(state.objective)
    chosen = np.asarray(order, dtype=np.int64)
    state.keep(chosen)
    backward = []
    while chosen.size > budget:
        loss = state.change(-1.0)
        worst = int(np.argmin(loss))
        state.objective += float(loss[worst])
        state.update(worst, -1.0)
        keep = np.ones(chosen.size, dtype=bool)
        keep[worst] = False
        state.keep(keep)
        chosen = chosen[keep]
        backward.append(state.objective)
    return BaitSelection(chosen, np.asarray(forward), np.asarray(backward))


def top_subspace(h: np.ndarray, dim: int) -> np.ndarray:
    """D x dim orthonormal basis of the top eigenvectors of the uncentred second moment of ``h``.

    The Fisher depends on h only through ``h h^T``, so this is the rank-``dim`` projection
    that keeps most of the pool's average ``h h^T``.
    """
    moment = np.asarray(h.T @ h, dtype=np.float64) / max(h.shape[0], 1)
    _, vectors = np.linalg.eigh(moment)
    return vectors[:, ::-1][:, :dim]


class Bait(BatchStrategy):
    """BAIT (Ash et al., 2021): forward-backward greedy on the last layer's Fisher information.

    See the module docstring and :func:`bait_greedy` for the algorithm; ``lam`` (default 1)
    and the 2x oversampling follow the authors' code. The Fisher of every example is the
    expected one under the model's own probabilities (the authors' "expected gradient
    embeddings"), exact in the class dimension (rank K - 1 per example) unless
    ``max_fisher_rank`` (default None) asks for its top eigen-directions only.

    Approximations to scale, all uniform random subsamples drawn from the rng:

    * features are projected onto the top ``feature_dim`` (default 32) eigenvectors of the
      pool's uncentred second moment of ``h`` (estimated on ``fisher_sample`` examples),
      so the Fisher lives in K * feature_dim dimensions instead of K * D;
    * the pool Fisher F and the labeled Fisher are averages over at most ``fisher_sample``
      (default 50,000) examples each instead of all;
    * selection runs on at most ``max_candidates`` unlabeled examples (default 4,000, or
      ``oversample * budget`` if larger), exact on smaller pools.

    Cost: O(oversample * budget * n_cand * r^2 (K + r)) time with ``r = K - 1`` (or
    ``max_fisher_rank``), in stacked r x r products and solves: seconds for the paper's K = 2
    and 3, minutes for K = 10 at budget 1,000 (see the embedding-selection benchmark).
    Memory: the sampled features (``fisher_sample * D * 4`` bytes, 100 MB at D = 512), about
    ``n_cand * r * (K + 4 r) * 8`` bytes of per-candidate state, and a few
    (K * feature_dim)^2 float64 matrices.
    """

    name = "bait"
    needs_embeddings = True

    def __init__(
        self,
        b_parallel: int = 1,
        lam: float = 1.0,
        oversample: float = 2.0,
        max_candidates: int = 4_000,
        feature_dim: int = 32,
        fisher_sample: int = 50_000,
        max_fisher_rank: Optional[int] = None,
    ) -> None:
        super().__init__(b_parallel)
        self.lam = require_positive("lam", lam, integer=False)
        self.oversample = require_positive("oversample", oversample, integer=False)
        if self.oversample < 1.0:
            raise ValueError(f"oversample must be >= 1, got {oversample!r}")
        self.max_candidates = require_positive("max_candidates", max_candidates)
        self.feature_dim = require_positive("feature_dim", feature_dim)
        self.fisher_sample = require_positive("fisher_sample", fisher_sample)
        self.max_fisher_rank = None if max_fisher_rank is None else require_positive("max_fisher_rank", max_fisher_rank)

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        n = probs.shape[0]
        pool = subsample(np.arange(n), self.fisher_sample, rng)
        labeled = subsample(np.flatnonzero(observed >= 0), self.fisher_sample, rng)
        n_cand = max(self.max_candidates, int(np.ceil(self.oversample * budget)))
        candidates = subsample(unlabeled, n_cand, rng)

        pool_h = np.asarray(embeddings[pool], dtype=np.float32)
        basis = top_subspace(pool_h, self.feature_dim).astype(np.float32)

        def project(rows: np.ndarray) -> np.ndarray:
            return (np.asarray(embeddings[rows], dtype=np.float32) @ basis).astype(np.float64)

        fisher = average_fisher(probs[pool], (pool_h @ basis).astype(np.float64))
        del pool_h

        selection = bait_greedy(
            fisher_factors(probs[candidates], self.max_fisher_rank),
            project(candidates),
            budget,
            fisher,
            average_fisher(probs[labeled], project(labeled)),
            n_labeled=int(np.count_nonzero(observed >= 0)),
            lam=self.lam,
            oversample=self.oversample,
        )
        return candidates[selection.chosen]

    def __repr__(self) -> str:
        return (
            f"Bait(b_parallel={self.b_parallel}, lam={self.lam}, oversample={self.oversample}, "
            f"max_candidates={self.max_candidates}, feature_dim={self.feature_dim}, "
            f"fisher_sample={self.fisher_sample}, max_fisher_rank={self.max_fisher_rank})"
        )
