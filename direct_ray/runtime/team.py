"""The actors a trial works with, their lifetime, and the annotator teams a sweep shares.

A trial needs a selection actor (runs the strategy and drives the annotators), a pool actor
(the record of every purchase) and ``b_parallel`` annotators. :func:`trial_team` provides
them for the length of a ``with`` block and ends them afterwards, unless the caller passes an
:class:`ActorCache`: a process that runs trial after trial (a Tune trainable) keeps its
selection and pool actors, and its own annotators, for the next trial, because starting a
Ray actor process costs about a CPU-second, more than a small trial's rounds. The actors hold
nothing of a finished trial that the next could see: the pool and selection actors are
re-initialised and the annotators are briefed on each new trial.

A sweep starts shared annotator teams (:func:`~direct_ray.runtime.annotators.start_shared_team`),
one per :data:`TRIALS_PER_TEAM` trials that run at once; a trial then uses its team's
annotators and starts none of its own.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from direct_ray.pool_state import PoolState
from direct_ray.runtime.annotators import AnnotatorActor, Oracle, shared_team
from direct_ray.runtime.pool import PoolActor
from direct_ray.runtime.selection import Purchases, SelectionActor

# Concurrent trials one shared annotator team serves. An annotator answers one query at a
# time (~2 ms of CPU each), so a sweep that runs many trials at once gets several teams, each
# trial using one; MAX_TEAMS bounds the processes a huge estimate could start.
TRIALS_PER_TEAM = 8
MAX_TEAMS = 16


@dataclass
class Actors:
    """Actor handles a process may keep between trials (``annotators``: its own, not a sweep's)."""

    selector: Optional[ray.actor.ActorHandle] = None
    pool: Optional[ray.actor.ActorHandle] = None
    annotators: list = field(default_factory=list)

    def all(self) -> list:
        return [a for a in [self.selector, self.pool, *self.annotators] if a is not None]

    def kill(self) -> None:
        for actor in self.all():
            ray.kill(actor)


class ActorCache:
    """Actors kept by a caller that runs trial after trial in one process, one set per Ray session."""

    def __init__(self) -> None:
        self._spare: dict[tuple[str, str], Actors] = {}

    @staticmethod
    def _session() -> tuple[str, str]:
        context = ray.get_runtime_context()
        return context.get_node_id(), context.get_job_id()

    def take(self) -> Actors:
        return self._spare.pop(self._session(), None) or Actors()

    def keep(self, actors: Actors) -> None:
        self._spare[self._session()] = actors

    def release(self) -> None:
        """End every kept actor (frees their memory; the next trial starts new ones)."""
        while self._spare:
            self._spare.popitem()[1].kill()


@dataclass
class TrialTeam:
    """One trial's view of its actors: buy labels, record them, check the record at the end."""

    selector: ray.actor.ActorHandle
    pool: ray.actor.ActorHandle
    annotators: list
    _records: list = field(default_factory=list)

    def effective_b_parallel(self) -> int:
        return ray.get(self.selector.effective_b_parallel.remote())

    def buy(self, round_: int, indices: np.ndarray, clock: float, free_at: list[float], more_rounds: bool) -> Purchases:
        """Have the annotators label a fixed list (the initial random batch), starting at simulated ``clock``.

        See :meth:`~direct_ray.runtime.selection.Selector.buy` for ``free_at`` and ``more_rounds``.
        """
        return ray.get(self.selector.buy.remote(round_, indices, clock, free_at, more_rounds))

    def select(self, round_: int, probs, observed, budget: int, embeddings, clock: float, free_at: list[float],
               pending: np.ndarray, more_rounds: bool) -> ray.ObjectRef:
        """Start the strategy's round ``round_`` on the selection actor at simulated ``clock``; returns its Purchases' ref.

        See :meth:`~direct_ray.runtime.selection.Selector.select` for the clock arguments.
        """
        return self.selector.select.remote(round_, probs, observed, budget, embeddings, clock, free_at, pending, more_rounds)

    def record(self, round_: int, purchase: Purchases, mirror: PoolState) -> None:
        """Record a purchase in the pool actor and in the trial's own mirror of the pool state.

        The actor is the record of the labeling; the mirror (what the trial trains on and
        checkpoints) is updated by the same code, so no O(N) state travels back each round.
        Calls from one caller run in order on the actor: nothing waits here.
        """
        arrays = purchase.arrays()
        self._records.append(self.pool.record.remote(round_, *arrays))
        mirror.record(round_, *arrays)

    def verify(self, mirror: PoolState) -> None:
        """Raise if the pool actor's record and the trial's mirror differ (or a record failed)."""
        ray.get(self._records)
        if ray.get(self.pool.fingerprint.remote()) != mirror.fingerprint():
            raise RuntimeError("the pool actor's record and the trial's checkpointed pool state differ")


@contextmanager
def trial_team(
    config,
    num_classes: int,
    truth: ray.ObjectRef,
    pool: PoolState,
    strategy_state: dict,
    *,
    annotator_team: str | None = None,
    cache: ActorCache | None = None,
) -> Iterator[TrialTeam]:
    """The actors of one trial for the length of the ``with`` block (see the module docstring).

    ``truth`` is the object-store reference of the pool's true labels (only the annotators
    read them). ``annotator_team`` names a sweep's shared team to use instead of own
    annotators. After a failure the actors are always ended, never kept.
    """
    actors = cache.take() if cache is not None else Actors()
    # Beside the trial's own process: a trial then depends on one node (and the head), so a
    # lost node fails whole trials, which Tune retries from their checkpoints elsewhere.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    kept = False
    try:
        if annotator_team is not None:
            annotators = shared_team(annotator_team, config.b_parallel)
        else:
            while len(actors.annotators) < config.b_parallel:
                actors.annotators.append(AnnotatorActor.options(scheduling_strategy=here).remote(len(actors.annotators)))
            annotators = actors.annotators[: config.b_parallel]
        oracle = Oracle(config.noise, num_classes, config.seed)
        selector_args = (config.strategy.name, config.b_parallel, annotators, config.seed, [truth], oracle,
                         strategy_state, config.strategy.options, config.annotation)
        if actors.selector is None:
            actors.selector = SelectionActor.options(scheduling_strategy=here).remote(*selector_args)
            actors.pool = PoolActor.options(scheduling_strategy=here).remote(pool)
        else:
            ray.get([actors.selector.reset.remote(*selector_args), actors.pool.reset.remote(pool)])
        ray.get([actor.__ray_ready__.remote() for actor in [actors.pool, *annotators]])
        yield TrialTeam(actors.selector, actors.pool, annotators)
        if cache is not None:
            cache.keep(actors)
            kept = True
    finally:
        if not kept:
            actors.kill()


def trials_at_once(study, n_trials: int, cluster: dict) -> int:
    """How many trials can run at once: ``max_concurrent_trials``, else what ``cluster`` holds now.

    ``cluster`` is ``ray.cluster_resources()``. An autoscaling cluster holds less at the start
    than it will: set ``max_concurrent_trials`` there to size the annotator teams.
    """
    if study.max_concurrent_trials:
        return max(1, min(n_trials, study.max_concurrent_trials))
    slots = n_trials
    for resource, per_trial in (("CPU", study.resources.cpus_per_trial), ("GPU", study.resources.gpus_per_trial)):
        if per_trial:
            slots = min(slots, int(cluster.get(resource, 0) // per_trial))
    return max(1, slots)


def annotator_team_names(sweep_id: str, concurrent_trials: int) -> list[str]:
    """Names of the sweep's annotator teams: one per :data:`TRIALS_PER_TEAM` concurrent trials."""
    count = min(MAX_TEAMS, max(1, -(-concurrent_trials // TRIALS_PER_TEAM)))
    return [f"direct_ray/{sweep_id}/annotators-{t}" for t in range(count)]


def team_for_trial(trial_id: str, teams: list[str]) -> str:
    """The team a trial uses: a stable hash of its id, so a retried or resumed trial keeps its team."""
    return teams[zlib.crc32(trial_id.encode()) % len(teams)]
