"""Run a study on Ray Tune: :func:`run_sweep` (the API) and ``python -m direct_ray.sweep`` (the CLI).

Each trial runs :func:`direct_ray.trial.run_trial` inside a Tune function trainable that
reserves ``resources.cpus_per_trial`` / ``gpus_per_trial`` in a placement group: the trial
driver itself takes no resources (an empty head bundle), the training task runs in the
reserved bundle, and the pool, selection and annotator actors take zero CPUs. So nested
work always fits inside what the trial reserved, and a full cluster cannot deadlock.

Every round is checkpointed through ``tune.report(..., checkpoint=...)`` (a retried trial
resumes at its last round) and rewrites the trial's Parquet files atomically under the
output (:mod:`direct_ray.results.layout`). ``resume=True`` restores the Tune experiment:
finished trials are not rerun. Progress goes to the ``direct_ray`` logger.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from direct_ray.config import StudyConfig, TrialConfig
from direct_ray.interrupts import Interrupted, stop_on_signals
from direct_ray.progress import Counts, SweepProgress
from direct_ray.results import layout
from direct_ray.results.schema import PROGRESS_COLUMNS
from direct_ray.runtime.team import ActorCache, annotator_team_names, team_for_trial, trials_at_once

log = logging.getLogger(__name__)

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "sweeps" / "default.yaml"

# A Tune trainable process runs trial after trial (reuse_actors=True): it keeps its trial's
# actors for the next one (see direct_ray.runtime.team). They end with the process.
_TRAINABLE_ACTORS = ActorCache()


class SweepInterrupted(KeyboardInterrupt):
    """A signal stopped the sweep; the trials that finished are on disk and ``resume`` continues it."""

    def __init__(self, signum: int, exit_status: int, output: str, completed: int, trials: int) -> None:
        super().__init__(f"interrupted: {completed} of {trials} trials complete")
        self.signum, self.exit_status, self.output, self.completed, self.trials = (
            signum, exit_status, output, completed, trials)


@dataclass(frozen=True)
class SweepResult:
    """What a finished (or partly failed) sweep left in its output."""

    output: str
    sweep_id: str
    trials: int
    completed: list[str] = field(default_factory=list)  # trial ids with every round written
    failed: dict[str, str] = field(default_factory=dict)  # trial id -> error

    @property
    def ok(self) -> bool:
        return not self.failed and len(self.completed) == self.trials


def package_versions() -> dict[str, str]:
    """Versions stored with the results; read from the installed metadata (importing torch costs seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    import direct_ray

    versions = {"direct_ray": direct_ray.__version__, "python": platform.python_version()}
    for package in ("ray", "torch", "torchvision", "numpy", "pyarrow"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def tune_trial(param: dict[str, Any], datasets: dict | None = None) -> None:
    """The Tune trainable: one trial, resumed from Tune's checkpoint when there is one.

    ``datasets`` maps dataset names to :class:`~direct_ray.runtime.inputs.DatasetRefs` that
    the driver put in the object store once for the whole sweep (``tune.with_parameters``).
    """
    from ray import tune

    from direct_ray.checkpoint import TrialState
    from direct_ray.runtime.priority import yield_to_training
    from direct_ray.trial import TrialContext, run_trial

    # This process only coordinates (its work waits on, or overlaps with, the trial's
    # training task): it must not take a core from training (see runtime.priority).
    yield_to_training()
    config = TrialConfig.from_dict(param["trial"])
    ctx = param["context"]
    if layout.trial_complete(ctx["output"], config):
        return  # finished before the driver was interrupted: never rerun it
    context = TrialContext(
        sweep_id=ctx["sweep_id"],
        output=ctx["output"],
        study=ctx["study"],
        versions=ctx["versions"],
        annotator_team=team_for_trial(config.trial_id, ctx["annotator_teams"]),
    )
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = TrialState.load(directory)

    def report(state: TrialState, row: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = state.save(Path(tmp) / "state")
            metrics = {column: row[column] for column in PROGRESS_COLUMNS}
            metrics["rounds_total"] = config.rounds
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(path)))

    run_trial(config, context=context, resume=resume, on_round=report, actor_cache=_TRAINABLE_ACTORS,
              dataset=(datasets or {}).get(config.dataset.name))


def _progress_callback(progress: SweepProgress):
    from ray import tune

    class Progress(tune.Callback):
        """Feeds Tune's trial events to the progress line; logs each round at DEBUG (``--verbose``, sweep.log)."""

        def on_trial_start(self, iteration, trials, trial, **info):
            progress.started(_trial_id(trial))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            config = TrialConfig.from_dict(trial.config["trial"])
            log.debug("  %14s %s: round %s/%s n_labeled=%s balanced_accuracy=%.3f", str(config.strategy),
                      config.trial_id, result["round"], result["rounds_total"], result["n_labeled"],
                      result["balanced_accuracy"])
            progress.round_done(config.trial_id)

        def on_trial_complete(self, iteration, trials, trial, **info):
            log.debug("trial done: %s", _trial_id(trial))
            progress.finished(_trial_id(trial))

        def on_trial_recover(self, iteration, trials, trial, **info):
            log.warning("[trial failed] %s: Tune retries it from its last round", _trial_id(trial))

        def on_trial_error(self, iteration, trials, trial, **info):
            log.warning("[trial failed] %s: no retries left", _trial_id(trial))
            progress.finished(_trial_id(trial), failed=True)

    return Progress()


def _counts_on_disk(output: str, trials: list[TrialConfig]) -> Counts:
    """Trials and rounds the output already holds (a resumed sweep counts on from them)."""
    from direct_ray.results.read import ResultsError, read_results

    counts = Counts(trials=len(trials), rounds=sum(t.rounds + 1 for t in trials))
    counts.trials_done = sum(layout.trial_complete(output, t) for t in trials)
    try:
        rows = read_results(output, skip_unreadable=True).table
        counts.rounds_done = counts.rounds_at_start = len(set(zip(rows["trial_id"].to_pylist(), rows["round"].to_pylist())))
    except ResultsError:
        pass  # nothing written yet
    return counts


def _trial_id(trial) -> str:
    return TrialConfig.from_dict(trial.config["trial"]).trial_id


def absolute_paths(study: StudyConfig) -> StudyConfig:
    """Make features paths absolute: trials run in other working directories (and on other nodes)."""
    datasets = tuple(
        d.model_copy(update={"path": str(Path(d.path).expanduser().resolve())}) if d.path else d for d in study.datasets
    )
    return replace(study, datasets=datasets)


def load_datasets(study: StudyConfig, specs: Sequence) -> dict:
    """Load the datasets ``specs`` of ``study`` and check that every trial's budget fits: name -> Dataset."""
    from direct_ray.data import load_dataset
    from direct_ray.trial import check_trial

    loaded = {}
    for spec in specs:
        loaded[spec.name] = load_dataset(spec)
        for trial in study.trials():
            if trial.dataset == spec:
                check_trial(trial, len(loaded[spec.name].y_train), spec.name)
    return loaded


def put_datasets(study: StudyConfig, loaded: dict) -> dict:
    """Put every dataset of the study in the object store once (loading those not in ``loaded``): name -> refs.

    ``loaded`` is emptied: afterwards the arrays are held once, in the object store.
    """
    from direct_ray.runtime.inputs import put_dataset

    loaded.update(load_datasets(study, [spec for spec in study.datasets if spec.name not in loaded]))
    refs = {}
    while loaded:
        name, dataset = loaded.popitem()
        refs[name] = put_dataset(dataset)
    return refs


def prepare_study(study: StudyConfig | str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """A validated study ready to run: parsed (from a YAML path), features paths absolute."""
    if not isinstance(study, StudyConfig):
        study = StudyConfig.from_yaml(study, overrides)
    elif overrides:
        raise ValueError("overrides apply to a study file; change a StudyConfig with dataclasses.replace")
    return absolute_paths(study)


def resolve_output(study: StudyConfig, output: str | Path | None) -> str:
    """The output root: ``results/<study name>`` by default; local paths made absolute."""
    output = str(output) if output is not None else str(Path("results") / study.name)
    return output if layout.is_uri(output) else str(Path(output).expanduser().resolve())


class PreflightError(RuntimeError):
    """The sweep can never run as asked (no node fits a trial, files or output unreachable); one line per problem."""


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep would run on the current cluster, and what stands in its way."""

    study: StudyConfig
    output: str
    trials: int
    resources: dict  # what one trial reserves
    at_once: int  # trials that fit on the cluster now
    problems: list[str] = field(default_factory=list)  # the sweep cannot run
    notes: list[str] = field(default_factory=list)  # worth knowing, not blocking

    def describe(self) -> str:
        """The text of ``--dry-run``."""
        trials = self.study.trials()
        lines = [
            f"study {self.study.name!r}: {self.trials} trials, results -> {self.output}",
            f"  each trial reserves {', '.join(f'{v:g} {k}' for k, v in self.resources.items())}; "
            f"{self.at_once} can run at once on this cluster now",
            *(f"  {t.trial_id}" for t in trials[:10]),
            *([f"  ... and {len(trials) - 10} more"] if len(trials) > 10 else []),
            *(f"note: {note}" for note in self.notes),
            *(f"problem: {problem}" for problem in self.problems),
            "no problem found" if not self.problems else f"{len(self.problems)} problem(s): the sweep would not start",
        ]
        return "\n".join(lines)


def _plan(study: StudyConfig, output: str, started_here: bool) -> SweepPlan:
    """Check the study against the connected cluster (resources, dataset files, output on every node)."""
    import ray

    from direct_ray.runtime import preflight

    resources = {"CPU": study.resources.cpus_per_trial, "GPU": study.resources.gpus_per_trial}
    fit = preflight.resource_problems(resources["CPU"], resources["GPU"], autoscaling=not started_here)
    problems = [] if not started_here else fit
    problems += preflight.dataset_problems(study.datasets)
    problems += preflight.output_problems(output)
    n_trials = len(study.trials())
    return SweepPlan(study, output, n_trials, {k: v for k, v in resources.items() if v},
                     trials_at_once(study, n_trials, ray.cluster_resources()) if not fit else 0,
                     problems, fit if not started_here else [])


@contextmanager
def _log_file(output: str):
    """Every ``direct_ray`` log line, each round's included, into ``output/sweep.log`` (local outputs)."""
    if layout.is_uri(output):
        yield
        return
    handler = logging.FileHandler(Path(output) / "sweep.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("direct_ray")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)
        handler.close()


@contextmanager
def _quiet(logger: str, level: int = logging.ERROR):
    """Only records of ``level`` and above from ``logger`` for the ``with`` block."""
    log_ = logging.getLogger(logger)
    before = log_.level
    log_.setLevel(level)
    try:
        yield
    finally:
        log_.setLevel(before)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flatten(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def check_same_study(stored: dict, given: dict) -> None:
    """Refuse to resume a sweep with a study other than the one it stored, naming each key that differs."""
    before, after = _flatten(stored), _flatten(given)
    differ = [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if differ:
        changes = "; ".join(f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in differ)
        raise layout.SweepRecordError(
            f"--resume continues the study stored in the output, but the study given differs ({changes}); "
            "resume with the same study and --set values, or start a new sweep with another --output"
        )


def _connect(address: str | None, num_cpus: int | None) -> tuple[bool, bool]:
    """(this process initialised Ray, it started the session itself) after joining or starting one."""
    import ray

    from direct_ray.runtime.session import connect

    if ray.is_initialized():
        return False, False
    return True, connect(address, num_cpus)


def dry_run(
    study: StudyConfig | str | Path,
    output: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    address: str | None = None,
    num_cpus: int | None = None,
) -> SweepPlan:
    """What :func:`run_sweep` would run and every problem it would stop on, without starting a trial."""
    import ray

    study = prepare_study(study, overrides)
    load_datasets(study, [spec for spec in study.datasets if spec.kind in ("digits", "features")])
    output = resolve_output(study, output)
    initialized_here, started_here = _connect(address, num_cpus)
    try:
        return _plan(study, output, started_here)
    finally:
        if initialized_here:
            ray.shutdown()


def run_sweep(
    study: StudyConfig | str | Path,
    output: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    handle_signals: bool = False,
    live_progress: bool = False,
) -> SweepResult:
    """Run every trial of ``study`` (a :class:`StudyConfig` or a YAML path plus ``overrides``).

    Results go to ``output`` (a directory or a URI; default ``results/<study name>``).
    ``resume`` continues the sweep already there. Uses the running Ray session if there is
    one, else connects to ``address`` or starts a local session of ``num_cpus`` CPUs.
    Raises :class:`~direct_ray.config.ConfigError` (or ``ValueError``/``FileNotFoundError``)
    for a bad study, :class:`~direct_ray.results.layout.SweepRecordError` for an output
    that holds another sweep and :class:`PreflightError` for a sweep that could never run
    (see :mod:`direct_ray.runtime.preflight`), before any trial starts. With
    ``handle_signals`` (the command line), SIGINT and SIGTERM stop the sweep cleanly and
    raise :class:`SweepInterrupted` (see :mod:`direct_ray.interrupts`). Progress is logged
    (``direct_ray.progress``); ``live_progress`` redraws it in place on a terminal. Every line,
    each round's included, also goes to ``sweep.log`` in a local output.
    """
    study = prepare_study(study, overrides)
    # The files of the cheap datasets are read (and every budget checked) before Ray starts.
    loaded = load_datasets(study, [spec for spec in study.datasets if spec.kind in ("digits", "features")])
    output = resolve_output(study, output)
    layout.check_output(output)
    record = layout.existing_sweep_record(output, resume)
    if record is not None:
        check_same_study(record["study"], study.raw)
    trials = study.trials()

    # The command line handles Ctrl-C itself (direct_ray.interrupts): Tune's own handler would
    # stop "gracefully" and then report every unfinished trial as missing its metrics.
    if handle_signals:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # Tune's own console output (its configuration table, result tables) repeats what the
    # progress line shows; with its older reporter, verbose=0 prints nothing.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune warns on every forced snapshot; with short rounds that is noise, not news.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's per-trial CSV and TensorBoard logs repeat what the Parquet curves hold and cost
    # the driver seconds; only the JSON log is kept (Tune's result grid reads it).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from direct_ray.runtime.annotators import start_shared_team

    # Nothing is written to the output before the session works and the checks pass.
    initialized_here, started_here = _connect(address, num_cpus)
    annotators: list = []
    signals: list[int] = []
    try:
        with ExitStack() as stack:
            if handle_signals:
                signals = stack.enter_context(stop_on_signals())
            plan = _plan(study, output, started_here)
            if plan.problems:
                raise PreflightError("\n".join(plan.problems))
            for note in plan.notes:
                log.warning("note: %s", note)
            record = record or layout.new_sweep_record(output, study.raw)
            stack.enter_context(_log_file(output))
            log.info("study %r: %d trials, %d rounds of %d labels; results -> %s", study.name, len(trials), study.rounds,
                     study.b_train, output)
            # The team names are stored with the sweep: a resumed sweep (whose trials get the
            # parameters stored at its first run) starts the same teams again.
            if "annotator_teams" not in record:
                concurrent = trials_at_once(study, len(trials), ray.cluster_resources())
                record["annotator_teams"] = annotator_team_names(record["sweep_id"], concurrent)
                layout.write_sweep_record(output, record)
            for name in record["annotator_teams"]:
                annotators += start_shared_team(name, max(study.b_parallels))
            context = {"sweep_id": record["sweep_id"], "output": output, "study": study.raw,
                       "versions": package_versions(), "annotator_teams": record["annotator_teams"]}
            bundle = {"CPU": study.resources.cpus_per_trial}
            if study.resources.gpus_per_trial:
                bundle["GPU"] = study.resources.gpus_per_trial
            # Each dataset is loaded once, here, and every trial reads it from the object store.
            trainable = tune.with_parameters(tune_trial, datasets=put_datasets(study, loaded))
            trainable = tune.with_resources(trainable, tune.PlacementGroupFactory([{}, bundle]))
            progress = SweepProgress(_counts_on_disk(output, trials), live=None if live_progress else False)
            tune_dir = layout.join(output, layout.TUNE_DIR)
            if resume and tune.Tuner.can_restore(tune_dir):
                # Restoring, Tune reports every trial that had not started as "missing metrics";
                # the Parquet files, not Tune's logs, say what is done.
                with _quiet("ray.tune.analysis.experiment_analysis"):
                    tuner = tune.Tuner.restore(tune_dir, trainable, resume_unfinished=True, resume_errored=True)
            else:
                tuner = tune.Tuner(
                    trainable,
                    param_space={"trial": tune.grid_search([t.to_dict() for t in trials]), "context": context},
                    tune_config=tune.TuneConfig(
                        max_concurrent_trials=study.max_concurrent_trials,
                        reuse_actors=True,  # one trainable process per slot, not per trial
                        trial_dirname_creator=_trial_id,
                        trial_name_creator=_trial_id,
                    ),
                    run_config=tune.RunConfig(
                        name=layout.TUNE_DIR,
                        storage_path=output,
                        failure_config=tune.FailureConfig(max_failures=study.max_failures),
                        # Keeping 10 checkpoints bounds the disk and keeps Tune from forcing an
                        # experiment snapshot every other round.
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=10),
                        callbacks=[_progress_callback(progress), JsonLoggerCallback()],
                        verbose=0,
                    ),
                )
            # Tune's own progress lines (where it saved its state) would break the progress line.
            with progress, _quiet("ray.tune", logging.WARNING):
                results = tuner.fit()
    except KeyboardInterrupt:  # Interrupted, or the plain one Ray's C code raises for it
        if not signals:
            raise  # not a signal this sweep handles (e.g. Ctrl-C in a notebook)
        interrupted = Interrupted(signals[0])
    else:
        interrupted = None
    finally:
        for actor in annotators:
            ray.kill(actor)
        if initialized_here:
            ray.shutdown()
    if interrupted is not None:
        done = sum(layout.trial_complete(output, t) for t in trials)
        raise SweepInterrupted(interrupted.signum, interrupted.exit_status, output, done, len(trials)) from None
    failed = {TrialConfig.from_dict(r.config["trial"]).trial_id: str(r.error) for r in results if r.error is not None}
    completed = [t.trial_id for t in trials if layout.trial_complete(output, t)]
    return SweepResult(output, record["sweep_id"], len(trials), completed, failed)


if __name__ == "__main__":
    from direct_ray.cli import main

    sys.exit(main())
