"""The selection actor: runs a strategy and drives the annotators, ``b_parallel`` queries at a time.

Every call also keeps the trial's simulated annotation clock (:mod:`direct_ray.annotation`):
each query's latency is computed here from its keyed draw, the labels still come from the
annotator actors, and the answers are ordered by simulated finish time, never by which Ray
call returned first. In ``async`` mode the strategy gets an ``annotate`` that also offers
``submit`` / ``next_answer``: a free annotator takes the next query at once.

The strategy (pure numpy, :mod:`direct_ray.strategies`) gets an ``annotate`` callable. Here
that callable spreads one batch over the annotator actors, one query per annotator, sends
them all at once and waits for all of them: that is B_parallel annotators labelling in
parallel. Batch ``b``'s query ``j`` goes to annotator ``(b + j) % n``, so a sequential
strategy (one query per batch) still rotates over the whole team.

A fixed list (the initial random batch, a batch strategy's choice, DIRECT's phase 2) goes
through ``annotate.queue``: the same batches, keys and annotators, but each annotator gets
its whole share in one message and works through it while the others work through theirs,
as a labelling team handed a worklist would. The answers are the same as batch by batch
(they depend only on the query key); only the number of Ray calls drops, from one per label
to one per annotator.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import ray

from direct_ray.annotation import Answer, AnnotationConfig, TeamClock
from direct_ray.runtime.annotators import Oracle
from direct_ray.runtime.priority import coordination_actor
from direct_ray.seeding import SELECT_STREAM, generator
from direct_ray.strategies import make_strategy

# Briefings an annotator may lose in a row (each loss is a crash right after its briefing)
# before the trial gives up on it: far more than chance, few enough to end a crash loop.
MAX_FORGETTING = 20
# Waits between calls to an annotator that Ray reports temporarily unavailable (its node is
# unreachable but not yet declared dead): doubling from the first, capped at the last.
BACKOFF_SECONDS = (0.25, 30.0)


@dataclass
class Purchases:
    """Everything bought in one call, in order."""

    indices: list[int] = field(default_factory=list)
    observed: list[int] = field(default_factory=list)
    true: list[int] = field(default_factory=list)
    annotator: list[int] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)  # simulated seconds since the trial began
    batches: int = 0
    seconds: float = 0.0
    strategy_state: dict = field(default_factory=dict)  # the strategy's state after this call
    clock: float = 0.0  # simulated time at which the purchase ended (the next round starts)
    free_at: list[float] = field(default_factory=list)  # when each annotator is free (later than clock: still labelling)
    annotation_seconds: float = 0.0  # simulated wall time of this purchase
    busy_seconds: float = 0.0  # summed labelling time of all annotators in it

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.indices, dtype=np.int64),
            np.asarray(self.observed, dtype=np.int64),
            np.asarray(self.true, dtype=np.int64),
            np.asarray(self.annotator, dtype=np.int32),
            np.asarray(self.answered_at, dtype=np.float64),
        )


class Selector:
    """Runs one trial's strategy against a team of annotator actors (see module docstring).

    ``truth`` is a one-element list holding the object-store reference of the pool's true
    labels (a list, so that Ray hands the reference itself to this actor, which passes it on
    when it briefs an annotator); ``oracle`` is what the annotators need besides. :meth:`reset`
    points the same actor at the next trial.
    """

    def __init__(
        self,
        strategy: str,
        b_parallel: int,
        annotators: list,
        seed: int,
        truth: list,
        oracle: Oracle,
        strategy_state: dict | None = None,
        strategy_options: dict | None = None,
        annotation: AnnotationConfig | None = None,
    ) -> None:
        if len(annotators) < 1:
            raise ValueError("at least one annotator is needed")
        self.strategy = make_strategy(strategy, b_parallel=b_parallel, **(strategy_options or {}))
        self.strategy.set_state(dict(strategy_state or {}))
        self.annotators = annotators
        self.seed = seed
        self.truth_box = truth  # forwarded as is: each annotator fetches the labels once per trial
        self.oracle = oracle
        self.annotation = annotation or AnnotationConfig()
        # The annotators know this trial by a token (a retried trial gets a new one).
        self.trial_token = uuid.uuid4().hex

    def reset(self, *args, **kwargs) -> None:
        """Serve another trial: the same arguments as the constructor."""
        Selector.__init__(self, *args, **kwargs)  # not the actor's __init__: its process yielded once already

    def buy(self, round_: int, indices: np.ndarray, clock: float = 0.0, free_at=None, more_rounds: bool = False) -> Purchases:
        """Have the team label a fixed list (the initial random batch), b_parallel at a time.

        ``clock``: simulated seconds since the trial began when the purchase starts;
        ``free_at``: when each annotator is free (None: all at ``clock``); ``more_rounds``: a
        next round follows, so the purchase may end with labels in flight (see
        :meth:`~direct_ray.annotation.TeamClock.close_round`).
        """
        log = Purchases()
        start = time.perf_counter()
        annotate = self._annotate(round_, log, clock, free_at)
        if len(indices):
            annotate.queue(indices, self.strategy.effective_b_parallel)
        log.seconds = time.perf_counter() - start
        return annotate.finish(more_rounds)

    def select(self, round_: int, probs, observed, budget: int, embeddings=None, clock: float = 0.0, free_at=None,
               pending=None, more_rounds: bool = False) -> Purchases:
        """One round of the strategy; its random choices come from the (seed, round) stream.

        ``pending``: pool indices bought earlier whose labels are not back at ``clock``; the
        strategy does not see them. The other arguments are :meth:`buy`'s.
        """
        log = Purchases()
        start = time.perf_counter()
        annotate = self._annotate(round_, log, clock, free_at)
        bought = self.strategy.select(
            probs,
            observed,
            budget=budget,
            annotate=annotate,
            rng=generator(self.seed, SELECT_STREAM, round_),
            embeddings=embeddings,
            pending=pending,
        )
        log.seconds = time.perf_counter() - start
        log.strategy_state = self.strategy.get_state()
        if not np.array_equal(bought, log.indices):
            raise RuntimeError("strategy returned indices other than those it sent to the annotators")
        return annotate.finish(more_rounds)

    def _annotate(self, round_: int, log: Purchases, clock: float, free_at) -> "TeamAnnotate":
        """The annotate object of one call: the team's clock starts at ``clock``, annotators free at ``free_at``."""
        team_clock = TeamClock(self.annotation, len(self.annotators), self.seed, now=clock, free_at=free_at)
        kind = AsyncTeamAnnotate if self.annotation.mode == "async" else TeamAnnotate
        return kind(self, round_, log, team_clock)

    def effective_b_parallel(self) -> int:
        return self.strategy.effective_b_parallel


class TeamAnnotate:
    """The ``annotate`` callable of one :meth:`Selector.select` or :meth:`Selector.buy` call (sync mode).

    Batch ``b`` of the call (counted in ``log.batches``) sends its query ``j`` to annotator
    ``(b + j) % n`` with the key ``(round, b, j)``; the batch takes the simulated time of its
    slowest label. Everything bought is appended to ``log``.
    """

    def __init__(self, selector: Selector, round_: int, log: Purchases, clock: TeamClock) -> None:
        self.selector = selector
        self.round = round_
        self.log = log
        self.clock = clock
        self._start = clock.now

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        """One parallel batch: one query per annotator, all in flight together."""
        return self.queue(indices, max(len(indices), 1))

    def queue(self, indices: np.ndarray, b_parallel: int) -> np.ndarray:
        """A fixed list as consecutive batches of ``b_parallel``, one message per annotator."""
        team = self.selector.annotators
        answers: list[Answer] = []
        for start in range(0, len(indices), b_parallel):
            batch = self.log.batches
            self.log.batches += 1
            answers += self.clock.sync_batch(
                [(int(index), (batch + j) % len(team), (self.round, batch, j))
                 for j, index in enumerate(indices[start : start + b_parallel])]
            )
        return self._label(answers)

    def finish(self, more_rounds: bool = False) -> Purchases:
        """The call's purchases, with its simulated annotation time (the round ends here).

        ``more_rounds``: a next round follows, so an asynchronous team may end the round with
        labels still out (:attr:`~direct_ray.annotation.AnnotationConfig.round_overlap`).
        """
        overlap = self.selector.annotation.round_overlap if more_rounds else 0
        self.log.clock = self.clock.close_round(self.selector.strategy.effective_b_parallel, overlap)
        self.log.free_at = list(self.clock.free_at)
        self.log.annotation_seconds = self.clock.now - self._start
        self.log.busy_seconds = self.clock.busy
        return self.log

    def _label(self, answers: list[Answer]) -> np.ndarray:
        """Ask the annotators for ``answers``' labels, one message per annotator; log them in this order."""
        shares: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        slots: list[tuple[int, int]] = []  # (annotator, position in its share) of each answer
        for answer in answers:
            share = shares.setdefault(answer.annotator, [])
            slots.append((answer.annotator, len(share)))
            share.append((answer.index, answer.key))
        labels = self._ask(shares) if shares else {}
        observed = [labels[who][k][0] for who, k in slots]
        self.log.indices.extend(a.index for a in answers)
        self.log.observed.extend(observed)
        self.log.true.extend(labels[who][k][1] for who, k in slots)
        self.log.annotator.extend(a.annotator for a in answers)
        self.log.answered_at.extend(a.answered_at for a in answers)
        return np.asarray(observed, dtype=np.int64)

    def _ask(self, shares: dict[int, list]) -> dict[int, list[tuple[int, int]]]:
        """Send each annotator its share at once; brief those that do not know the trial and ask again."""
        selector, team = self.selector, self.selector.annotators
        token = selector.trial_token
        answers = dict(zip(shares, calls([lambda who=who: team[who].label.remote(token, shares[who]) for who in shares])))
        # An annotator may crash (and be restarted, forgetting its briefings) at any point,
        # also right after a briefing: brief and ask again, as often as Ray restarts it.
        for _ in range(MAX_FORGETTING):
            unbriefed = [who for who, answer in answers.items() if answer is None]
            if not unbriefed:
                return answers
            calls([lambda who=who: team[who].brief.remote(token, selector.truth_box, selector.oracle) for who in unbriefed])
            answers.update(zip(unbriefed, calls([lambda who=who: team[who].label.remote(token, shares[who])
                                                 for who in unbriefed])))
        forgetful = [who for who, answer in answers.items() if answer is None]
        raise RuntimeError(f"annotators {forgetful} forgot trial {token} right after each of {MAX_FORGETTING} briefings")


class AsyncTeamAnnotate(TeamAnnotate):
    """The ``annotate`` object of one call in async mode: a free annotator takes the next query at once.

    Every query is its own batch (key ``(round, b, 0)``) and goes to the annotator the clock
    picks. ``submit`` / ``next_answer`` let a strategy place each query as a slot frees up
    (:mod:`direct_ray.strategies.async_reduce`); a fixed list (``queue``, or a plain call) is
    pulled by whichever annotator is free first. Answers are logged in order of simulated
    finish time; the label of an adaptive query is fetched from its annotator when its
    answer is taken.
    """

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        return self.queue(indices, max(len(indices), 1))

    def queue(self, indices: np.ndarray, b_parallel: int) -> np.ndarray:
        """A fixed list pulled by the first free of ``b_parallel`` annotators; labels in the order of ``indices``."""
        keys = [self._next_key() for _ in indices]
        answers = self.clock.schedule_list([int(i) for i in indices], keys, b_parallel)
        labels = dict(zip((a.index for a in answers), self._label(answers).tolist()))
        return np.asarray([labels[int(i)] for i in indices], dtype=np.int64)

    def submit(self, index: int) -> None:
        """Send one query to a free annotator now (its latency is drawn from its key)."""
        self.clock.submit(int(index), self._next_key())

    def next_answer(self) -> tuple[int, int]:
        """``(index, observed label)`` of the in-flight query that finishes first in simulated time."""
        answer = self.clock.next_answer()
        return answer.index, int(self._label([answer])[0])

    def _next_key(self) -> tuple[int, int, int]:
        batch = self.log.batches
        self.log.batches += 1
        return (self.round, batch, 0)


def calls(senders: list) -> list:
    """Results of the Ray calls ``sender()`` starts, waiting out annotators that are briefly unreachable.

    A call that fails with ``ActorUnavailableError`` is sent again after a backoff, until it
    succeeds or Ray declares the actor dead; Ray restarts a dead annotator (without limit)
    and retries its call itself. The calls are idempotent: an answer depends only on its
    query key, and a briefing may be repeated.
    """
    results: list = [None] * len(senders)
    pending = {i: sender() for i, sender in enumerate(senders)}
    wait = BACKOFF_SECONDS[0]
    while pending:
        retry = {}
        for i, ref in pending.items():
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.ActorUnavailableError:
                retry[i] = senders[i]
        if retry:
            time.sleep(wait)
            wait = min(2 * wait, BACKOFF_SECONDS[1])
        pending = {i: sender() for i, sender in retry.items()}
    return results


SelectionActor = coordination_actor(Selector)
