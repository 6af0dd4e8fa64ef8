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
state, every row so far and the time already spent on round ``r + 1``. All random streams
are keyed by ``(seed, purpose, round)`` (:mod:`direct_ray.seeding`), so a trial killed at
any point and restarted from its checkpoint produces exactly the rows of an uninterrupted
run (timings aside).

Use :func:`run_trial` directly (no Tune) or through :mod:`direct_ray.sweep`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import ray

from direct_ray.config import ConfigError, FaultPlan, TrialConfig
from direct_ray.data import Dataset, load_dataset
from direct_ray.metrics import classification_metrics
from direct_ray.results.schema import CURVES, META_STUDY, META_TRIAL, META_VERSIONS, SELECTIONS
from direct_ray.results.write import write_trial_table
from direct_ray.runtime.annotators import AnnotatorActor, Oracle, shared_team
from direct_ray.pool_state import PoolState
from direct_ray.runtime.pool import PoolActor
from direct_ray.runtime.selection import Purchases, SelectionActor
from direct_ray.runtime.tasks import train_and_score
from direct_ray.seeding import INITIAL_STREAM, TRAIN_STREAM, generator, int_seed
from direct_ray.strategies import strategy_class

# 2: the pool is stored over its labeled examples only; 3: the selection rows are not
# stored (they are the pool's record, rebuilt on load). Both load.
STATE_FORMAT = 3
READABLE_FORMATS = (2, 3)


@dataclass
class TrialState:
    """What a checkpoint holds: enough to resume at ``next_round`` and rewrite every row."""

    trial_id: str
    next_round: int = 0
    pool: Optional[PoolState] = None
    curve: list[dict] = field(default_factory=list)
    # the audit rows of rounds < next_round; not saved: :meth:`load` rebuilds them from the pool
    selections: list[dict] = field(default_factory=list)
    # seconds already spent on ``next_round`` (its purchase happens before the checkpoint)
    pending_select_seconds: float = 0.0
    pending_round_seconds: float = 0.0
    # what the strategy carries between rounds (e.g. Cluster-Margin's clusters)
    strategy_state: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, directory: Path | str) -> Path:
        """Write the state into ``directory`` (created; replaced atomically if it exists)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            np.savez(tmp / "pool.npz", **self.pool.to_arrays())
            np.savez(tmp / "strategy.npz", **self.strategy_state)
            meta = {
                "format": STATE_FORMAT,
                "trial_id": self.trial_id,
                "next_round": self.next_round,
                "pending_select_seconds": self.pending_select_seconds,
                "pending_round_seconds": self.pending_round_seconds,
            }
            (tmp / "state.json").write_text(json.dumps(meta))
            (tmp / "rows.json").write_text(json.dumps({"curve": self.curve}))
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(directory, old)
                os.replace(tmp, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> "TrialState":
        directory = Path(directory)
        meta = json.loads((directory / "state.json").read_text())
        if meta.get("format") not in READABLE_FORMATS:
            raise ValueError(f"checkpoint {directory} has format {meta.get('format')}, expected one of {READABLE_FORMATS}")
        rows = json.loads((directory / "rows.json").read_text())
        with np.load(directory / "pool.npz") as arrays:
            pool = PoolState.from_arrays(dict(arrays))
        with np.load(directory / "strategy.npz") as arrays:
            strategy_state = {key: arrays[key] for key in arrays.files}
        return cls(
            trial_id=meta["trial_id"],
            next_round=meta["next_round"],
            pool=pool,
            curve=rows["curve"],
            selections=[
                {"trial_id": meta["trial_id"], **row}
                for round_ in range(meta["next_round"])
                for row in pool.selection_rows(round_)
            ],
            pending_select_seconds=meta["pending_select_seconds"],
            pending_round_seconds=meta["pending_round_seconds"],
            strategy_state=strategy_state,
        )

    @property
    def finished_rounds(self) -> int:
        return len(self.curve)


RoundCallback = Callable[[TrialState, dict], None]


@dataclass
class TrialContext:
    """Where a trial's results go and how they are labeled (given by the sweep)."""

    sweep_id: str = "local"
    output: Optional[Path] = None  # results root for Parquet; None = no files
    study: dict = field(default_factory=dict)  # stored in the Parquet metadata
    versions: dict = field(default_factory=dict)
    verbose: bool = True
    # name of a running annotator team shared by the sweep's trials (runtime.annotators.
    # start_shared_team); None: the trial's process keeps a team of its own
    annotator_team: Optional[str] = None
    # faults injected on purpose, for recovery tests (none by default)
    faults: FaultPlan = field(default_factory=FaultPlan)


def check_trial(config: TrialConfig, dataset: Dataset) -> None:
    """Checks that need the data, done before any actor starts."""
    n = len(dataset.y_train)
    if config.total_budget > n:
        raise ConfigError(
            f"budget: initial_size + rounds * b_train = {config.total_budget} labels, but the pool "
            f"of {dataset.name} has only {n} examples"
        )


def run_trial(
    config: TrialConfig,
    *,
    context: TrialContext | None = None,
    resume: TrialState | None = None,
    checkpoint_dir: Path | str | None = None,
    on_round: RoundCallback | None = None,
) -> TrialState:
    """Run (or resume) one trial to the end and return its final state.

    ``resume`` continues from a state (e.g. Tune's checkpoint); otherwise, if
    ``checkpoint_dir`` holds a checkpoint, the trial resumes from it. After every round the
    state is saved to ``checkpoint_dir`` (when given), the trial's Parquet files are
    rewritten under ``context.output`` (when given), then ``on_round(state, row)`` is called.
    Starts a local Ray session if none is running.
    """
    context = context or TrialContext()
    if resume is None and checkpoint_dir is not None and (Path(checkpoint_dir) / "state.json").exists():
        resume = TrialState.load(checkpoint_dir)
    if resume is not None and resume.trial_id != config.trial_id:
        raise ValueError(f"checkpoint belongs to trial {resume.trial_id}, not {config.trial_id}")
    dataset = load_dataset(config.dataset)
    check_trial(config, dataset)
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    trial = _TrialRun(config, dataset, context, resume, checkpoint_dir, on_round)
    del dataset  # the trial keeps only object-store views of the inputs (see _TrialRun.run)
    return trial.run()


@dataclass
class _Team:
    """The actors a trial owns; kept alive between trials in one process (see _take_team).

    ``annotators`` stays empty when the trials share a sweep-wide annotator team.
    """

    selector: Optional[ray.actor.ActorHandle] = None
    pool: Optional[ray.actor.ActorHandle] = None
    annotators: list = field(default_factory=list)

    def actors(self) -> list:
        return [a for a in [self.selector, self.pool, *self.annotators] if a is not None]


# One spare team per Ray session (node and job) in this process.
_SPARE_TEAMS: dict[tuple[str, str], _Team] = {}


def _session_key() -> tuple[str, str]:
    context = ray.get_runtime_context()
    return context.get_node_id(), context.get_job_id()


def release_spare_actors() -> None:
    """Kill the actors this process keeps between trials (frees their memory; the next trial starts new ones)."""
    while _SPARE_TEAMS:
        _, team = _SPARE_TEAMS.popitem()
        for actor in team.actors():
            ray.kill(actor)


class _TrialRun:
    """The live objects of one trial: object-store refs and actors (see :func:`run_trial`)."""

    def __init__(self, config, dataset, context, resume, checkpoint_dir, on_round) -> None:
        self.config = config
        self.dataset = dataset
        self.context = context
        self.checkpoint_dir = checkpoint_dir
        self.on_round = on_round
        self.num_classes = dataset.num_classes
        self.state = resume or TrialState(trial_id=config.trial_id)
        if self.state.pool is None:
            self.state.pool = PoolState.empty(len(dataset.y_train), self.num_classes)
        self.needs_embeddings = strategy_class(config.strategy.name).needs_embeddings

    def run(self) -> TrialState:
        cfg = self.config
        # The pool's inputs go into the object store once; tasks and actors get references.
        # The trial then drops its own copies and keeps zero-copy views of the stored ones,
        # so the inputs are held once, in shared memory, for the whole trial.
        x_pool = ray.put(self.dataset.x_train)
        x_test = ray.put(self.dataset.x_test)
        y_pool = ray.put(self.dataset.y_train)
        self.dataset = replace(self.dataset, x_train=ray.get(x_pool), x_test=ray.get(x_test), y_train=ray.get(y_pool))
        # Parquet files are rewritten in the background while the next round trains.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self.pending_write: Future | None = None
        finished = False
        try:
            self._take_team(y_pool)
            self.effective_b_parallel = ray.get(self.selector.effective_b_parallel.remote())
            ray.get([actor.__ray_ready__.remote() for actor in [self.pool, *self.annotators]])
            # Round r's wall time is the span from round r-1's row to round r's row, so every
            # second (Ray calls, checkpoints, reports) is counted in exactly one round.
            self.span_start = time.perf_counter()
            self.carried_seconds = self.state.pending_round_seconds
            if self.state.next_round == 0 and self.state.pool.n_labeled == 0:
                rng = generator(cfg.seed, INITIAL_STREAM)
                initial = rng.choice(len(self.dataset.y_train), size=cfg.initial_size, replace=False)
                purchase = ray.get(self.selector.buy.remote(0, initial))
                self._record(0, purchase)
                self.state.pending_select_seconds = purchase.seconds
            training = None
            for round_ in range(self.state.next_round, cfg.rounds + 1):
                training = self._round(round_, training or self._train(round_, x_pool, x_test), x_pool, x_test)
            self._check_pool()
            self._wait_for_write()
            finished = True
        finally:
            self.writer.shutdown(wait=True)
            self._release_team(keep=finished)
        return self.state

    def _take_team(self, y_pool: ray.ObjectRef) -> None:
        """Get this process's spare actors (started for an earlier trial) or start them.

        Starting a trial's B_parallel + 2 actor processes costs seconds, far more than a
        small trial's rounds, so a process that runs trial after trial (a Tune trainable,
        a notebook) keeps one team and points it at each new trial. The actors hold nothing
        of a finished trial that the next could see: the pool and selection actors are
        re-initialised, and the annotators are briefed on each new trial. In a sweep the
        annotators come from the sweep's shared team (``context.annotator_team``).
        """
        cfg = self.config
        team = self.team = _SPARE_TEAMS.pop(_session_key(), None) or _Team()
        if self.context.annotator_team is not None:
            self.annotators = shared_team(self.context.annotator_team, cfg.b_parallel)
        else:
            while len(team.annotators) < cfg.b_parallel:
                team.annotators.append(AnnotatorActor.remote(len(team.annotators)))
            self.annotators = team.annotators[: cfg.b_parallel]
        oracle = Oracle(cfg.noise, self.num_classes, cfg.seed, self.context.faults)
        selector_args = (cfg.strategy.name, cfg.b_parallel, self.annotators, cfg.seed, [y_pool], oracle,
                         self.state.strategy_state, cfg.strategy.options)
        if team.selector is None:
            team.selector = SelectionActor.remote(*selector_args)
            team.pool = PoolActor.remote(self.state.pool)
        else:
            ray.get([team.selector.reset.remote(*selector_args), team.pool.reset.remote(self.state.pool)])
        self.selector, self.pool = team.selector, team.pool
        self.records: list[ray.ObjectRef] = []

    def _release_team(self, keep: bool) -> None:
        """Keep the team for the next trial in this process, or kill it after a failure.

        A shared annotator team is not this trial's to kill: a crashed annotator is restarted
        by Ray and its query retried.
        """
        if not hasattr(self, "team"):
            return
        if keep:
            _SPARE_TEAMS[_session_key()] = self.team
        else:
            for actor in self.team.actors():
                ray.kill(actor)

    def _record(self, round_: int, purchase: Purchases) -> None:
        """Record a purchase in the pool actor and in the trial's own mirror of the pool state.

        The actor is the record of the labeling; the mirror (what the trial trains on and
        checkpoints) is updated by the same code, so no per-round copy of an O(N) state has to
        travel back. :meth:`_check_pool` compares the two at the end of the trial.
        """
        indices, observed, true, annotators = purchase.arrays()
        # Calls from one caller run in order on the actor: no need to wait for each one.
        self.records.append(self.pool.record.remote(round_, indices, observed, true, annotators))
        self.state.pool.record(round_, indices, observed, true, annotators)

    def _check_pool(self) -> None:
        ray.get(self.records)  # surfaces any error the pool actor raised
        if ray.get(self.pool.fingerprint.remote()) != self.state.pool.fingerprint():
            raise RuntimeError("the pool actor's record and the trial's checkpointed pool state differ")

    def _maybe_fault(self, round_: int) -> None:
        faults = self.context.faults
        for kind, target in (("raise", faults.trial_raise_at_round), ("exit", faults.trial_exit_at_round)):
            if target != round_:
                continue
            marker = Path(faults.marker_dir) / f"trial_{kind}_{self.config.trial_id}.fired"
            if marker.exists():
                continue
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            if kind == "raise":
                raise RuntimeError(f"injected fault: trial raises in round {round_}")
            os._exit(1)

    def _train(self, round_: int, x_pool, x_test) -> tuple:
        """Submit round ``round_``'s training task on every label bought so far; returns its three refs."""
        cfg = self.config
        labeled, labels = self.state.pool.training_set()
        return train_and_score.options(
            num_cpus=cfg.resources.cpus_per_trial, num_gpus=cfg.resources.gpus_per_trial
        ).remote(
            cfg.model.to_dict(),
            x_pool,
            labeled,
            labels,
            x_test,
            self.num_classes,
            int_seed(cfg.seed, TRAIN_STREAM, round_),
            self.needs_embeddings,
        )

    def _round(self, round_: int, training: tuple, x_pool, x_test) -> tuple | None:
        """Finish round ``round_`` (its training task is already submitted); returns the next round's.

        The next round's training goes out as soon as its labels are bought, before the
        checkpoint, the Parquet files and the report to Tune: those overlap with training
        (on a cluster, a checkpoint upload to S3 no longer leaves the GPU idle).
        """
        cfg = self.config
        probs, embeddings, info_ref = training
        pool = self.state.pool
        # The next round's selection is queued on this round's model at once: the selection
        # actor starts the moment training ends, while this process computes the metrics.
        purchase_ref = None
        if round_ < cfg.rounds:
            purchase_ref = self.selector.select.remote(round_ + 1, probs, pool.observed, cfg.b_train, embeddings)
        info = ray.get(info_ref)
        self._maybe_fault(round_)
        summary = {
            "n_labeled": pool.n_labeled,
            "n_labeled_per_class": pool.per_class_observed().tolist(),
            "n_noisy_labels": pool.n_noisy(),
            "n_minority_labels": pool.n_minority(),
        }
        metrics = classification_metrics(self.dataset.y_test, info["test_pred"], self.num_classes)
        row = self._row(round_, summary, metrics, info)
        now = time.perf_counter()
        row["round_seconds"] = self.carried_seconds + (now - self.span_start)
        self.span_start, self.carried_seconds = now, 0.0
        self.state.selections.extend({"trial_id": cfg.trial_id, **r} for r in pool.selection_rows(round_))
        self.state.curve.append(row)
        # Buy the next round's labels with this round's model, then checkpoint.
        next_select = 0.0
        if purchase_ref is not None:
            purchase = ray.get(purchase_ref)
            self._record(round_ + 1, purchase)
            self.state.strategy_state = purchase.strategy_state
            next_select = purchase.seconds
        self.state.next_round = round_ + 1
        self.state.pending_select_seconds = next_select
        next_training = self._train(round_ + 1, x_pool, x_test) if round_ < cfg.rounds else None
        self.state.pending_round_seconds = time.perf_counter() - self.span_start
        if self.checkpoint_dir is not None:
            self.state.save(self.checkpoint_dir)
        self._write_results()
        if self.context.verbose:
            print(
                f"[{cfg.trial_id}] round {round_}/{cfg.rounds} n_labeled={row['n_labeled']} "
                f"balanced_accuracy={row['balanced_accuracy']:.3f} minority_labels={row['n_minority_labels']} "
                f"(train {row['train_seconds']:.2f}s, select {row['select_seconds']:.2f}s)",
                flush=True,
            )
        if self.on_round is not None:
            self.on_round(self.state, row)
        return next_training

    def _row(self, round_: int, summary: dict, metrics: dict, info: dict) -> dict:
        cfg = self.config
        return {
            "sweep_id": self.context.sweep_id,
            "trial_id": cfg.trial_id,
            "dataset": self.dataset.name,
            "num_classes": self.num_classes,
            "imbalance_ratio": float(self.dataset.imbalance_ratio),
            "strategy": str(cfg.strategy),
            "seed": cfg.seed,
            "b_parallel": cfg.b_parallel,
            "b_train": cfg.b_train,
            "noise_model": cfg.noise.model,
            "noise_rate": float(cfg.noise.nominal_rate),
            "round": round_,
            **summary,
            **{k: metrics[k] for k in ("balanced_accuracy", "accuracy", "worst_class_accuracy", "minority_accuracy")},
            "train_seconds": float(info["train_seconds"]),
            "score_seconds": float(info["score_seconds"]),
            "select_seconds": float(self.state.pending_select_seconds),
            "effective_b_parallel": int(self.effective_b_parallel),
            "per_class_accuracy": metrics["per_class_accuracy"],
            "model": cfg.model.kind,
            "noise_config": json.dumps(cfg.noise.to_dict(), sort_keys=True),
        }

    def _wait_for_write(self) -> None:
        if self.pending_write is not None:
            self.pending_write.result()  # re-raises a failed write
            self.pending_write = None

    def _write_results(self) -> None:
        """Rewrite this trial's Parquet files (in the background; one write at a time, in order)."""
        if self.context.output is None:
            return
        self._wait_for_write()
        cfg = self.config
        metadata = {
            META_STUDY: {"sweep_id": self.context.sweep_id, **self.context.study},
            META_TRIAL: cfg.to_dict(),
            META_VERSIONS: self.context.versions,
        }
        tables = [(CURVES, list(self.state.curve)), (SELECTIONS, list(self.state.selections))]

        def write() -> None:
            for table, rows in tables:
                write_trial_table(
                    self.context.output,
                    table,
                    rows,
                    dataset=self.dataset.name,
                    strategy=str(cfg.strategy),
                    trial_id=cfg.trial_id,
                    metadata=metadata,
                )

        self.pending_write = self.writer.submit(write)


__all__ = ["TrialContext", "TrialState", "check_trial", "release_spare_actors", "run_trial"]
