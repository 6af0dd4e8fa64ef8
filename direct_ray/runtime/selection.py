"""The selection actor: runs a strategy and drives the annotators, ``b_parallel`` queries at a time.

The strategy (pure numpy, :mod:`direct_ray.strategies`) gets an ``annotate`` callable. Here
that callable spreads one batch over the annotator actors, one query per annotator, sends
them all at once and waits for all of them: that is B_parallel annotators labelling in
parallel. Batch ``b``'s query ``j`` goes to annotator ``(b + j) % n``, so a sequential
strategy (one query per batch) still rotates over the whole team.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import ray

from direct_ray.runtime.annotators import Oracle
from direct_ray.seeding import SELECT_STREAM, generator
from direct_ray.strategies import make_strategy


@dataclass
class Purchases:
    """Everything bought in one call, in order."""

    indices: list[int] = field(default_factory=list)
    observed: list[int] = field(default_factory=list)
    true: list[int] = field(default_factory=list)
    annotator: list[int] = field(default_factory=list)
    batches: int = 0
    seconds: float = 0.0
    strategy_state: dict = field(default_factory=dict)  # the strategy's state after this call

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.indices, dtype=np.int64),
            np.asarray(self.observed, dtype=np.int64),
            np.asarray(self.true, dtype=np.int64),
            np.asarray(self.annotator, dtype=np.int32),
        )


class Selector:
    """Runs one trial's strategy against a team of annotator actors (see module docstring).

    ``truth`` is a one-element list holding the object-store reference of the pool's true
    labels (a list, so that Ray hands the reference itself to this actor, which forwards it
    with every query); ``oracle`` is what the annotators need besides. :meth:`reset` points
    the same actor at the next trial.
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
    ) -> None:
        if len(annotators) < 1:
            raise ValueError("at least one annotator is needed")
        self.strategy = make_strategy(strategy, b_parallel=b_parallel)
        self.strategy.set_state(dict(strategy_state or {}))
        self.annotators = annotators
        self.seed = seed
        self.truth_box = truth  # forwarded as is: each annotator fetches the labels once per trial
        self.oracle = oracle

    def reset(self, *args, **kwargs) -> None:
        """Serve another trial: the same arguments as the constructor."""
        self.__init__(*args, **kwargs)

    def _team_annotate(self, round_: int, log: Purchases):
        def annotate(indices: np.ndarray) -> np.ndarray:
            batch = log.batches
            log.batches += 1
            n = len(self.annotators)
            who = [(batch + j) % n for j in range(len(indices))]
            refs = [
                self.annotators[a].label.remote(self.truth_box, np.array([i]), (round_, batch, j), self.oracle)
                for j, (a, i) in enumerate(zip(who, indices))
            ]
            answers = ray.get(refs)
            observed = np.array([int(obs[0]) for obs, _ in answers], dtype=np.int64)
            log.indices.extend(int(i) for i in indices)
            log.observed.extend(observed.tolist())
            log.true.extend(int(true[0]) for _, true in answers)
            log.annotator.extend(who)
            return observed

        return annotate

    def buy(self, round_: int, indices: np.ndarray) -> Purchases:
        """Have the team label a fixed list (the initial random batch), b_parallel at a time."""
        log = Purchases()
        start = time.perf_counter()
        annotate = self._team_annotate(round_, log)
        step = self.strategy.effective_b_parallel
        for s in range(0, len(indices), step):
            annotate(np.asarray(indices[s : s + step], dtype=np.int64))
        log.seconds = time.perf_counter() - start
        return log

    def select(self, round_: int, probs, observed, budget: int, embeddings=None) -> Purchases:
        """One round of the strategy; its random choices come from the (seed, round) stream."""
        log = Purchases()
        start = time.perf_counter()
        bought = self.strategy.select(
            probs,
            observed,
            budget=budget,
            annotate=self._team_annotate(round_, log),
            rng=generator(self.seed, SELECT_STREAM, round_),
            embeddings=embeddings,
        )
        log.seconds = time.perf_counter() - start
        log.strategy_state = self.strategy.get_state()
        if not np.array_equal(bought, log.indices):
            raise RuntimeError("strategy returned indices other than those it sent to the annotators")
        return log

    def effective_b_parallel(self) -> int:
        return self.strategy.effective_b_parallel


SelectionActor = ray.remote(num_cpus=0)(Selector)
