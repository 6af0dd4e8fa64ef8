"""Simulated annotators: Ray actors that answer label queries through a noise model.

Each annotator is the oracle for the queries it receives: it holds the true labels (an
object-store reference, resolved zero-copy) and returns what a person with its error rate
would say. Its random draws are keyed by ``(trial seed, annotator, query key)``, not by a
running stream, so a query retried after the actor crashed and restarted gets the same
answer: no label is lost and none changes on retry.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import ray

from direct_ray.config import FaultPlan
from direct_ray.noise import NoiseConfig, NoiseModel
from direct_ray.seeding import ANNOTATOR_STREAM

# An annotator that crashes is restarted by Ray and the interrupted query is retried.
MAX_RESTARTS = 3


class Annotator:
    """One simulated annotator (plain class; :data:`AnnotatorActor` is its Ray actor)."""

    def __init__(
        self,
        true_labels: np.ndarray,
        noise: NoiseConfig,
        num_classes: int,
        annotator: int,
        seed: int,
        faults: FaultPlan | None = None,
    ) -> None:
        self.true_labels = true_labels
        self.noise_model = NoiseModel(noise, num_classes, annotator=annotator, seed=seed)
        self.annotator = annotator
        self.seed = seed
        self.faults = faults or FaultPlan()
        self.queries = 0

    def label(self, indices: np.ndarray, query_key: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Answer one query: ``(observed labels, true labels)`` for ``indices``."""
        self.queries += 1
        self._maybe_crash()
        indices = np.asarray(indices, dtype=np.int64)
        truth = np.asarray(self.true_labels[indices], dtype=np.int64)
        rng = np.random.default_rng([self.seed, ANNOTATOR_STREAM, self.annotator, *query_key])
        return self.noise_model.observe(truth, indices, rng), truth

    def _maybe_crash(self) -> None:
        target = self.faults.annotator_exit_on_query
        if target is None or self.annotator != 0 or self.queries != target:
            return
        marker = Path(self.faults.marker_dir) / "annotator_exit.fired"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(1)  # a hard crash, as a killed annotator process would


AnnotatorActor = ray.remote(num_cpus=0, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)(Annotator)
