"""Simulated annotation time: how long a team of annotators takes to label what a strategy buys.

B_parallel exists for wall-clock time: a team labels in parallel, so DIRECT can trade a few
labels for much less waiting than GALAXY's one query at a time. This module simulates that
time without sleeping. Each query has a *latency* (simulated seconds from the moment an
annotator starts on it until the label is back) drawn from a :class:`LatencyConfig`:

``fixed``
    every label takes ``seconds``;
``lognormal``
    ``median * exp(sigma * z)`` with ``z`` standard normal (a heavy right tail: most labels
    are quick, a few take many times the median).

An annotator's ``speeds`` factor divides its latencies (2 = twice as fast; annotator ``a``
uses ``speeds[a % len(speeds)]``), and a ``straggler`` setting multiplies a query's latency
by ``factor`` with probability ``probability`` (a person who is interrupted). A latency is a
pure function of ``(trial seed, annotator, query key)``: never of a running random stream, of
the order in which Ray calls return or of restarts, so a trial's clock is reproducible and
a resumed trial continues it exactly.

Two modes (:class:`AnnotationConfig` ``mode``):

``sync``
    a batch of up to B_parallel queries goes out together and the next waits for all of it:
    a batch takes the largest of its latencies. A fixed list is a sequence of such batches.
    Without latencies every label is instant (the behaviour of a study without
    ``annotation``).
``async``
    whenever an annotator is free it gets the next query at once, also across rounds: a
    round with nothing left to place ends once at most ``overlap`` of its labels are still
    out (default :data:`DEFAULT_OVERLAP`; :meth:`TeamClock.close_round`), and free
    annotators start on the next round; labels still out join a later round's model.
    ``overlap: 0`` makes each round wait for its last label.
    Answers come back in the order of their simulated finish times. A strategy that offers
    adaptive asynchronous
    buying (DIRECT, :mod:`direct_ray.strategies.async_reduce`) places each new query as soon
    as a slot frees up; a fixed list (a batch strategy's choice, DIRECT's phase 2) is pulled
    from by whichever annotator is free first; a sequential strategy (GALAXY) still waits for
    each answer, so its time is the sum of its latencies.

:class:`TeamClock` is the schedule of one trial's team (pure numpy, shared by the runtime's
selection actor and the in-process benchmark); :class:`SimulatedTeam` is an ``annotate``
object for the selection contract (:mod:`direct_ray.strategies.base`) built on it, with the
labels coming from a plain function.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Optional, Sequence

import numpy as np
from pydantic import Field, model_validator

from direct_ray.seeding import LATENCY_STREAM
from direct_ray.validated import Frozen, Int, Number, parse

ANNOTATION_MODES = ("sync", "async")
LATENCY_MODELS = ("fixed", "lognormal")

QueryKey = tuple[int, ...]

# At most this many of a round's labels are still out when an asynchronous team starts on the
# next round, unless a study says otherwise. Chosen by measurement (docs/async.md): the only
# setting that met both the utilisation and the label-cost targets on every dataset measured.
DEFAULT_OVERLAP = 2


class LatencyConfig(Frozen):
    """Seconds one label takes: ``fixed`` (``seconds``) or ``lognormal`` (``median``, ``sigma``)."""

    model: Literal[LATENCY_MODELS] = Field(description="fixed or lognormal")
    seconds: Optional[Number(gt=0.0)] = Field(None, description="fixed: seconds per label")
    median: Optional[Number(gt=0.0)] = Field(None, description="lognormal: median seconds per label")
    sigma: Optional[Number(ge=0.0)] = Field(None, description="lognormal: standard deviation of the log latency")

    @model_validator(mode="after")
    def _fits_the_model(self) -> "LatencyConfig":
        given = {name for name in ("seconds", "median", "sigma") if getattr(self, name) is not None}
        needed = {"fixed": {"seconds"}, "lognormal": {"median", "sigma"}}[self.model]
        if given != needed:
            raise ValueError(f"latency model {self.model} takes {sorted(needed)}, got {sorted(given)}")
        return self

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in ("model", "seconds", "median", "sigma") if getattr(self, name) is not None}


class StragglerConfig(Frozen):
    """With ``probability``, a query takes ``factor`` times its latency (an interrupted annotator)."""

    probability: Number(ge=0.0, le=1.0) = Field(description="chance that a query straggles")
    factor: Number(ge=1.0) = Field(description="how many times longer a straggling query takes")

    def to_dict(self) -> dict:
        return {"probability": self.probability, "factor": self.factor}


class AnnotationConfig(Frozen):
    """How a trial's annotators spend simulated time (see the module docstring).

    The default (``sync``, no latency) is instant annotation: a study without an
    ``annotation`` entry behaves, and is identified, exactly as before.
    """

    mode: Literal[ANNOTATION_MODES] = Field(
        "sync", description="sync: batches of B_parallel wait for their slowest label; async: a free annotator takes the next query at once"
    )
    latency: Optional[LatencyConfig] = Field(None, description="seconds per label; none: every label is instant")
    speeds: Optional[Annotated[tuple[Number(gt=0.0), ...], Field(min_length=1)]] = Field(
        None, description="per-annotator speed factors (2 = twice as fast); annotator a uses speeds[a % len(speeds)]"
    )
    straggler: Optional[StragglerConfig] = Field(None, description="occasional slow labels: {probability, factor}")
    overlap: Optional[Int(0)] = Field(
        None, description=f"async only: at most this many of a round's labels may still be out when the next round "
        f"starts (default {DEFAULT_OVERLAP}; b_parallel - 1 or more: no limit); 0: each round waits for its last label"
    )

    @model_validator(mode="after")
    def _needs_latency(self) -> "AnnotationConfig":
        if self.latency is None and (self.speeds is not None or self.straggler is not None):
            raise ValueError("speeds and straggler need a latency model (latency: {model: ...})")
        if self.mode == "sync" and self.overlap is not None:
            raise ValueError("overlap is an async setting: a synchronous round always waits for its last label")
        return self

    @property
    def round_overlap(self) -> int:
        """At most how many of a round's labels may be out when the next round starts.

        0 in sync mode; :data:`DEFAULT_OVERLAP` for an asynchronous team that does not say.
        """
        if self.mode == "sync":
            return 0
        return DEFAULT_OVERLAP if self.overlap is None else self.overlap

    @classmethod
    def from_dict(cls, data: Any, where: str = "annotation") -> "AnnotationConfig":
        """Build from a parsed YAML/JSON mapping; an error names the field (``annotation.latency.sigma``)."""
        return parse(cls, data, where)

    def to_dict(self) -> dict:
        """A JSON-able mapping that :meth:`from_dict` turns back into an equal config."""
        out: dict = {"mode": self.mode}
        if self.latency is not None:
            out["latency"] = self.latency.to_dict()
        if self.speeds is not None:
            out["speeds"] = list(self.speeds)
        if self.straggler is not None:
            out["straggler"] = self.straggler.to_dict()
        if self.overlap is not None:
            out["overlap"] = self.overlap
        return out

    @property
    def is_default(self) -> bool:
        """True for instant synchronous annotation (what a study without ``annotation`` means)."""
        return self == AnnotationConfig()

    @property
    def label(self) -> str:
        """A short name for tables and trial ids: ``sync``, ``async``, ``sync-lognormal``, ..."""
        mode = self.mode if self.overlap is None else f"{self.mode}-overlap{self.overlap}"
        return mode if self.latency is None else f"{mode}-{self.latency.model}"

    def latency_of(self, seed: int, annotator: int, key: QueryKey) -> float:
        """Simulated seconds annotator ``annotator`` takes for the query ``key`` of trial ``seed``.

        A pure function of its arguments. Both uniforms of the draw are always taken, so two
        configurations differing only in one knob see the same random numbers.
        """
        if self.latency is None:
            return 0.0
        rng = np.random.default_rng([int(seed), LATENCY_STREAM, int(annotator), *(int(k) for k in key)])
        z, u = rng.standard_normal(), rng.random()
        lat = self.latency
        seconds = lat.seconds if lat.model == "fixed" else lat.median * math.exp(lat.sigma * z)
        if self.straggler is not None and u < self.straggler.probability:
            seconds *= self.straggler.factor
        if self.speeds is not None:
            seconds /= self.speeds[annotator % len(self.speeds)]
        return float(seconds)


@dataclass(frozen=True)
class Answer:
    """One label as it comes back: the query, who answered and when (simulated seconds)."""

    index: int
    annotator: int
    key: QueryKey
    started_at: float
    answered_at: float

    @property
    def seconds(self) -> float:
        return self.answered_at - self.started_at


@dataclass
class TeamClock:
    """The simulated schedule of one trial's team of ``size`` annotators.

    ``now`` is the simulated time (seconds since the trial began) at which the caller acts:
    the end of the last synchronous batch, the finish time of the last answer taken in
    asynchronous mode, or the end of the last round (:meth:`close_round`). ``free_at[a]`` is
    when annotator ``a`` is free: at or before ``now`` when it is idle, later when it is
    still on a query of an earlier round (the round ended without waiting for it). ``busy``
    sums every latency so far. Nothing here sleeps or draws from a running stream: the
    schedule is a pure function of the config, the seed, the queries' keys and the order in
    which the strategy places them.
    """

    config: AnnotationConfig
    size: int
    seed: int
    now: float = 0.0
    busy: float = 0.0
    free_at: Optional[Sequence[float]] = None  # None: every annotator free at ``now``
    _in_flight: list[tuple[float, int, Answer]] = field(default_factory=list)  # heap by finish time
    _submitted: int = 0
    _cursor: int = 0
    _last_submit: Optional[float] = None  # ``now`` at the round's last submission
    _round_finishes: list[float] = field(default_factory=list)  # finish times of the round's answers

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"a team needs at least one annotator, got size {self.size}")
        if self.free_at is None or len(self.free_at) == 0:
            self.free_at = [self.now] * self.size
        elif len(self.free_at) != self.size:
            raise ValueError(f"free_at has {len(self.free_at)} entries for a team of {self.size}")
        self.free_at = [float(t) for t in self.free_at]

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def sync_batch(self, queries: Sequence[tuple[int, int, QueryKey]]) -> list[Answer]:
        """One synchronous batch of ``(index, annotator, key)``: all start now, the batch ends with its slowest."""
        if self._in_flight:
            raise RuntimeError("a synchronous batch cannot start while asynchronous queries are in flight")
        start = self.now
        answers = []
        for index, annotator, key in queries:
            seconds = self.config.latency_of(self.seed, annotator, key)
            answers.append(Answer(int(index), int(annotator), tuple(key), start, start + seconds))
            self.busy += seconds
        if answers:
            self.now = max(a.answered_at for a in answers)
            self.free_at = [max(t, self.now) for t in self.free_at]
        return answers

    def submit(self, index: int, key: QueryKey) -> Answer:
        """Give query ``key`` (pool ``index``) to the annotator free first; returns its scheduled answer.

        That is the free one that has waited longest (smallest time it became free), ties
        broken in rotation so that instant labels still spread over the team. When every
        annotator not waiting on an answer of this round is still finishing a query of an
        earlier round, the query starts when the first of them is free.
        """
        ready = [a for a in range(self.size) if self.free_at[a] < math.inf]
        if not ready:
            raise RuntimeError(f"all {self.size} annotators are busy: take an answer before submitting")
        who = min(ready, key=lambda a: (self.free_at[a], (a - self._cursor) % self.size))
        self._cursor = (who + 1) % self.size
        seconds = self.config.latency_of(self.seed, who, key)
        start = max(self.now, self.free_at[who])
        answer = Answer(int(index), who, tuple(key), start, start + seconds)
        self.free_at[who] = math.inf  # busy until its answer is taken
        self._last_submit = self.now
        self.busy += seconds
        heapq.heappush(self._in_flight, (answer.answered_at, self._submitted, answer))
        self._submitted += 1
        return answer

    def next_answer(self) -> Answer:
        """The in-flight answer with the smallest finish time (ties: submitted first); the clock moves to it."""
        if not self._in_flight:
            raise RuntimeError("no query is in flight")
        _, _, answer = heapq.heappop(self._in_flight)
        self.now = max(self.now, answer.answered_at)
        self.free_at[answer.annotator] = answer.answered_at
        self._round_finishes.append(answer.answered_at)
        return answer

    def close_round(self, slots: int, overlap: int) -> float:
        """End the round (every answer taken) and return its end time; ``now`` moves there.

        The round has nothing left to place after its last submission; it ends at the first
        moment from then on when at most ``min(overlap, slots - 1)`` of its labels are still
        out (so one of the strategy's ``slots`` is free, and no more labels than that are
        missing from the round's model; ``slots - 1`` or more: the first moment a slot is
        free). With ``overlap`` 0 it ends when every label is in, also those of
        earlier rounds still out. Labels still out when it ends come back during the next
        round (their annotators' ``free_at`` stays in the future).
        """
        if self._in_flight:
            raise RuntimeError("a round cannot end while its own queries are in flight")
        lag = min(overlap, slots - 1)
        if lag <= 0:
            self.now = max(self.now, *self.free_at)
        elif self._last_submit is not None:
            out = sorted(t for t in self._round_finishes if t > self._last_submit)
            self.now = self._last_submit if len(out) <= lag else out[len(out) - lag - 1]
        self._last_submit, self._round_finishes = None, []
        return self.now

    def schedule_list(self, indices: Sequence[int], keys: Sequence[QueryKey], slots: int) -> list[Answer]:
        """A fixed list pulled by the first free of ``slots`` annotators at a time; answers in finish order."""
        if self._in_flight:
            raise RuntimeError("a fixed list cannot start while other asynchronous queries are in flight")
        answers: list[Answer] = []
        for index, key in zip(indices, keys):
            if self.in_flight >= slots:
                answers.append(self.next_answer())
            self.submit(index, key)
        while self.in_flight:
            answers.append(self.next_answer())
        return answers


LabelFn = Callable[[np.ndarray, np.ndarray, list[QueryKey]], np.ndarray]
"""``labels(indices, annotators, keys) -> observed labels``: what the annotators answer."""


@dataclass
class PurchaseLog:
    """Every label a :class:`SimulatedTeam` sold, in the order the strategy received them."""

    indices: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    annotators: list[int] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)

    def add(self, answers: Sequence[Answer], labels: Sequence[int]) -> None:
        for answer, label in zip(answers, labels):
            self.indices.append(answer.index)
            self.labels.append(int(label))
            self.annotators.append(answer.annotator)
            self.answered_at.append(answer.answered_at)


class SimulatedTeam:
    """An ``annotate`` object for :meth:`~direct_ray.strategies.base.Strategy.select` on a :class:`TeamClock`.

    Query keys are ``(round, batch, j)`` as in the runtime: synchronous batch ``b``'s query
    ``j`` goes to annotator ``(b + j) % size``; in asynchronous mode every query is its own
    batch (``j = 0``) and goes to whichever annotator is free. Asynchronous mode adds
    :meth:`submit` and :meth:`next_answer`, which a strategy uses to keep every annotator
    busy; a strategy that only calls the object still works (each call is a batch that
    waits for its answers).
    """

    def __init__(self, clock: TeamClock, labels: LabelFn, round_: int = 0) -> None:
        self.clock = clock
        self.round = round_
        self._labels = labels
        self._batches = 0
        self.log = PurchaseLog()
        if clock.config.mode == "async":
            self.submit = self._submit
            self.next_answer = self._next_answer

    def start_round(self, round_: int) -> None:
        """Number the following queries as round ``round_``'s (the clock runs on)."""
        self.round = round_
        self._batches = 0

    def _key(self, j: int = 0) -> QueryKey:
        return (self.round, self._batches, j)

    def _answer(self, answers: Sequence[Answer]) -> np.ndarray:
        indices = np.array([a.index for a in answers], dtype=np.int64)
        who = np.array([a.annotator for a in answers], dtype=np.int64)
        labels = np.asarray(self._labels(indices, who, [a.key for a in answers]), dtype=np.int64)
        self.log.add(answers, labels.tolist())
        return labels

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        """One batch; it waits for all of its answers (their labels in the order of ``indices``)."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.clock.config.mode == "async":
            return self.queue(indices, max(indices.size, 1))
        queries = [(int(i), (self._batches + j) % self.clock.size, self._key(j)) for j, i in enumerate(indices)]
        self._batches += 1
        return self._answer(self.clock.sync_batch(queries))

    def queue(self, indices: np.ndarray, b_parallel: int) -> np.ndarray:
        """A fixed list: synchronous batches of ``b_parallel``, or (async) pulled by free annotators."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.clock.config.mode == "sync":
            parts = [self(indices[s : s + b_parallel]) for s in range(0, indices.size, b_parallel)]
            return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        answers = self.clock.schedule_list(indices.tolist(), [self._next_key() for _ in indices], b_parallel)
        labels = dict(zip((a.index for a in answers), self._answer(answers).tolist()))
        return np.array([labels[int(i)] for i in indices], dtype=np.int64)

    def _next_key(self) -> QueryKey:
        key = self._key()
        self._batches += 1
        return key

    def _submit(self, index: int) -> None:
        """Asynchronous mode: send one query to a free annotator now."""
        self.clock.submit(int(index), self._next_key())

    def _next_answer(self) -> tuple[int, int]:
        """Asynchronous mode: ``(index, label)`` of the in-flight query that finishes first."""
        answer = self.clock.next_answer()
        return answer.index, int(self._answer([answer])[0])
