"""The selection contract shared by every strategy.

A strategy is given the current model's softmax outputs on the whole pool, the labels
observed so far (``-1`` where unlabeled), a budget and an ``annotate`` callable, and buys
labels by calling ``annotate`` with at most ``b_parallel`` pool indices at a time (all of
one call are "in flight together": one query per simulated annotator).

Strategies are pure numpy: they never import Ray or torch, so the same object runs in a
unit test with a fake oracle and inside the runtime's selection actor.

Two kinds of strategy share this module:

* :class:`Strategy` subclasses implement ``_select`` and may adapt to the labels they buy
  during the round (DIRECT, GALAXY).
* :class:`BatchStrategy` subclasses only *choose* a batch from the unlabeled pool
  (random, the uncertainty samplers, the embedding baselines); the base class buys it in
  chunks of ``b_parallel``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar, Optional

import numpy as np

AnnotateFn = Callable[[np.ndarray], np.ndarray]
"""``annotate(indices) -> observed labels``: called with at most ``b_parallel`` indices.

An ``annotate`` may also offer ``annotate.queue(indices, b_parallel) -> observed labels``:
answer a fixed list exactly as consecutive calls ``annotate(indices[s : s + b_parallel])``
would, in one go. :meth:`LabelBuyer.buy_all` uses it when present, so a runtime can hand each
annotator its share of a list that no answer can change (one message per annotator instead
of one per label). Without it, ``buy_all`` makes those calls itself.

An ``annotate`` that also offers ``annotate.submit(index)`` (send one query to a free
annotator now) and ``annotate.next_answer() -> (index, label)`` (the in-flight query that
finishes first, by simulated time) buys asynchronously: :class:`LabelBuyer` keeps at most
``b_parallel`` queries in flight and counts each against the budget when it is submitted.
"""

UNLABELED = -1


def label_dtype(num_classes: int) -> type:
    """The smallest signed integer type holding ``-1 .. num_classes - 1`` (labels, unlabeled marker)."""
    return np.int8 if num_classes <= 127 else np.int16 if num_classes <= 32767 else np.int32


class SelectionError(RuntimeError):
    """A strategy or annotator broke the selection contract (a bug, never bad luck)."""


def validate_inputs(
    probs: np.ndarray, observed: np.ndarray, budget: int, embeddings: Optional[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and values of the arguments to ``select`` and return them as arrays.

    ``probs`` must be a finite N x K array with K >= 2; ``observed`` an integer array of
    length N with values in ``-1..K-1``; ``budget`` a non-negative int; ``embeddings``, when
    given, an N x D array.
    """
    probs = np.asarray(probs)
    observed = np.asarray(observed)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be an N x K array with K >= 2, got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be floating point, got dtype {probs.dtype}")
    n, k = probs.shape
    if not np.isfinite(probs).all():
        raise ValueError("probs contains NaN or infinite values")
    if observed.shape != (n,):
        raise ValueError(f"observed must have shape ({n},) to match probs, got {observed.shape}")
    if not np.issubdtype(observed.dtype, np.integer):
        raise ValueError(f"observed must be an integer array, got dtype {observed.dtype}")
    if n and (observed.min() < UNLABELED or observed.max() >= k):
        raise ValueError(f"observed labels must lie in -1..{k - 1} (-1 = unlabeled)")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be a non-negative integer, got {budget!r}")
    if embeddings is not None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(f"embeddings must be an N x D array with N = {n}, got {emb.shape}")
    return probs, observed


class LabelBuyer:
    """Buys labels through ``annotate`` and keeps the round's bookkeeping.

    It owns a private copy of ``observed`` (so the caller's array is never mutated), enforces
    the contract on every call (at most ``b_parallel`` indices, never an index that is
    already labeled or repeated, never past the budget) and checks the labels that come
    back. ``observed`` on this object is always up to date with what was bought.

    With an asynchronous ``annotate`` (see :data:`AnnotateFn`) it also enforces: at most
    ``b_parallel`` queries in flight, never an index already in flight, and every answer
    belongs to a query in flight. A query counts against the budget when it is submitted;
    :meth:`bought` lists the labels in the order their answers arrived.
    """

    def __init__(
        self, observed: np.ndarray, num_classes: int, budget: int, b_parallel: int, annotate: AnnotateFn
    ) -> None:
        self.observed = np.array(observed, dtype=np.int64, copy=True)
        self.num_classes = num_classes
        self.budget = int(budget)
        self.b_parallel = int(b_parallel)
        self._annotate = annotate
        self._bought: list[np.ndarray] = []
        self.spent = 0
        self.asynchronous = callable(getattr(annotate, "submit", None)) and callable(getattr(annotate, "next_answer", None))
        self.in_flight: set[int] = set()

    @property
    def remaining(self) -> int:
        return self.budget - self.spent

    def is_labeled(self, indices: np.ndarray) -> np.ndarray:
        return self.observed[indices] != UNLABELED

    def buy(self, indices: np.ndarray) -> np.ndarray:
        """Send one parallel batch (<= b_parallel indices) to the annotators; return their labels."""
        indices = self._checked(indices)
        if indices.size > self.b_parallel:
            raise SelectionError(f"batch of {indices.size} exceeds b_parallel={self.b_parallel}")
        if self.asynchronous:
            for index in indices.tolist():
                self.submit(index)
            return self._wait_for(indices)
        return self._record(indices, self._annotate(indices.copy()) if indices.size else [])

    def submit(self, index: int) -> None:
        """Asynchronous buying: send one query to a free annotator now (it counts against the budget)."""
        if not self.asynchronous:
            raise SelectionError("submit needs an annotate object that offers submit and next_answer")
        index = int(index)
        if len(self.in_flight) >= self.b_parallel:
            raise SelectionError(f"{len(self.in_flight)} queries already in flight, b_parallel={self.b_parallel}")
        if index in self.in_flight:
            raise SelectionError(f"index {index} is already in flight")
        self._checked(np.array([index]))
        self._annotate.submit(index)
        self.in_flight.add(index)
        self.spent += 1

    def next_answer(self) -> tuple[int, int]:
        """Asynchronous buying: wait for the in-flight query that finishes first; ``(index, label)``."""
        if not self.in_flight:
            raise SelectionError("next_answer with no query in flight")
        index, label = self._annotate.next_answer()
        index, label = int(index), int(label)
        if index not in self.in_flight:
            raise SelectionError(f"annotate answered index {index}, which is not in flight")
        if not 0 <= label < self.num_classes:
            raise SelectionError(f"annotate returned a label outside 0..{self.num_classes - 1}")
        self.in_flight.remove(index)
        self.observed[index] = label
        self._bought.append(np.array([index], dtype=np.int64))
        return index, label

    def submit_all(self, indices: np.ndarray) -> None:
        """Asynchronous buying of a fixed list: each item goes out as soon as a slot is free.

        Answers that arrive meanwhile are recorded; those still in flight at the end are not
        waited for.
        """
        for index in np.asarray(indices, dtype=np.int64).tolist():
            while len(self.in_flight) >= self.b_parallel:
                self.next_answer()
            self.submit(index)

    def drain(self) -> None:
        """Asynchronous buying: wait for every query in flight."""
        while self.in_flight:
            self.next_answer()

    def _wait_for(self, indices: np.ndarray) -> np.ndarray:
        """Take answers until every one of ``indices`` is labeled; their labels, in order."""
        while (self.observed[indices] == UNLABELED).any():
            self.next_answer()
        return self.observed[indices].copy()

    def buy_all(self, indices: np.ndarray) -> np.ndarray:
        """Buy a fixed list in batches of ``b_parallel``, in the given order; return the labels.

        No answer can change what is bought, so the whole list goes to ``annotate.queue`` at
        once when the annotate callable offers it (see :data:`AnnotateFn`); the purchases,
        their order and their labels are the same as batch by batch.
        """
        indices = self._checked(indices)
        if self.asynchronous:
            self.submit_all(indices)
            return self._wait_for(indices)
        queue = getattr(self._annotate, "queue", None)
        if queue is not None and indices.size:
            return self._record(indices, queue(indices.copy(), self.b_parallel))
        labels = [self.buy(indices[s : s + self.b_parallel]) for s in range(0, indices.size, self.b_parallel)]
        return np.concatenate(labels) if labels else np.empty(0, dtype=np.int64)

    def _checked(self, indices: np.ndarray) -> np.ndarray:
        """``indices`` as int64, after checking they may be bought now (budget, repeats, labeled)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1:
            raise SelectionError(f"indices must be 1-D, got shape {indices.shape}")
        if indices.size > self.remaining:
            raise SelectionError(f"batch of {indices.size} exceeds the remaining budget {self.remaining}")
        if np.unique(indices).size != indices.size:
            raise SelectionError("a batch may not repeat an index")
        if self.is_labeled(indices).any():
            raise SelectionError("a batch may not contain an index that is already labeled")
        return indices

    def _record(self, indices: np.ndarray, labels) -> np.ndarray:
        """Check the labels that came back for ``indices`` and book the purchase."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != indices.shape:
            raise SelectionError(f"annotate returned {labels.shape} labels for {indices.shape} queries")
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise SelectionError(f"annotate returned a label outside 0..{self.num_classes - 1}")
        if indices.size:
            self.observed[indices] = labels
            self._bought.append(indices)
            self.spent += indices.size
        return labels

    def bought(self) -> np.ndarray:
        if not self._bought:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(self._bought)


class SubsetAnnotate:
    """An ``annotate`` for a strategy shown part of the pool: its positions ``i`` are pool indices ``keep[i]``.

    It offers what the wrapped ``annotate`` offers (``queue``, ``submit`` / ``next_answer``).
    """

    def __init__(self, annotate: AnnotateFn, keep: np.ndarray) -> None:
        self._annotate, self._keep = annotate, np.asarray(keep, dtype=np.int64)
        if callable(getattr(annotate, "queue", None)):
            self.queue = lambda indices, b_parallel: annotate.queue(self._keep[np.asarray(indices, dtype=np.int64)], b_parallel)
        if callable(getattr(annotate, "submit", None)) and callable(getattr(annotate, "next_answer", None)):
            self.submit = lambda index: annotate.submit(int(self._keep[index]))
            self.next_answer = self._next_answer

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        return self._annotate(self._keep[np.asarray(indices, dtype=np.int64)])

    def _next_answer(self) -> tuple[int, int]:
        index, label = self._annotate.next_answer()
        position = int(np.searchsorted(self._keep, index))
        if position >= self._keep.size or self._keep[position] != index:
            raise SelectionError(f"annotate answered for pool index {index}, which the strategy was not shown")
        return position, label


class Strategy(ABC):
    """Base class of every selection strategy (see the module docstring for the contract)."""

    name: ClassVar[str]
    needs_embeddings: ClassVar[bool] = False
    #: True for strategies that can only query one example at a time (GALAXY). They are run
    #: with ``effective_b_parallel == 1`` whatever ``b_parallel`` says, and the runtime
    #: reports that instead of hiding it.
    sequential_only: ClassVar[bool] = False

    def __init__(self, b_parallel: int = 1) -> None:
        if isinstance(b_parallel, bool) or not isinstance(b_parallel, (int, np.integer)) or b_parallel < 1:
            raise ValueError(f"b_parallel must be an integer >= 1, got {b_parallel!r}")
        self.b_parallel = int(b_parallel)

    @property
    def effective_b_parallel(self) -> int:
        return 1 if self.sequential_only else self.b_parallel

    def get_state(self) -> dict[str, np.ndarray]:
        """What the strategy carries from one round to the next (e.g. Cluster-Margin's clusters).

        The runtime checkpoints it with the trial and hands it back through :meth:`set_state`
        after a restart, so a resumed trial selects exactly as an uninterrupted one. Most
        strategies keep nothing between rounds.
        """
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned."""
        if state:
            raise ValueError(f"strategy {self.name!r} keeps no state between rounds, got {sorted(state)}")

    def select(
        self,
        probs: np.ndarray,
        observed: np.ndarray,
        budget: int,
        annotate: AnnotateFn,
        rng: np.random.Generator,
        *,
        embeddings: Optional[np.ndarray] = None,
        pending: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Buy ``budget`` labels (fewer only if the pool runs out); return the indices bought, in order.

        ``observed`` is not modified. ``annotate`` is called with at most ``b_parallel``
        indices at a time, never with an index that is labeled or was already bought.

        ``pending``: pool indices bought earlier whose labels are not back yet (asynchronous
        annotators who are still on an earlier round's queries). The strategy is shown the
        pool without them: they are neither candidates nor labeled, whatever ``observed``
        holds for them, so no label is used before it comes back.
        """
        if pending is not None and len(pending):
            return self._select_without(probs, observed, budget, annotate, rng, embeddings, np.asarray(pending))
        probs, observed = validate_inputs(probs, observed, budget, embeddings)
        if self.needs_embeddings and embeddings is None:
            raise ValueError(f"strategy {self.name!r} needs embeddings=")
        n_unlabeled = int(np.count_nonzero(observed == UNLABELED))
        budget = min(int(budget), n_unlabeled)
        buyer = LabelBuyer(observed, probs.shape[1], budget, self.effective_b_parallel, annotate)
        if budget > 0:
            self._select(probs, buyer, rng, embeddings)
            if buyer.asynchronous:
                buyer.drain()  # the round ends when its last label is in
        bought = buyer.bought()
        if bought.size != budget:
            raise SelectionError(f"{self.name} bought {bought.size} labels, budget was {budget}")
        return bought

    def _select_without(self, probs, observed, budget, annotate, rng, embeddings, pending: np.ndarray) -> np.ndarray:
        """:meth:`select` on the pool without the ``pending`` indices; returns pool indices."""
        n = np.shape(observed)[0]
        if pending.min() < 0 or pending.max() >= n:
            raise ValueError(f"pending indices must lie in 0..{n - 1}")
        keep = np.setdiff1d(np.arange(n), pending)
        sub = self.select(np.asarray(probs)[keep], np.asarray(observed)[keep], budget, SubsetAnnotate(annotate, keep),
                          rng, embeddings=None if embeddings is None else np.asarray(embeddings)[keep])
        return keep[sub]

    @abstractmethod
    def _select(
        self,
        probs: np.ndarray,
        buyer: LabelBuyer,
        rng: np.random.Generator,
        embeddings: Optional[np.ndarray],
    ) -> None:
        """Spend ``buyer.budget`` labels through ``buyer.buy``; the budget never exceeds the unlabeled pool."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(b_parallel={self.b_parallel})"


class BatchStrategy(Strategy):
    """A strategy that picks its whole batch up front from the model's outputs.

    Subclasses implement :meth:`choose`; the labels it buys do not change its choice.
    """

    def _select(self, probs, buyer, rng, embeddings) -> None:
        unlabeled = np.flatnonzero(buyer.observed == UNLABELED)
        chosen = np.asarray(
            self.choose(probs, buyer.observed, unlabeled, buyer.budget, rng, embeddings), dtype=np.int64
        )
        buyer.buy_all(chosen)

    @abstractmethod
    def choose(
        self,
        probs: np.ndarray,
        observed: np.ndarray,
        unlabeled: np.ndarray,
        budget: int,
        rng: np.random.Generator,
        embeddings: Optional[np.ndarray],
    ) -> np.ndarray:
        """Return exactly ``budget`` distinct indices taken from ``unlabeled`` (budget <= unlabeled.size)."""


def top_k_lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` smallest scores, ascending by score, ties by position.

    O(n + k log k) with ``argpartition`` instead of a full sort: the uncertainty samplers must
    cost about one ``argsort`` of the pool, not more.
    """
    n = scores.size
    if k >= n:
        return np.argsort(scores, kind="stable")
    part = np.argpartition(scores, k - 1)[:k] if k > 0 else np.empty(0, dtype=np.int64)
    # argpartition breaks ties arbitrarily at the k-th value: include every tie, then
    # order by (score, position) so the result is deterministic.
    kth = scores[part].max() if k > 0 else None
    if k > 0:
        part = np.concatenate([np.flatnonzero(scores < kth), np.flatnonzero(scores == kth)])
    order = np.lexsort((part, scores[part]))
    return part[order][:k]
