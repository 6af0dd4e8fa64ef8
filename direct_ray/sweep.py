"""Run a study on Ray Tune: :func:`run_sweep` (the API that ``python -m direct_ray.sweep`` wraps).

:func:`run_sweep` parses the study, checks the output and the cluster before any trial
starts (:mod:`direct_ray.runtime.preflight`), records the sweep in its output
(:mod:`direct_ray.results.layout`), puts every dataset in the object store once, starts the
shared annotator teams and hands the trials to Ray Tune, whose trainable runs each one
(:mod:`direct_ray.runtime.trainable`). ``resume=True`` restores the Tune experiment:
finished trials are not rerun; a study grown on resume (:mod:`direct_ray.growth`) runs as a
new experiment in which every trial continues from what the earlier one left. Progress goes
to the ``direct_ray`` logger (:mod:`direct_ray.progress`); the command line is
:mod:`direct_ray.cli`.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import sys
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from direct_ray import growth
from direct_ray.config import StudyConfig, TrialConfig
from direct_ray.interrupts import Interrupted, stop_on_signals
from direct_ray.progress import SweepProgress, counts_on_disk
from direct_ray.results import layout
from direct_ray.runtime import preflight
from direct_ray.runtime.inputs import load_datasets, put_datasets
from direct_ray.runtime.preflight import PreflightError, SweepPlan
from direct_ray.runtime.team import annotator_team_names, trials_at_once
from direct_ray.runtime.trainable import progress_callback, trial_id_of, tune_trial

log = logging.getLogger(__name__)

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "sweeps" / "default.yaml"
# The sweep record's name of the Tune experiment a grown sweep runs (absent: layout.TUNE_DIR).
TUNE_EXPERIMENT = "tune_experiment"

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


def absolute_paths(study: StudyConfig) -> StudyConfig:
    """Make features paths absolute: trials run in other working directories (and on other nodes)."""
    datasets = tuple(
        d.model_copy(update={"path": str(Path(d.path).expanduser().resolve())}) if d.path else d for d in study.datasets
    )
    return replace(study, datasets=datasets)


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
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
) -> SweepPlan:
    """What :func:`run_sweep` would run and every problem it would stop on, without starting a trial.

    With ``resume`` the study is compared with the one stored in ``output`` as a resumed
    sweep compares it: a change it would refuse raises, and a growth is named in the notes.
    """
    import ray

    study, _, output, _, grown = _prepared(study, output, overrides, resume)
    initialized_here, started_here = _connect(address, num_cpus)
    try:
        plan = preflight.plan(study, output, started_here)
        if grown:
            plan.notes.insert(0, f"--resume would grow the stored sweep: {grown.describe()}")
        return plan
    finally:
        if initialized_here:
            ray.shutdown()


def _prepared(study: StudyConfig | str | Path, output: str | Path | None, overrides: Sequence[str], resume: bool):
    """What a sweep checks before Ray starts: ``(study, loaded datasets, output, stored record, growth)``.

    The study is parsed, the cheap datasets' files read and every budget checked, the output
    checked. When resuming, the study is compared with the one stored in the output (record
    and growth are None for a new sweep) and its trials keep their stored ids. Raises
    :class:`~direct_ray.results.layout.SweepRecordError` for an output that holds another
    sweep, or a study that changes the stored one other than by growing it.
    """
    study = prepare_study(study, overrides)
    loaded = load_datasets(study, [spec for spec in study.datasets if spec.kind in ("digits", "features")])
    output = resolve_output(study, output)
    layout.check_output(output)
    record = layout.existing_sweep_record(output, resume)
    if record is None:
        return study, loaded, output, None, None
    stored = prepare_study(StudyConfig.from_dict(record["study"]))
    grown = growth.grow(stored, study, record.get(growth.FIRST_ROUNDS))
    return grown.study, loaded, output, record, grown


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
    study, loaded, output, record, grown = _prepared(study, output, overrides, resume)
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
            plan = preflight.plan(study, output, started_here)
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
            progress = SweepProgress(counts_on_disk(output, trials), live=None if live_progress else False)
            experiment = record.get(TUNE_EXPERIMENT, layout.TUNE_DIR)
            if grown:
                # A grown sweep is a new Tune experiment over every trial: finished ones report
                # their last round (or continue to more rounds), begun ones continue from their
                # checkpoints in the earlier one. The record names it, for a later --resume.
                experiment = f"{layout.TUNE_DIR}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
                log.info("growing the sweep: %s", grown.describe())
                record = {**grown.record(record), TUNE_EXPERIMENT: experiment}
                layout.write_sweep_record(output, record)
            tune_dir = layout.join(output, experiment)
            if resume and not grown and tune.Tuner.can_restore(tune_dir):
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
                        trial_dirname_creator=trial_id_of,
                        trial_name_creator=trial_id_of,
                    ),
                    run_config=tune.RunConfig(
                        name=experiment,
                        storage_path=output,
                        failure_config=tune.FailureConfig(max_failures=study.max_failures),
                        # Keeping 10 checkpoints bounds the disk and keeps Tune from forcing an
                        # experiment snapshot every other round.
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=10),
                        callbacks=[progress_callback(progress), JsonLoggerCallback()],
                        verbose=0,
                    ),
                )
            # Tune's own progress lines (where it saved its state) would break the progress line.
            with progress, _quiet("ray.tune", logging.WARNING):
                results = tuner.fit()
    except BaseException:
        # After a signal, whatever stopped the run is its consequence: Interrupted, the plain
        # KeyboardInterrupt Ray's C code raises for it, or a Ray error when the signal also
        # reached Ray's own processes (a job manager signals the whole process group).
        if not signals:
            raise
        interrupted = Interrupted(signals[0])
    else:
        interrupted = None
    finally:
        # A SIGTERM usually reaches Ray's own processes too (a job manager signals the whole
        # process group): talking to them now would wait a minute for a GCS that is gone, so
        # the actors and the session are left to end with their owner, this process.
        if not (signals and signals[0] == signal.SIGTERM):
            try:
                for actor in annotators:
                    ray.kill(actor)
                if initialized_here:
                    ray.shutdown()
            except Exception:
                if not signals:
                    raise
    if interrupted is not None:
        done = sum(layout.trial_complete(output, t) for t in trials)
        raise SweepInterrupted(interrupted.signum, interrupted.exit_status, output, done, len(trials)) from None
    failed = {TrialConfig.from_dict(r.config["trial"]).trial_id: str(r.error) for r in results if r.error is not None}
    completed = [t.trial_id for t in trials if layout.trial_complete(output, t)]
    return SweepResult(output, record["sweep_id"], len(trials), completed, failed)


if __name__ == "__main__":
    from direct_ray.cli import main

    sys.exit(main())
