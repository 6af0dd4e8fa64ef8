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
(:func:`~.reduction.version_space`), the synchronous schedule is kept: ``m = ceil(b /
B_parallel)`` shrink steps with widths ``round(W0 / c**t)``, ``c = W0 ** (1/m)``
(:func:`~.direct.shrink_schedule`), so the last window holds one hypothesis. What changes is
when queries go out and when the window moves:

1. **Place a query whenever a slot is free, in the current window, away from the ones in
   flight.** While fewer than ``B_parallel`` queries are in flight and budget is left, the
   next query is drawn uniformly among the unlabeled positions strictly inside the
   *current* window that are not in flight. (An in-flight position would buy nothing new;
   the current window already uses every answer that is back.)
2. **Step ``t`` waits for ``(t + 1) * B_parallel - 1`` answers** (at most ``b``), then moves
   the window to the next width at the placement :func:`~.direct.best_window` picks from
   every label answered so far (queries in flight count as unlabeled).
3. **Stop when the window is resolved.** When the budget is submitted, or every position in
   the window is labeled or in flight, the class submits nothing more (windows only shrink,
   so it would never find a free position again) and its unspent budget returns to the
   round at once; once its own queries are answered the remaining steps run without labels,
   as in the synchronous version.

With ``B_parallel = 1`` this is exactly the synchronous algorithm (same draws, same windows).

Why step ``t`` waits ``B_parallel - 1`` answers longer than ``t * B_parallel``: with
``B_parallel`` queries always in flight, a query placed when an answer arrives is itself
answered about ``B_parallel`` answers later. The labels drawn from window ``t - 1`` are
therefore the answers from about ``t * B_parallel`` to ``(t + 1) * B_parallel``; waiting for
them gives each step nearly a whole batch of labels from the window it shrinks, as a
synchronous step has. Measured on planted lists (n = 1000, b = 100, 20 % label noise; the
share of seeds whose final window is within 20 positions of the true cut):

* one shrink step per answer (``m = b``): 3 % (B_parallel 5) and 17 % (10) of 60 seeds,
  against 70 % and 73 % for the synchronous version: a noisy label moves a window that has
  few labels inside, and a window never grows back. Rejected;
* step ``t`` after ``t * B_parallel`` answers: 53 % and 70 % of 100 seeds. Rejected;
* this rule, 200 seeds: 58.5 % and 79.5 % (synchronous 63.5 % and 73 %); with the cut at
  position 100, 44 % and 77 % (synchronous 47.5 % and 73.5 %).

Without noise every rule finds the cut exactly in all seeds, as the synchronous version does.

The DIRECT round without idle annotators
----------------------------------------
Phase 1 runs the classes' reductions as a pipeline: a slot goes to the first class (in the
round's phase-1 class order) that can place a query; the next class starts as soon as every
started class has submitted its budget or resolved its window (its last answers may still be
out), so annotators are not left idle between classes. Each answer is routed to the class
that asked for it. Phase 2 starts when phase 1 has submitted its whole budget and a slot is
free: for each class (in the phase-2 class order) the threshold ``j_hat`` is recomputed from every label *answered
by then* (the last phase-1 queries may still be in flight: waiting for them would idle the
team) and the unlabeled positions nearest to it that are not in flight are submitted as
slots free up.
The strategy takes every answer of its round; the runtime may train the round's model
before the last ones are back (rounds that overlap, :meth:`~direct_ray.annotation.TeamClock.close_round`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from direct_ray.strategies.base import UNLABELED, LabelBuyer, SelectionError
from direct_ray.strategies.direct import Direct, best_window, class_visit_order, shrink_schedule
from direct_ray.strategies.reduction import (
    LabelView,
    TieRule,
    class_order,
    labeled_positions,
    near_optimal_window,
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
    slack: Optional[int] = None  # None: the paper's version space; else near_optimal_window's slack
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
        n = self.order.size
        self.lo, self.hi = (version_space(positions, is_k, n) if self.slack is None
                            else near_optimal_window(positions, is_k, n, self.slack))
        self.initial_window = (self.lo, self.hi)
        self._widths = shrink_schedule(self.hi - self.lo, -(-self.budget // self.view.b_parallel))
        self._answers = 0

    @property
    def window(self) -> tuple[int, int]:
        return self.lo, self.hi

    @property
    def spent(self) -> int:
        return len(self.draws)

    def _free(self) -> tuple[np.ndarray, np.ndarray]:
        """The window's pool indices and the offsets among them that are unlabeled and not in flight."""
        inside = self.order[self.lo : self.hi - 1]  # pool indices at positions lo+1 .. hi-1
        free = np.flatnonzero(self.view.labels[inside] == UNLABELED)
        if self.in_flight and free.size:
            free = free[~np.isin(inside[free], np.fromiter(self.in_flight, dtype=np.int64))]
        return inside, free

    def draw(self) -> Optional[int]:
        """The next query: uniform over unlabeled, not-in-flight positions inside the window; None when done."""
        if self.settled or self.spent >= self.budget:
            return None
        inside, free = self._free()
        if not free.size:
            return None
        index = int(inside[free[self.rng.choice(free.size, size=1, replace=False)][0]])
        self.draws.append(Draw(index, self.window, frozenset(self.in_flight)))
        self.mine.add(index)
        return index

    def answered(self, index: int) -> None:
        """One of this class's queries is answered (its label is in ``view``): one shrink step."""
        self.mine.remove(index)
        self._answers += 1
        while self.steps < len(self._widths) and self._answers >= self._answers_before_step(self.steps + 1):
            self._step()

    def _answers_before_step(self, t: int) -> int:
        """Step ``t`` (1-based) waits for ``t * B_parallel + B_parallel - 1`` answers (at most the budget)."""
        b_parallel = self.view.b_parallel
        return min((t + 1) * b_parallel - 1, self.budget)

    def _step(self) -> None:
        width = self._widths[self.steps]
        self.steps += 1
        self.lo += best_window(self.view.labels[self.order[self.lo : self.hi - 1]], self.k, width, self.rng)
        self.hi = self.lo + width

    @property
    def done_submitting(self) -> bool:
        """True when the budget is submitted or every position in the window is labeled or in flight.

        Windows only shrink and labels are permanent, so a window with no free position never
        gets one back: the class is done even while its last answers are still out.
        """
        return self.spent >= self.budget or not self._free()[1].size

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
            self.take_answer()  # every slot is taken

    def finish(self, reducers: list[AsyncVReduce]) -> None:
        """Wait for every query in flight, then settle every reduction."""
        while self.buyer.in_flight:
            self.take_answer()
        for reducer in reducers:
            reducer.settle()

    def near_threshold(self, order: np.ndarray, k: int, count: int, tie: TieRule) -> int:
        """Phase 2 for one class: submit up to ``count`` unlabeled, not-in-flight examples nearest ``j_hat``.

        ``j_hat`` comes from every label answered by the time a slot is free, ties broken by
        ``tie``. Returns how many were submitted.
        """
        self.wait_for_slot()
        sorted_labels = self.view.labels[order]
        positions, is_k = labeled_positions(sorted_labels, k)
        j_hat = threshold_estimate(positions, is_k, order.size, tie)
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


def direct_round(strategy: Direct, probs: np.ndarray, buyer: LabelBuyer, rng: np.random.Generator) -> None:
    """One round of ``strategy`` (DIRECT, Algorithm 1) with asynchronous annotators: the pipeline of the module docstring.

    Honours the strategy's options as its synchronous round does: phase 1's budget per
    class, the version space it starts from, the class orders of both phases and phase 2's
    tie rule; a class's phase-2 leftover passes on to the next class.
    """
    view = LabelView(buyer)
    run = _AsyncRound(view)
    num_classes = probs.shape[1]
    maxima = row_max(probs)
    orders: dict[int, np.ndarray] = {}
    per_class = strategy.phase1_budget(buyer.budget, num_classes)
    slack = None if strategy.version_space == "paper" else strategy.version_space_slack

    def start(k: int):
        def build() -> AsyncVReduce:
            orders[k] = class_order(probs, k, maxima)
            return AsyncVReduce(view, orders[k], k, per_class, rng, buyer.in_flight, slack)

        return build

    reducers = run.reduce([start(k) for k in class_visit_order(view.labels, num_classes, strategy.phase1_order, rng)])
    run.wait_for_slot()
    rest = buyer.remaining
    carry = 0
    for rank, k in enumerate(class_visit_order(view.labels, num_classes, strategy.phase2_order, rng)):
        quota = rest // num_classes + (rank < rest % num_classes) + carry
        carry = quota - run.near_threshold(orders[k], k, quota, strategy.threshold_tie) if quota else 0
    run.finish(reducers)
