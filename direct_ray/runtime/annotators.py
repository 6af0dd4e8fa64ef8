"""Simulated annotators: Ray actors that answer label queries through a noise model.

Each annotator is the oracle for the queries it receives: it sees the true labels (an
object-store reference, resolved zero-copy) and returns what a person with its error rate
would say. Its random draws are keyed by ``(trial seed, annotator, query key)``, not by a
running stream, so a query retried after the actor crashed and restarted gets the same
answer: no label is lost and none changes on retry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray

from direct_ray.config import FaultPlan
from direct_ray.noise import NoiseConfig, NoiseModel
from direct_ray.seeding import ANNOTATOR_STREAM

# An annotator that crashes is restarted by Ray and the interrupted query is retried.
MAX_RESTARTS = 3


@dataclass(frozen=True)
class Oracle:
    """What an annotator needs, besides the true labels, to answer one trial's queries."""

    noise: NoiseConfig
    num_classes: int
    seed: int
    faults: FaultPlan = FaultPlan()


class Annotator:
    """One simulated annotator (plain class; :data:`AnnotatorActor` is its Ray actor).

    Its only state is its identity: every query carries the true labels (an object-store
    reference, resolved zero-copy) and the trial's :class:`Oracle`. So an annotator that
    crashed and was restarted answers the retried query exactly as before, and one actor
    serves trial after trial (the runtime keeps a team alive between trials).
    """

    def __init__(self, annotator: int) -> None:
        self.annotator = annotator
        self.queries = 0
        self._noise_models: dict[Oracle, NoiseModel] = {}

    def label(
        self, true_labels: np.ndarray, indices: np.ndarray, query_key: tuple[int, ...], oracle: Oracle
    ) -> tuple[np.ndarray, np.ndarray]:
        """Answer one query: ``(observed labels, true labels)`` for ``indices``."""
        self.queries += 1
        self._maybe_crash(oracle.faults)
        model = self._noise_models.get(oracle)
        if model is None:
            model = NoiseModel(oracle.noise, oracle.num_classes, annotator=self.annotator, seed=oracle.seed)
            self._noise_models = {oracle: model}  # one trial at a time: keep only the current one
        indices = np.asarray(indices, dtype=np.int64)
        truth = np.asarray(true_labels[indices], dtype=np.int64)
        rng = np.random.default_rng([oracle.seed, ANNOTATOR_STREAM, self.annotator, *query_key])
        return model.observe(truth, indices, rng), truth

    def _maybe_crash(self, faults: FaultPlan) -> None:
        target = faults.annotator_exit_on_query
        if target is None or self.annotator != 0 or self.queries < target:
            return
        marker = Path(faults.marker_dir) / "annotator_exit.fired"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(1)  # a hard crash, as a killed annotator process would


AnnotatorActor = ray.remote(num_cpus=0, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)(Annotator)
