"""Simulated annotators: Ray actors that answer label queries through a noise model.

Each annotator is the oracle for the queries it receives: it sees the true labels (an
object-store reference, fetched once per trial) and returns what a person with its error rate
would say. Its random draws are keyed by ``(trial seed, annotator, query key)``, not by a
running stream, so a query retried after the actor crashed and restarted gets the same
answer: no label is lost and none changes on retry.

A trial first *briefs* an annotator (its true labels and noise settings, under a token
unique to the trial); its queries then carry only the token, the pool indices and the query
keys, small plain values that are cheap to send. An annotator that does not know the token
(never briefed, restarted after a crash, or it evicted the trial) answers ``None``, and the
trial briefs it again and repeats the query.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from direct_ray.noise import NoiseConfig, NoiseModel
from direct_ray.runtime import faults
from direct_ray.runtime.priority import coordination_actor
from direct_ray.seeding import ANNOTATOR_STREAM
from direct_ray.strategies.base import label_dtype

# An annotator that crashes, or whose node is lost, is restarted by Ray (on another node if
# need be) as often as it takes, and the interrupted query is retried: an annotator keeps
# nothing a trial could lose (see the module docstring), so restarting it is always safe.
UNLIMITED = -1


@dataclass(frozen=True)
class Oracle:
    """What an annotator needs, besides the true labels, to answer one trial's queries."""

    noise: NoiseConfig
    num_classes: int
    seed: int


# Trials an annotator keeps the briefing of: a sweep's team serves every concurrent trial,
# in any order, and a trial whose briefing was evicted is briefed again (its true labels
# fetched again, from another node on a cluster). The labels are kept in the smallest
# integer type that holds the classes, so 64 trials on 10^6-example pools with K <= 127
# cost 64 MB.
CACHED_TRIALS = 64


class Annotator:
    """One simulated annotator (plain class; :data:`AnnotatorActor` is its Ray actor).

    Beyond its identity it keeps only the briefings of the last :data:`CACHED_TRIALS` trials
    (see the module docstring), so an annotator that crashed and was restarted answers the
    retried query exactly as before once briefed again, and one actor serves any number of
    trials, one after another or interleaved (a sweep's trials share teams).
    """

    def __init__(self, annotator: int) -> None:
        self.annotator = annotator
        self.queries = 0
        self._trials: OrderedDict[str, tuple[np.ndarray, NoiseModel, Oracle]] = OrderedDict()

    def brief(self, trial: str, truth: list, oracle: Oracle) -> None:
        """Take on trial ``trial``: fetch its true labels once and build its noise model.

        ``truth`` is ``[ref]`` with ``ref`` the object-store reference of the pool's true
        labels (inside a list, so that Ray hands over the reference, not the array).
        """
        labels = np.asarray(ray.get(truth[0])).astype(label_dtype(oracle.num_classes))
        model = NoiseModel(oracle.noise, oracle.num_classes, annotator=self.annotator, seed=oracle.seed)
        self._trials[trial] = (labels, model, oracle)
        self._trials.move_to_end(trial)
        while len(self._trials) > CACHED_TRIALS:
            self._trials.popitem(last=False)

    def label(self, trial: str, queries: list[tuple[int, tuple[int, ...]]]) -> list[tuple[int, int]] | None:
        """Answer ``queries``, in order: ``(observed label, true label)`` for each ``(pool index, query key)``.

        Returns ``None`` when this annotator holds no briefing for ``trial``: brief it, then
        ask again. One call may carry several queries (this annotator's share of a fixed
        list): each is answered with its own keyed random draws, exactly as if it came alone.
        """
        briefing = self._trials.get(trial)
        if briefing is None:
            return None
        self._trials.move_to_end(trial)
        true_labels, model, oracle = briefing
        self.queries += len(queries)
        faults.annotator_query(self.annotator, self.queries)
        answers = []
        for index, query_key in queries:
            true = true_labels[index : index + 1].astype(np.int64)
            rng = np.random.default_rng([oracle.seed, ANNOTATOR_STREAM, self.annotator, *query_key])
            observed = model.observe(true, np.array([index], dtype=np.int64), rng)
            answers.append((int(observed[0]), int(true[0])))
        return answers


AnnotatorActor = coordination_actor(Annotator, max_restarts=UNLIMITED, max_task_retries=UNLIMITED)


def team_member_name(team: str, annotator: int) -> str:
    """The Ray actor name of annotator ``annotator`` in the shared team ``team``."""
    return f"{team}/annotator-{annotator}"


def start_shared_team(team: str, size: int) -> list:
    """Start (or find) the named annotators ``0 .. size-1`` of ``team`` and wait until they are up.

    A sweep starts teams that its trials share: an annotator keeps nothing a trial could lose
    (a forgotten trial is briefed again), so every trial can use one, and each concurrent trial
    then starts only its pool and selection actors instead of ``b_parallel`` more processes (a
    Ray actor process costs about a CPU-second to start).
    The caller owns the actors: they live as long as it does, or until it kills them.
    """
    handles: dict[int, object] = {}
    # Beside the caller (a sweep's driver, on the head node of a cluster), where the
    # autoscaler's scale-down cannot take them; elsewhere if that node cannot host them.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    for _ in range(50):
        # All missing members start at once; one whose name still belongs to a team of the
        # same name that was just killed comes back dead, and is asked for again.
        fresh = {
            i: AnnotatorActor.options(name=team_member_name(team, i), get_if_exists=True, scheduling_strategy=here).remote(i)
            for i in range(size)
            if i not in handles
        }
        for i, handle in fresh.items():
            try:
                ray.get(handle.__ray_ready__.remote())
                handles[i] = handle
            except ray.exceptions.RayActorError:
                pass
        if len(handles) == size:
            return [handles[i] for i in range(size)]
        time.sleep(0.1)
    raise RuntimeError(f"could not start the annotator team {team!r}")


def shared_team(team: str, size: int) -> list:
    """Handles of the first ``size`` annotators of a team started by :func:`start_shared_team`."""
    try:
        return [ray.get_actor(team_member_name(team, i)) for i in range(size)]
    except ValueError as err:
        raise RuntimeError(f"annotator team {team!r} has fewer than {size} running annotators: {err}") from None
