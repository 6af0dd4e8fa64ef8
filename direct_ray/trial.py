"""One active-learning trial on Ray: rounds of train -> score -> select -> annotate.

Round ``r`` of a trial with ``R`` rounds:

* ``r = 0``: the annotators label ``initial_size`` examples drawn uniformly at random;
  ``r >= 1``: the strategy buys ``b_train`` labels using the model of round ``r - 1``;
* a remote task trains a fresh model on every label bought so far (``n_labeled`` =
  ``initial_size + r * b_train``), scores the pool and predicts the clean test split;
* the round's row (metrics on the test split, labels per class, noisy labels, timings) is
  appended to the curve, and the state is checkpointed.

To avoid retraining on resume, the labels of round ``r + 1`` are bought right after round
``r``'s model is scored, and the checkpoint is taken after that purchase: it holds the pool
state, every row so far and the time already spent on round ``r + 1``. The next round's
training is submitted before the checkpoint, the Parquet files and the report, which overlap
with it. All random streams are keyed by ``(seed, purpose, round)`` (:mod:`direct_ray.seeding`),
so a trial killed at any point and restarted from its checkpoint produces exactly the rows of
an uninterrupted run (timings aside). A trial that had ended and is resumed with more rounds
(a grown study) finds no purchase in its last checkpoint: its last round's model is trained
again to buy the next round's labels, so it too continues as a longer run would have.

The annotators' simulated clock (:mod:`direct_ray.annotation`) runs across rounds: each
purchase starts where the previous one ended (training takes no simulated time), and the
checkpoint keeps it, so a resumed trial continues the clock. An asynchronous team may end
a purchase (other than the last) with labels still out (``annotation.overlap``); those are
missing from that round's model and hidden from the next selection, and join the first
model trained after they come back.

Use :func:`run_trial` directly (no Tune) or through :func:`direct_ray.sweep.run_sweep`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import ray

from direct_ray.checkpoint import TrialState
from direct_ray.config import ConfigError, TrialConfig
from direct_ray.data import load_dataset
from direct_ray.metrics import classification_metrics
from direct_ray.pool_state import PoolState
from direct_ray.results.rows import AnnotationTimes, RoundTimes, curve_row, selection_rows
from direct_ray.results.schema import META_CLASSES, META_RUNTIME, META_STUDY, META_TRIAL, META_VERSIONS
from direct_ray.results.write import TrialWriter
from direct_ray.runtime import faults
from direct_ray.runtime.inputs import DatasetRefs, put_dataset
from direct_ray.runtime.selection import Purchases
from direct_ray.runtime.tasks import train_and_score
from direct_ray.runtime.team import ActorCache, TrialTeam, trial_team
from direct_ray.seeding import INITIAL_STREAM, TRAIN_STREAM, generator, int_seed
from direct_ray.strategies import strategy_class

log = logging.getLogger(__name__)

RoundCallback = Callable[[TrialState, dict], None]


@dataclass
class TrialContext:
    """Where a trial's results go and how they are labeled (given by the sweep)."""

    sweep_id: str = "local"
    output: Optional[Path | str] = None  # results root for Parquet; None = no files
    study: dict = field(default_factory=dict)  # stored in the Parquet metadata
    versions: dict = field(default_factory=dict)
    # a running annotator team shared by the sweep's trials (runtime.annotators.start_shared_team);
    # None: the trial starts annotators of its own
    annotator_team: Optional[str] = None


def check_trial(config: TrialConfig, pool_size: int, dataset: str) -> None:
    """Checks that need the data (its pool size), done before any actor starts."""
    if config.total_budget > pool_size:
        raise ConfigError(
            f"budget: initial_size + rounds * b_train = {config.total_budget} labels, but the pool "
            f"of {dataset} has only {pool_size} examples"
        )


def run_trial(
    config: TrialConfig,
    *,
    context: TrialContext | None = None,
    resume: TrialState | None = None,
    checkpoint_dir: Path | str | None = None,
    on_round: RoundCallback | None = None,
    actor_cache: ActorCache | None = None,
    dataset: DatasetRefs | None = None,
) -> TrialState:
    """Run (or resume) one trial to the end and return its final state.

    ``resume`` continues from a state (e.g. Tune's checkpoint); otherwise, if
    ``checkpoint_dir`` holds a checkpoint, the trial resumes from it. After every round the
    state is saved to ``checkpoint_dir`` (when given), the trial's Parquet files are
    rewritten under ``context.output`` (when given), then ``on_round(state, row)`` is called.
    The trial's actors end with it, unless ``actor_cache`` keeps them for the caller's next
    trial. ``dataset``: the trial's dataset already in the object store (a sweep puts each
    dataset once); None loads it here. Starts a local Ray session if none is running.
    """
    context = context or TrialContext()
    if resume is None and TrialState.exists_in(checkpoint_dir):
        resume = TrialState.load(checkpoint_dir)
    if resume is not None and resume.trial_id != config.trial_id:
        raise ValueError(f"checkpoint belongs to trial {resume.trial_id}, not {config.trial_id}")
    if dataset is None:
        loaded = load_dataset(config.dataset)
        check_trial(config, len(loaded.y_train), loaded.name)  # before Ray starts
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        dataset = put_dataset(loaded)
        del loaded  # the inputs are held once, in the object store
    else:
        check_trial(config, dataset.pool_size, dataset.name)
    state = resume or TrialState(trial_id=config.trial_id)
    if state.pool is None:
        state.pool = PoolState.empty(dataset.pool_size, dataset.num_classes)
    metadata = {META_STUDY: {"sweep_id": context.sweep_id, **context.study}, META_TRIAL: config.to_dict(),
                META_VERSIONS: context.versions, META_CLASSES: list(dataset.classes)}
    writer = TrialWriter(context.output, dataset=dataset.name, strategy=str(config.strategy),
                         trial_id=config.trial_id, metadata=metadata)
    with trial_team(config, dataset.num_classes, dataset.truth, state.pool, state.strategy_state,
                    annotator_team=context.annotator_team, cache=actor_cache) as team, writer:
        _Rounds(config, dataset, context.sweep_id, state, team).run(checkpoint_dir, writer, on_round)
        team.verify(state.pool)
        writer.finish(state.curve, state.selections)
    return state


class _Rounds:
    """The round loop of one trial (see the module docstring)."""

    def __init__(self, config: TrialConfig, dataset: DatasetRefs, sweep_id: str, state: TrialState, team: TrialTeam) -> None:
        self.config, self.dataset, self.state, self.team, self.sweep_id = config, dataset, state, team, sweep_id
        self.needs_embeddings = strategy_class(config.strategy.name).needs_embeddings
        self.effective_b_parallel = team.effective_b_parallel()
        # Round r's wall time is the span from round r-1's row to round r's row, so every
        # second (Ray calls, checkpoints, reports) is counted in exactly one round.
        self.span_start = time.perf_counter()
        self.carried = state.pending_round_seconds

    def run(self, checkpoint_dir, writer: TrialWriter, on_round: RoundCallback | None) -> None:
        cfg, state = self.config, self.state
        if state.next_round == 0 and state.pool.n_labeled == 0:
            initial = generator(cfg.seed, INITIAL_STREAM).choice(self.dataset.pool_size, size=cfg.initial_size, replace=False)
            # the first model waits for the whole initial batch (rounds overlap from round 1 on)
            self._record(0, self.team.buy(0, initial, state.annotation_clock, state.annotator_free_at,
                                          more_rounds=False))
        elif state.next_round <= cfg.rounds and not (state.pool.round_bought == state.next_round).any():
            self._buy_after_last_round()
        training = self._train(state.next_round) if state.next_round <= cfg.rounds else None
        for round_ in range(state.next_round, cfg.rounds + 1):
            row, training = self._round(round_, training)
            if checkpoint_dir is not None:
                state.save(checkpoint_dir)
            writer.submit(state.curve, state.selections, {META_RUNTIME: self.runtime})
            log.info("[%s] round %d/%d n_labeled=%d balanced_accuracy=%.3f minority_labels=%d",
                     cfg.trial_id, round_, cfg.rounds, row["n_labeled"], row["balanced_accuracy"],
                     row["n_minority_labels"])
            if on_round is not None:
                on_round(state, row)

    def _train(self, round_: int) -> tuple:
        """Submit round ``round_``'s training task on every label bought so far; returns its three refs."""
        cfg = self.config
        labeled, labels = self.state.pool.training_set(self.state.annotation_clock)
        data = self.dataset
        return train_and_score.options(num_cpus=cfg.resources.cpus_per_trial, num_gpus=cfg.resources.gpus_per_trial).remote(
            cfg.model.to_dict(), data.x_pool, labeled, labels, data.x_test, data.num_classes,
            int_seed(cfg.seed, TRAIN_STREAM, round_), self.needs_embeddings, cfg.resources.gpus_per_trial > 0,
        )

    def _round(self, round_: int, training: tuple) -> tuple[dict, tuple | None]:
        """Finish round ``round_`` (its training already submitted); returns its row and the next round's training."""
        cfg, state, pool = self.config, self.state, self.state.pool
        probs, embeddings, info_ref = training
        # The next round's selection is queued on this round's model at once: the selection
        # actor starts the moment training ends, while this process computes the metrics.
        last = round_ == cfg.rounds
        purchase_ref = None if last else self._select(round_ + 1, probs, embeddings)
        info = ray.get(info_ref)
        faults.trial_round(cfg.trial_id, round_)
        now = time.perf_counter()
        times = RoundTimes(info["train_seconds"], info["score_seconds"], state.pending_select_seconds,
                           self.carried + (now - self.span_start))
        self.span_start, self.carried = now, 0.0
        data = self.dataset
        metrics = classification_metrics(data.y_test, info["test_pred"], data.num_classes)
        row = curve_row(cfg, sweep_id=self.sweep_id, dataset=data.name, num_classes=data.num_classes,
                        imbalance_ratio=data.imbalance_ratio, round_=round_, pool=pool, metrics=metrics, times=times,
                        effective_b_parallel=self.effective_b_parallel, device=info["device"],
                        annotation=AnnotationTimes(state.pending_annotation_seconds, state.pending_busy_seconds,
                                                   in_flight=pool.n_labeled - info["n_trained"]))
        self.runtime = {key: info[key] for key in ("device", "torch", "cuda")}
        state.selections.extend(selection_rows(pool, cfg.trial_id, round_))
        state.curve.append(row)
        state.pending_select_seconds = state.pending_annotation_seconds = state.pending_busy_seconds = 0.0
        if purchase_ref is not None:  # buy the next round's labels with this round's model
            self._record(round_ + 1, ray.get(purchase_ref))
        state.next_round = round_ + 1
        next_training = None if last else self._train(round_ + 1)
        state.pending_round_seconds = time.perf_counter() - self.span_start
        return row, next_training

    def _buy_after_last_round(self) -> None:
        """Buy ``next_round``'s labels for a trial that had ended before it (its study's rounds were raised).

        A trial's last checkpoint holds no purchase for the round after it, so the last
        round's model is trained again (deterministic: the same labels and seed) and selects
        them, as a longer run would have (but for an asynchronous team, whose last round
        waited for all its labels where a longer run's would not). A retrained model that scores otherwise than the
        stored row (another machine, a GPU) is logged: the new rounds follow from it.
        """
        cfg, state = self.config, self.state
        last = state.curve[-1]
        probs, embeddings, info_ref = self._train(last["round"])
        purchase_ref = self._select(state.next_round, probs, embeddings)
        data = self.dataset
        retrained = classification_metrics(data.y_test, ray.get(info_ref)["test_pred"], data.num_classes)
        if retrained["balanced_accuracy"] != last["balanced_accuracy"]:
            log.warning("[%s] round %d trained again scores balanced_accuracy=%r, not the stored %r; rounds from %d "
                        "follow from the new model", cfg.trial_id, last["round"], retrained["balanced_accuracy"],
                        last["balanced_accuracy"], state.next_round)
        self._record(state.next_round, ray.get(purchase_ref))

    def _select(self, round_: int, probs, embeddings) -> ray.ObjectRef:
        """Start round ``round_``'s selection with the previous round's model, where the annotators' clock stands."""
        cfg, state = self.config, self.state
        return self.team.select(round_, probs, state.pool.observed, cfg.b_train, embeddings, state.annotation_clock,
                                state.annotator_free_at, state.pool.pending(state.annotation_clock),
                                more_rounds=round_ < cfg.rounds)

    def _record(self, round_: int, purchase: Purchases) -> None:
        """Record round ``round_``'s purchase in the pool and the state, and carry the annotators' clock past it."""
        state = self.state
        self.team.record(round_, purchase, state.pool)
        state.strategy_state = purchase.strategy_state
        state.pending_select_seconds = purchase.seconds
        state.annotation_clock = purchase.clock
        state.annotator_free_at = purchase.free_at
        state.pending_annotation_seconds = purchase.annotation_seconds
        state.pending_busy_seconds = purchase.busy_seconds


__all__ = ["TrialContext", "TrialState", "check_trial", "run_trial"]
