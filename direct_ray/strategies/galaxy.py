"""GALAXY (Zhang, Katz-Samuels, Nowak, ICML 2022): graph-based active learning at the extreme.

Each class ``k``'s sorted list (DIRECT paper, section 3.2; :mod:`.reduction` for the
positions convention) is a linear graph whose labeled nodes are ``+1`` (observed k) or
``-1`` (observed another class). Queries are sequential, one at a time, with the classes
taken round-robin (starting from a random class). On the current class's graph:

1. **Bisection** (the S^2 step): among the runs of unlabeled nodes lying between two
   consecutive labeled nodes with different labels, take the shortest and query its
   midpoint (position ``(a + b) // 2`` for labeled ends ``a < b``).
2. Otherwise query the unlabeled node nearest to a **cut**, an adjacent labeled pair
   ``+1 / -1``.
3. Otherwise a uniformly random unlabeled node.

Ties in (1) and (2) are broken uniformly at random. Every purchase updates every class's
graph. The graphs use sorted labeled positions plus two heaps with lazy deletion, so a
query costs O(K log n) amortised instead of a rescan of the pool.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from typing import Optional

import numpy as np

from direct_ray.strategies.base import UNLABELED, Strategy
from direct_ray.strategies.reduction import LabelView, class_order, labeled_positions, row_max

_RANDOM_TRIES = 64  # rejection draws before the random fallback enumerates the unlabeled pool


def _block_first(labeled: list[int], i: int) -> int:
    """First position of the block of consecutive labeled positions containing ``labeled[i]``."""
    x, lo, hi = labeled[i], 0, i
    while lo < hi:  # smallest j with labeled[j..i] consecutive
        mid = (lo + hi) // 2
        if x - labeled[mid] == i - mid:
            hi = mid
        else:
            lo = mid + 1
    return labeled[lo]


def _block_last(labeled: list[int], i: int) -> int:
    """Last position of the block of consecutive labeled positions containing ``labeled[i]``."""
    x, lo, hi = labeled[i], i, len(labeled) - 1
    while lo < hi:  # largest j with labeled[i..j] consecutive
        mid = (lo + hi + 1) // 2
        if labeled[mid] - x == mid - i:
            lo = mid
        else:
            hi = mid - 1
    return labeled[lo]


class LinearGraph:
    """One class's linear graph: labeled positions, candidate runs and cut neighbourhoods.

    * ``labeled``: sorted 1-based positions of labeled nodes (a Python list, ``bisect``).
    * ``runs``: heap of ``(length, tiebreak, a, b)``, a run of unlabeled nodes between
      labeled ``a < b`` with different labels; stale once a label lands inside.
    * ``near_cuts``: heap of ``(distance, tiebreak, p, anchor, step)``: ``p`` is the nearest
      unlabeled node beyond the labeled ``anchor`` (one end of a cut) in direction ``step``;
      refreshed when ``p`` gets labeled (cuts never disappear: labels are permanent).
    """

    def __init__(self, order: np.ndarray, k: int, labels: np.ndarray, rng: np.random.Generator) -> None:
        self.n = order.size
        index_dtype = np.int32 if self.n < 2**31 else np.int64  # K lists of N: halve the memory
        self.order = order.astype(index_dtype)
        self.k = k
        self._labels = labels  # the shared compact labels, pool order (kept current by LabelView)
        self._rng = rng
        self.inverse = np.empty(self.n, dtype=index_dtype)
        self.inverse[order] = np.arange(self.n, dtype=index_dtype)
        positions, is_k = labeled_positions(labels[order], k)
        self.labeled: list[int] = positions.tolist()
        differ = is_k[1:] != is_k[:-1]
        gaps = np.diff(positions) - 1
        run_at = np.flatnonzero(differ & (gaps > 0))
        self.runs = list(
            zip(gaps[run_at].tolist(), rng.random(run_at.size).tolist(),
                positions[run_at].tolist(), positions[run_at + 1].tolist())
        )
        heapq.heapify(self.runs)
        self.near_cuts: list[tuple[int, float, int, int, int]] = []
        for i in np.flatnonzero(differ & (gaps == 0)).tolist():
            self._add_cut(i)

    def _sign(self, position: int) -> bool:
        return bool(self._labels[self.order[position - 1]] == self.k)

    def _push_near(self, anchor: int, i: int, step: int) -> None:
        """Push the nearest unlabeled node beyond labeled ``anchor = labeled[i]`` in direction ``step``."""
        p = _block_first(self.labeled, i) - 1 if step < 0 else _block_last(self.labeled, i) + 1
        if 1 <= p <= self.n:
            heapq.heappush(self.near_cuts, (abs(p - anchor), self._rng.random(), p, anchor, step))

    def _add_cut(self, i: int) -> None:
        """The labeled pair ``labeled[i], labeled[i] + 1`` became a cut."""
        self._push_near(self.labeled[i], i, -1)
        self._push_near(self.labeled[i + 1], i + 1, +1)

    def add(self, index: int, label: int) -> None:
        """Record a purchase: pool ``index`` was observed as ``label``."""
        p = int(self.inverse[index]) + 1
        i = bisect_left(self.labeled, p)
        self.labeled.insert(i, p)
        sign = label == self.k
        for left in (i - 1, i):  # the pairs (labeled[i-1], p) and (p, labeled[i+1])
            if left < 0 or left + 1 >= len(self.labeled):
                continue
            a, b = self.labeled[left], self.labeled[left + 1]
            other = b if a == p else a
            if self._sign(other) == sign:
                continue
            if b - a > 1:
                heapq.heappush(self.runs, (b - a - 1, self._rng.random(), a, b))
            else:
                self._add_cut(left)

    def next_query(self) -> Optional[int]:
        """The pool index GALAXY queries next on this graph, or None when it has no cut."""
        while self.runs:
            _, _, a, b = self.runs[0]
            after = bisect_right(self.labeled, a)
            if after < len(self.labeled) and self.labeled[after] == b:  # still consecutive
                return int(self.order[(a + b) // 2 - 1])
            heapq.heappop(self.runs)
        while self.near_cuts:
            _, _, p, anchor, step = self.near_cuts[0]
            if self._labels[self.order[p - 1]] == UNLABELED:
                return int(self.order[p - 1])
            heapq.heappop(self.near_cuts)
            self._push_near(anchor, bisect_left(self.labeled, anchor), step)
        return None


def random_unlabeled(labels: np.ndarray, rng: np.random.Generator) -> int:
    """A uniformly random unlabeled pool index (rejection sampling, then enumeration)."""
    for _ in range(_RANDOM_TRIES):
        index = int(rng.integers(labels.size))
        if labels[index] == UNLABELED:
            return index
    unlabeled = np.flatnonzero(labels == UNLABELED)
    return int(unlabeled[rng.integers(unlabeled.size)])


class Galaxy(Strategy):
    """GALAXY, sequential bisection on per-class linear graphs (see the module docstring).

    ``sequential_only``: it always queries one example at a time, whatever ``b_parallel``.
    """

    name = "galaxy"
    sequential_only = True

    def _select(self, probs, buyer, rng, embeddings: Optional[np.ndarray]) -> None:
        view = LabelView(buyer)
        num_classes = probs.shape[1]
        maxima = row_max(probs)
        graphs = [LinearGraph(class_order(probs, k, maxima), k, view.labels, rng) for k in range(num_classes)]
        k = int(rng.integers(num_classes))
        while view.remaining:
            index = graphs[k].next_query()
            if index is None:
                index = random_unlabeled(view.labels, rng)
            label = int(view.buy(np.array([index]))[0])
            for graph in graphs:
                graph.add(index, label)
            k = (k + 1) % num_classes
