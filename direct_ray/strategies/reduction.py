"""The 1-D reduction shared by DIRECT and GALAXY (DIRECT paper, section 4.1).

For each class ``k`` the pool is sorted by the margin score
``q_i^k = max_k' probs[i, k'] - probs[i, k]``, ascending, ties broken by *descending*
``probs[i, k]`` and then by ascending pool index. The most "k-like" example comes first, and
the order is a pure function of ``probs`` (no dependence on the sort algorithm).

Positions convention (used by every function here, by :mod:`.direct` and :mod:`.galaxy`)
----------------------------------------------------------------------------------------
* Sorted **positions** are 1-based: position ``p`` (``1 <= p <= N``) is the example
  ``order[p - 1]``, where ``order`` is the 0-based array returned by :func:`class_order`.
* Hypothesis ``h_j`` (``0 <= j <= N``) predicts "class k" for positions ``<= j`` and
  "not k" after; ``h_0`` predicts "not k" everywhere, ``h_N`` "k" everywhere.
* Signed weights ``w_p`` are ``+1`` (labeled k), ``-1`` (labeled another class) or ``0``
  (unlabeled); prefix sums ``S(j) = w_1 + ... + w_j`` with ``S(0) = 0``, stored as an array
  ``S`` of length ``N + 1`` with ``S[j] = S(j)``.
* The empirical 0-1 loss of ``h_j`` on the labeled set is ``L(j) = n_k - S(j)`` with ``n_k``
  the number of examples labeled k (the paper's Lemma 1), so ``argmin L = argmax S``.
* A **window** ``(I, J)`` with ``0 <= I < J <= N + 1`` holds the ``J - I`` hypotheses
  ``h_I, ..., h_{J-1}``; the examples that can tell them apart are the positions strictly
  inside, ``I < p < J``. A window of width ``J - I == 1`` holds exactly one hypothesis.

Sparse inputs: most functions take the labeled examples of one list as ``positions``
(sorted 1-based positions) and ``is_k`` (whether each was labeled k), which costs
O(#labeled) instead of O(N) to work with.
"""

from __future__ import annotations

from typing import Literal, Optional, get_args

import numpy as np

from direct_ray.strategies.base import UNLABELED, LabelBuyer, label_dtype

_ROW_CHUNK = 16384  # rows per chunk for row-wise maxima (keeps each chunk in cache)
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def row_max(probs: np.ndarray) -> np.ndarray:
    """``probs.max(axis=1)``, computed in row chunks (numpy's reduction over a short
    trailing axis is several times slower than element-wise maxima over columns)."""
    n, num_classes = probs.shape
    out = np.empty(n, dtype=probs.dtype)
    for start in range(0, n, _ROW_CHUNK):
        chunk = probs[start : start + _ROW_CHUNK]
        acc = out[start : start + _ROW_CHUNK]
        np.copyto(acc, chunk[:, 0])
        for k in range(1, num_classes):
            np.maximum(acc, chunk[:, k], out=acc)
    return out


def _working_dtype(probs: np.ndarray) -> np.dtype:
    """float32 and narrower floats are handled in float32 (exactly); wider ones in float64."""
    return np.dtype(np.float32) if probs.dtype.itemsize <= 4 else np.dtype(np.float64)


def margin_scores(probs: np.ndarray, k: int, maxima: Optional[np.ndarray] = None) -> np.ndarray:
    """``q^k = max_k' probs[:, k'] - probs[:, k]`` (>= 0, exactly 0 where k is an argmax).

    ``maxima`` may pass a precomputed :func:`row_max` to share it between classes.
    """
    dtype = _working_dtype(probs)
    if maxima is None:
        maxima = row_max(probs)
    q = maxima.astype(dtype, copy=False) - probs[:, k].astype(dtype, copy=False)
    q += dtype.type(0)  # turns a possible -0.0 into +0.0 (equal values, equal sort keys)
    return q


def _ordered_bits32(x: np.ndarray) -> np.ndarray:
    """Map finite float32 values to uint32 keys with the same order (-0.0 == +0.0).

    Non-negative floats keep their bits with the sign bit set; negative ones have all bits
    flipped (so larger magnitudes sort first).
    """
    bits = (x + np.float32(0)).view(np.uint32)
    flip = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones where negative
    flip |= np.uint32(0x80000000)
    flip ^= bits
    return flip


def class_order(probs: np.ndarray, k: int, maxima: Optional[np.ndarray] = None) -> np.ndarray:
    """The pool indices of class ``k``'s list: position ``p`` holds ``order[p - 1]``.

    Sorted by ascending ``q^k``, then descending ``probs[:, k]``, then ascending index.
    For float32 (and narrower) inputs with ``N < 2**32`` this is a fast exact path: one
    ``np.sort`` of ``(q bits, index)`` packed into uint64, then a stable sort by
    ``(run, descending probs bits)`` of only the examples whose ``q`` is tied. Otherwise it
    is ``np.lexsort``, which is exact for any float width.
    """
    n = probs.shape[0]
    q = margin_scores(probs, k, maxima)
    p_k = probs[:, k].astype(q.dtype, copy=False)
    if q.dtype != np.float32 or n >= 2**32:
        return np.lexsort((-p_k, q))  # stable: ties of (q, p) stay in index order
    # q >= +0.0, so its raw bits already sort like its values. In-place steps keep the
    # temporaries to two arrays of N uint64.
    packed = q.view(np.uint32).astype(np.uint64)
    packed <<= _SHIFT32
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    order = np.bitwise_and(packed, _LOW32).view(np.int64)  # indices < 2**32: same bits
    q_sorted = packed
    q_sorted >>= _SHIFT32
    same = q_sorted[1:] == q_sorted[:-1]
    if not same.any():
        return order
    tied = np.zeros(n, dtype=bool)
    tied[1:] = same
    tied[:-1] |= same
    tpos = np.flatnonzero(tied)
    # A new run starts where the tied positions are not contiguous or q changes.
    starts = np.ones(tpos.size, dtype=bool)
    starts[1:] = (np.diff(tpos) != 1) | (q_sorted[tpos[1:]] != q_sorted[tpos[:-1]])
    run = np.cumsum(starts, dtype=np.uint64)
    members = order[tpos]
    desc_p = ~_ordered_bits32(p_k[members])
    key = (run << _SHIFT32) | desc_p.astype(np.uint64)
    order[tpos] = members[np.argsort(key, kind="stable")]  # stable keeps index order
    return order


def labeled_positions(sorted_labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Labeled examples of a list: their 1-based positions and whether each is labeled k.

    ``sorted_labels`` is ``observed[order]`` (``-1`` = unlabeled).
    """
    idx = np.flatnonzero(sorted_labels != UNLABELED)
    return idx + 1, sorted_labels[idx] == k


def signed_weights(sorted_labels: np.ndarray, k: int) -> np.ndarray:
    """``+1`` where labeled k, ``-1`` where labeled another class, ``0`` where unlabeled."""
    w = (sorted_labels == k).astype(np.int64)
    w -= (sorted_labels != k) & (sorted_labels != UNLABELED)
    return w


def prefix_sums(weights: np.ndarray) -> np.ndarray:
    """``S`` of length ``len(weights) + 1``: ``S[0] = 0``, ``S[j] = weights[:j].sum()``."""
    s = np.zeros(weights.size + 1, dtype=np.int64)
    np.cumsum(weights, out=s[1:])
    return s


TieRule = Literal["half", "lowest", "largest", "minority", "midpoint"]
"""How :func:`threshold_estimate` picks one ``j`` among the maximisers of ``S`` (see there)."""
TIE_RULES: tuple[str, ...] = get_args(TieRule)


def _segments(positions: np.ndarray, is_k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S`` as constant segments: ``(values, lo, hi)``; segment ``t`` covers ``j = lo[t] .. hi[t]``.

    ``S`` changes only at labeled positions: segment ``t`` covers ``[positions[t], positions[t+1] - 1]``
    with value ``cumsum(w)[t]``; the segment before the first labeled position has value 0.
    Segments are never empty. O(L) for ``L`` labeled examples.
    """
    positions = np.asarray(positions, dtype=np.int64)
    values = np.concatenate(([0], np.cumsum(np.where(is_k, 1, -1))))
    lo = np.concatenate(([0], positions))
    hi = np.concatenate((positions - 1, [n]))
    return values, lo, hi


def threshold_estimate(positions: np.ndarray, is_k: np.ndarray, n: int, tie: TieRule = "half") -> int:
    """``j_hat = argmax_j S(j)`` over ``j = 0..n``, one maximiser chosen by the rule ``tie``.

    The maximisers are usually a whole gap of unlabeled positions (from the last labeled k
    to just before the next labeled not-k), so the rule decides where phase 2 buys:

    * ``"half"``: closest to ``n / 2``, then smaller (DIRECT paper, Algorithm 1);
    * ``"lowest"``: the smallest maximiser (the authors' public code, ``np.argmax``);
    * ``"largest"``: the largest maximiser;
    * ``"minority"``: the largest if class k holds fewer than half of the labeled examples
      of the list, the smallest otherwise (DIRECT paper, section 3, Definition 4.1);
    * ``"midpoint"``: the middle (rounded down) of the lowest maximal segment.

    Works on the ``L`` labeled examples in O(L) (see :func:`_segments`).
    """
    values, lo, hi = _segments(positions, is_k, n)
    best = np.flatnonzero(values == values.max())
    if tie == "half":
        nearest = np.clip(n // 2, lo[best], hi[best])
        return int(nearest[np.argmin(np.abs(2 * nearest - n))])
    if tie == "minority":
        tie = "largest" if 2 * int(np.count_nonzero(is_k)) < len(is_k) else "lowest"
    if tie == "lowest":
        return int(lo[best[0]])
    if tie == "largest":
        return int(hi[best[-1]])
    if tie == "midpoint":
        return int((lo[best[0]] + hi[best[0]]) // 2)
    raise ValueError(f"tie must be one of {', '.join(TIE_RULES)}, got {tie!r}")


def version_space(positions: np.ndarray, is_k: np.ndarray, n: int) -> tuple[int, int]:
    """The initial window ``(I, J)`` of VReduce (DIRECT paper, Algorithm 2).

    ``a`` = first labeled position whose label is not k; ``I`` = last labeled position
    before ``a`` (all of which are labeled k), 0 if none. ``z`` = last position labeled k;
    ``J`` = first labeled position after ``z`` (all of which are not k), ``n + 1`` if none.
    Every empirical risk minimiser lies in ``h_I .. h_{J-1}``, and ``I < J`` always.
    """
    positions = np.asarray(positions, dtype=np.int64)
    not_k = np.flatnonzero(~is_k)
    first_other = int(not_k[0]) if not_k.size else positions.size
    i = int(positions[first_other - 1]) if first_other > 0 else 0
    ks = np.flatnonzero(is_k)
    after_last_k = int(ks[-1]) + 1 if ks.size else 0
    j = int(positions[after_last_k]) if after_last_k < positions.size else n + 1
    return i, j


def near_optimal_window(positions: np.ndarray, is_k: np.ndarray, n: int, slack: int) -> tuple[int, int]:
    """A VReduce start that one flipped label cannot blow open: the hypotheses within ``slack``
    of the best empirical loss.

    The window ``(I, J)`` is the smallest holding every ``h_j`` with ``L(j) <= min L + slack``
    (equivalently ``S(j) >= max S - slack``). It always holds every empirical risk minimiser.
    On labels that the list separates (every labeled k before every labeled not-k), ``S``
    rises to its maximum at the last labeled k, stays there up to the next labeled not-k and
    falls after it, so with ``slack = 0`` the window is exactly :func:`version_space`, and a
    larger slack only widens it by ``slack`` labeled examples on each side: VReduce keeps the
    paper's guarantees on clean labels, at the price of a slightly larger shrink factor.
    Under noise, :func:`version_space` ends at the first labeled not-k after the *last*
    labeled k, so one flipped label deep in the other class's region stretches it over most
    of the list; here that label only lifts ``S`` by one far below its maximum and leaves the
    window where it was.
    """
    values, lo, hi = _segments(positions, is_k, n)
    near = np.flatnonzero(values >= values.max() - slack)
    return int(lo[near[0]]), int(hi[near[-1]]) + 1


def nearest_unlabeled(unlabeled_positions: np.ndarray, j_hat: int, count: int) -> np.ndarray:
    """Up to ``count`` unlabeled positions nearest the cut after ``j_hat``, nearest first.

    The visiting order is ``j_hat, j_hat + 1, j_hat - 1, j_hat + 2, ...`` (DIRECT paper,
    Algorithm 1, phase 2); ``unlabeled_positions`` must be sorted ascending.
    """
    split = int(np.searchsorted(unlabeled_positions, j_hat, side="right"))
    left = unlabeled_positions[max(0, split - count) : split]
    right = unlabeled_positions[split : split + count]
    rank = np.concatenate((2 * (j_hat - left), 2 * (right - j_hat) - 1))
    chosen = np.concatenate((left, right))[np.argsort(rank, kind="stable")]
    return chosen[:count]


class LabelView:
    """A :class:`LabelBuyer` plus a compact (int8/int16) copy of its observed labels.

    Gathering ``labels[order]`` from a 1-byte array is several times faster than from the
    buyer's int64 array; :meth:`buy` keeps both in step. This is the only stateful helper
    of the module.
    """

    def __init__(self, buyer: LabelBuyer) -> None:
        self.buyer = buyer
        self.labels = buyer.observed.astype(label_dtype(buyer.num_classes))

    @property
    def b_parallel(self) -> int:
        return self.buyer.b_parallel

    @property
    def remaining(self) -> int:
        return self.buyer.remaining

    def buy(self, indices: np.ndarray) -> np.ndarray:
        """One parallel batch (at most ``b_parallel`` pool indices); returns the labels."""
        labels = self.buyer.buy(indices)
        self.labels[np.asarray(indices, dtype=np.int64)] = labels
        return labels

    def buy_all(self, indices: np.ndarray) -> np.ndarray:
        """A fixed list, in batches of ``b_parallel`` (see :meth:`LabelBuyer.buy_all`); returns the labels."""
        labels = self.buyer.buy_all(indices)
        self.labels[np.asarray(indices, dtype=np.int64)] = labels
        return labels
