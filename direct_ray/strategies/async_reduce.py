"""DIRECT with asynchronous annotators: VReduce that places a query whenever an annotator is free.

The paper's VReduce (Algorithm 2) sends ``B_parallel`` queries together and waits for all of
them before it shrinks the window; with annotators of uneven speed the fast ones then wait
for the slowest of every batch. The paper names an asynchronous variant as future work
(section 6). This module is that variant; it is used when the ``annotate`` object offers
asynchronous buying (``submit`` / ``next_answer``, see :mod:`.base`), and it is exactly
the synchronous algorithm when ``B_parallel = 1``.

The asynchronous VReduce rule
-----------------------------
For class ``k`` with budget ``b`` and window ``(I, J)`` from the version space
(:func:`~.reduction.version_space`):

1. **One shrink step per answer.** The schedule has ``m = b`` steps (one per label) instead of
   ``ceil(b / B_parallel)``: widths ``round(W0 / c**t)`` with ``c = W0 ** (1/b)``
   (:func:`~.direct.shrink_schedule`), so after the ``b``-th answer the window holds one
   hypothesis, as in the synchronous version. At each answer the window moves to the
   placement that :func:`~.direct.best_window` picks from every label answered so far;
   queries still in flight count as unlabeled.
2. **Place the next query in the current window, away from the ones in flight.** Whenever
   fewer than ``B_parallel`` queries are in flight, the next one is drawn uniformly among
   the unlabeled positions strictly inside the *current* window that are not in flight.
   (Drawing an in-flight position would buy nothing new; drawing from the current window,
   not the one the earlier queries came from, uses every answer that is already back.)
3. **Stop when the window is resolved.** When the budget is submitted, or no unlabeled
   position is left in the window, the class submits nothing more; once its own queries
   are answered the remaining steps run without labels (as in the synchronous version), and
   the unspent budget returns to the round. If the window's only unlabeled positions are in
   flight the class waits for an answer.

Why this rule: the synchronous version shrinks by ``c`` after each batch of ``B_parallel``
labels, i.e. by about ``c ** (1/B_parallel)`` per label; one step per answer keeps that rate
but lets each new query use every label already back. In flight there are never more than
``B_parallel`` queries, each drawn from a window that was current when it was placed, so
at worst ``B_parallel - 1`` labels are "stale" by a few small steps, the same information
lag as a synchronous batch. Measured on noise-free planted lists it finds the cut as often
as the synchronous version (``tests/unit/strategies/test_async_reduce.py``).

The DIRECT round without idle annotators
----------------------------------------
Phase 1 runs the classes' reductions as a pipeline: a slot goes to the first class (in the
round's random permutation) that can place a query; the next class starts only when every
started class has submitted its budget or is waiting on its own in-flight queries, so
annotators are not left idle between classes. Each answer is routed to the class that asked
for it. Phase 2 starts when phase 1 has submitted its whole budget and a slot is free: for each
class (a new permutation) the threshold ``j_hat`` is recomputed from every label *answered
by then* (the last phase-1 queries may still be in flight: waiting for them would idle the
team) and the unlabeled positions nearest to it that are not in flight are submitted as
slots free up.
The round ends when the last answer is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from direct_ray.strategies.base import UNLABELED, LabelBuyer, SelectionError
from direct_ray.strategies.direct import best_window, shrink_schedule
from direct_ray.strategies.reduction import (
    LabelView,
    class_order,
    labeled_positions,
    nearest_unlabeled,
    row_max,
    threshold_estimate,
    version_space,
)


@dataclass(frozen=True)
class Draw:
    """One query an asynchronous VReduce placed: the window it came from and what was in flight."""

    index: int
    window: tuple[int, int]
    in_flight: frozenset[int]


@dataclass
class AsyncVReduce:
    """One class's asynchronous VReduce (the rule in the module docstring); 1-based positions.

    :meth:`draw` places the next query (or returns ``None``), :meth:`answered` takes one of its
    own answers (one shrink step), :meth:`settle` runs the remaining steps once nothing can
    change the window any more.
    """

    view: LabelView
    order: np.ndarray
    k: int
    budget: int
    rng: np.random.Generator
    in_flight: set[int]
    lo: int = 0
    hi: int = 0
    initial_window: tuple[int, int] = (0, 0)
    draws: list[Draw] = field(default_factory=list)
    steps: int = 0
    mine: set[int] = field(default_factory=set)
    settled: bool = False
    _widths: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.budget = min(int(self.budget), self.view.remaining)
        positions, is_k = labeled_positions(self.view.labels[self.order], self.k)
        self.lo, self.hi = version_space(positions, is_k, self.order.size)
        self.initial_window = (self.lo, self.hi)
        self._widths = shrink_schedule(self.hi - self.lo, self.budget)

    @property
    def window(self) -> tuple[int, int]:
        return self.lo, self.hi

    @property
    def spent(self) -> int:
        return len(self.draws)

    def _inside(self) -> np.ndarray:
        return self.order[self.lo : self.hi - 1]  # pool indices at positions lo+1 .. hi-1

    def draw(self) -> Optional[int]:
        """The next query: uniform over unlabeled, not-in-flight positions inside the window; None if none."""
        if self.settled or self.spent >= self.budget:
            return None
        inside = self._inside()
        free = np.flatnonzero(self.view.labels[inside] == UNLABELED)
        if self.in_flight and free.size:
            free = free[~np.isin(inside[free], np.fromiter(self.in_flight, dtype=np.int64))]
        if not free.size:
            return None
        index = int(inside[free[self.rng.choice(free.size, size=1, replace=False)][0]])
        self.draws.append(Draw(index, self.window, frozenset(self.in_flight)))
        self.mine.add(index)
        return index

    def answered(self, index: int) -> None:
        """One of this class's queries is answered (its label is in ``view``): one shrink step."""
        self.mine.remove(index)
        self._step()

    def _step(self) -> None:
        width = self._widths[self.steps]
        self.steps += 1
        self.lo += best_window(self.view.labels[self._inside()], self.k, width, self.rng)
        self.hi = self.lo + width

    @property
    def done_submitting(self) -> bool:
        """True when the budget is submitted or the window has no unlabeled position left."""
        return self.spent >= self.budget or not (self.view.labels[self._inside()] == UNLABELED).any()

    def settle(self) -> bool:
        """Run the remaining steps if nothing can change the window any more; True once settled."""
        if not self.settled and not self.mine and self.done_submitting:
            while self.steps < len(self._widths):
                self._step()
            self.settled = True
        return self.settled


class _AsyncRound:
    """The asynchronous buying of one selection: submissions, and answers routed to their class."""

    def __init__(self, view: LabelView) -> None:
        if not view.buyer.asynchronous:
            raise SelectionError("asynchronous VReduce needs an annotate object that offers submit and next_answer")
        self.view = view
        self.buyer: LabelBuyer = view.buyer
        self.owner: dict[int, AsyncVReduce] = {}

    @property
    def slot_free(self) -> bool:
        return len(self.buyer.in_flight) < self.buyer.b_parallel

    def submit(self, index: int, reducer: Optional[AsyncVReduce] = None) -> None:
        self.buyer.submit(index)
        if reducer is not None:
            self.owner[index] = reducer

    def take_answer(self) -> None:
        """Wait for the in-flight query that finishes first; record it and step its class's window."""
        index, label = self.buyer.next_answer()
        self.view.labels[index] = label
        reducer = self.owner.pop(index, None)
        if reducer is not None:
            reducer.answered(index)
            reducer.settle()

    def wait_for_slot(self) -> None:
        """Take answers until fewer than ``b_parallel`` queries are in flight."""
        while not self.slot_free:
            self.take_answer()

    def reduce(self, starts: list) -> list[AsyncVReduce]:
        """Phase 1: run the reductions ``starts`` builds (callables, one per class, in order) as a pipeline.

        Returns once every class has submitted its budget (or settled); the last queries may
        still be in flight.
        """
        waiting = list(starts)
        active: list[AsyncVReduce] = []
        started: list[AsyncVReduce] = []
        while True:
            while self.slot_free:
                index = None
                for reducer in active:
                    index = reducer.draw()
                    if index is not None:
                        self.submit(index, reducer)
                        break
                if index is None:
                    active = [r for r in active if not r.settle()]
                    if not waiting:
                        break
                    reducer = waiting.pop(0)()
                    started.append(reducer)
                    active.append(reducer)
            if not waiting and all(r.done_submitting for r in active):
                return started
            if not self.buyer.in_flight:
                raise SelectionError("asynchronous VReduce is stuck: nothing in flight and nothing to place")
            self.take_answer()

    def finish(self, reducers: list[AsyncVReduce]) -> None:
        """Wait for every query in flight, then settle every reduction."""
        while self.buyer.in_flight:
            self.take_answer()
        for reducer in reducers:
            reducer.settle()

    def near_threshold(self, order: np.ndarray, k: int, count: int) -> int:
        """Phase 2 for one class: submit up to ``count`` unlabeled, not-in-flight examples nearest ``j_hat``.

        ``j_hat`` comes from every label answered by the time a slot is free. Returns how many
        were submitted.
        """
        self.wait_for_slot()
        sorted_labels = self.view.labels[order]
        positions, is_k = labeled_positions(sorted_labels, k)
        j_hat = threshold_estimate(positions, is_k, order.size)
        open_ = sorted_labels == UNLABELED
        if self.buyer.in_flight:
            open_ &= ~np.isin(order, np.fromiter(self.buyer.in_flight, dtype=np.int64))
        chosen = order[nearest_unlabeled(np.flatnonzero(open_) + 1, j_hat, count) - 1]
        for index in chosen.tolist():
            self.wait_for_slot()
            self.submit(index)
        return int(chosen.size)


@dataclass(frozen=True)
class AsyncVReduceResult:
    """What one :func:`async_vreduce` did: windows as in :mod:`.reduction`, each query with its context."""

    initial_window: tuple[int, int]
    window: tuple[int, int]
    draws: tuple[Draw, ...]
    steps: int
    spent: int


def async_vreduce(view: LabelView, order: np.ndarray, k: int, budget: int, rng: np.random.Generator) -> AsyncVReduceResult:
    """Asynchronous VReduce (module docstring) on class ``k``'s list ``order``; buys at most ``budget``.

    Waits for its last answer and ends with a window of one hypothesis.
    """
    run = _AsyncRound(view)
    in_flight = view.buyer.in_flight
    reducers = run.reduce([lambda: AsyncVReduce(view, order, k, budget, rng, in_flight)])
    run.finish(reducers)
    reducer = reducers[0]
    return AsyncVReduceResult(reducer.initial_window, reducer.window, tuple(reducer.draws), reducer.steps, reducer.spent)


def direct_round(probs: np.ndarray, buyer: LabelBuyer, rng: np.random.Generator) -> None:
    """One DIRECT round (Algorithm 1) with asynchronous annotators: the pipeline of the module docstring.

    The same budgets as :class:`~.direct.Direct`: ``floor(budget / (2K))`` per class in
    phase 1, the rest split evenly over the classes in phase 2, a class's leftover passed
    on to the next.
    """
    view = LabelView(buyer)
    run = _AsyncRound(view)
    num_classes = probs.shape[1]
    maxima = row_max(probs)
    orders: dict[int, np.ndarray] = {}
    per_class = buyer.budget // (2 * num_classes)

    def start(k: int):
        def build() -> AsyncVReduce:
            orders[k] = class_order(probs, k, maxima)
            return AsyncVReduce(view, orders[k], k, per_class, rng, buyer.in_flight)

        return build

    reducers = run.reduce([start(k) for k in rng.permutation(num_classes).tolist()])
    run.wait_for_slot()
    rest = buyer.remaining
    carry = 0
    for rank, k in enumerate(rng.permutation(num_classes).tolist()):
        quota = rest // num_classes + (rank < rest % num_classes) + carry
        carry = quota - run.near_threshold(orders[k], k, quota) if quota else 0
    run.finish(reducers)
