"""``python -m direct_ray.sweep``: run a study (every grid combination is one trial) on Ray Tune.

Each trial runs :func:`direct_ray.trial.run_trial` inside a Tune function trainable that
reserves ``resources.cpus_per_trial`` / ``gpus_per_trial`` in a placement group: the trial
driver itself takes no resources (an empty head bundle), the training task runs in the
reserved bundle, and the pool, selection and annotator actors take zero CPUs. So nested
work always fits inside what the trial reserved, and a full cluster cannot deadlock.

Every round is checkpointed through ``tune.report(..., checkpoint=...)`` (a retried trial
resumes at its last round) and rewrites the trial's Parquet files atomically under
``--output``. ``--resume`` restores the Tune experiment: finished trials are not rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "sweeps" / "default.yaml"
TUNE_DIR = "tune"
SWEEP_FILE = "sweep.json"
METRIC_COLUMNS = ("round", "n_labeled", "balanced_accuracy", "n_minority_labels")
# Concurrent trials one shared annotator team serves. An annotator answers one query at a
# time (~2 ms of CPU each here), so a sweep that runs many trials at once gets several
# teams, each trial using one; MAX_TEAMS bounds the processes a huge estimate could start.
TRIALS_PER_TEAM = 8
MAX_TEAMS = 16


def _package_versions() -> dict[str, str]:
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


def tune_trial(param: dict[str, Any]) -> None:
    """The Tune trainable: one trial, resumed from Tune's checkpoint when there is one."""
    from ray import tune

    from direct_ray.config import TrialConfig
    from direct_ray.runtime.priority import yield_to_training
    from direct_ray.trial import TrialContext, TrialState, run_trial

    # This process only coordinates (its work waits on, or overlaps with, the trial's
    # training task): it must not take a core from training (see runtime.priority).
    yield_to_training()
    config = TrialConfig.from_dict(param["trial"])
    ctx = param["context"]
    context = TrialContext(
        sweep_id=ctx["sweep_id"],
        output=ctx["output"],
        study=ctx["study"],
        versions=ctx["versions"],
        verbose=False,
        annotator_team=team_for_trial(config.trial_id, ctx["annotator_teams"]),
    )
    if _finished_on_disk(config, ctx["output"]):
        return  # finished before the driver was interrupted: never rerun it
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = TrialState.load(directory)

    def report(state: TrialState, row: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = state.save(Path(tmp) / "state")
            metrics = {k: row[k] for k in METRIC_COLUMNS}
            metrics["rounds_total"] = config.rounds
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(path)))

    run_trial(config, context=context, resume=resume, on_round=report)


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


def _finished_on_disk(config, output: str) -> bool:
    """True when the trial's curve file already holds every round (its Parquet is the truth)."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from direct_ray.results.schema import CURVES
    from direct_ray.results.write import filesystem, trial_file_path

    fs, path = filesystem(trial_file_path(output, CURVES, config.dataset.name, str(config.strategy), config.trial_id))
    if fs.get_file_info(path).type != pafs.FileType.File:
        return False
    rounds = pq.read_table(path, columns=["round"], filesystem=fs)["round"].to_pylist()
    return sorted(rounds) == list(range(config.rounds + 1))


def _progress_callback(n_trials: int):
    from ray import tune

    from direct_ray.config import TrialConfig

    class Progress(tune.Callback):
        """One line per finished round and per finished trial (Tune's own tables are too verbose)."""

        def __init__(self) -> None:
            self.done = 0
            self.start = time.time()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            print(
                f"  {str(TrialConfig.from_dict(trial.config['trial']).strategy):>14} {_trial_id(trial)}: round "
                f"{result['round']}/{result['rounds_total']} n_labeled={result['n_labeled']} "
                f"balanced_accuracy={result['balanced_accuracy']:.3f}",
                flush=True,
            )

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            print(f"[{self.done}/{n_trials} trials done, {time.time() - self.start:.0f}s] {_trial_id(trial)}", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            print(f"[trial failed] {_trial_id(trial)} (Tune retries it from its last checkpoint if allowed)", flush=True)

    return Progress()


def _trial_id(trial) -> str:
    from direct_ray.config import TrialConfig

    return TrialConfig.from_dict(trial.config["trial"]).trial_id


def _join(output: str, name: str) -> str:
    return f"{output.rstrip('/')}/{name}"


def _sweep_record(output: str, study_raw: dict, resume: bool) -> dict:
    """Read (``--resume``) or create ``sweep.json``: the sweep id and the study as first run."""
    from direct_ray.results.write import filesystem

    fs, path = filesystem(_join(output, SWEEP_FILE))
    if fs.get_file_info(path).size is not None:
        with fs.open_input_stream(path) as f:
            record = json.loads(f.read())
        if not resume:
            raise SystemExit(
                f"error: {output} already holds a sweep ({record['sweep_id']}). "
                "Pass --resume to continue it, or choose another --output."
            )
        return record
    if resume:
        raise SystemExit(f"error: --resume given but {output} holds no sweep to resume")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    record = {"sweep_id": f"{study_raw['name']}-{stamp}", "study": study_raw}
    _write_record(output, record)
    return record


def _write_record(output: str, record: dict) -> None:
    from direct_ray.results.write import filesystem

    fs, path = filesystem(_join(output, SWEEP_FILE))
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(record, indent=2, default=str).encode())


def absolute_paths(study):
    """Make features paths absolute: trials run in other working directories (and on other nodes)."""
    from dataclasses import replace

    datasets = tuple(
        replace(d, path=str(Path(d.path).expanduser().resolve())) if d.path else d for d in study.datasets
    )
    return replace(study, datasets=datasets)


def precheck_datasets(study) -> None:
    """Load the datasets that are cheap to load here (digits, features) and check the budget fits."""
    from direct_ray.data import load_dataset
    from direct_ray.trial import check_trial

    trials = study.trials()
    for spec in study.datasets:
        if spec.kind in ("digits", "features"):
            dataset = load_dataset(spec)
            check_trial(next(t for t in trials if t.dataset == spec), dataset)


def summary_table(output: str) -> str:
    """Final balanced accuracy and minority labels per strategy (mean over trials), as text."""
    import pyarrow.compute as pc

    from direct_ray.results.read import read_table

    table = read_table(output, "curves")
    last = pc.max(table["round"]).as_py()
    final = table.filter(pc.equal(table["round"], last)).to_pylist()
    by_strategy: dict[str, list[dict]] = {}
    for row in final:
        by_strategy.setdefault(row["strategy"], []).append(row)
    lines = [f"{'strategy':>14}  {'trials':>6}  {'final balanced acc':>18}  {'minority labels':>15}  (n_labeled={final[0]['n_labeled']})"]
    for strategy, rows in sorted(by_strategy.items(), key=lambda kv: -sum(r["balanced_accuracy"] for r in kv[1]) / len(kv[1])):
        acc = sum(r["balanced_accuracy"] for r in rows) / len(rows)
        minority = sum(r["n_minority_labels"] for r in rows) / len(rows)
        lines.append(f"{strategy:>14}  {len(rows):>6}  {acc:>18.3f}  {minority:>15.1f}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m direct_ray.sweep",
        description="Run an active-learning study (every grid combination is one trial) on Ray Tune; "
        "learning curves and selections are written as Parquet.",
        epilog="Examples:\n"
        "  python -m direct_ray.sweep                       # the embedded default study\n"
        "  python -m direct_ray.sweep sweeps/noise_robustness.yaml --set rounds=5\n"
        "  python -m direct_ray.sweep --set 'grid.seed=[0,1,2]' --output results/more-seeds\n"
        "  python -m direct_ray.sweep sweeps/paper_table1.yaml --address auto   # on a cluster\n"
        "  python -m direct_ray.sweep --resume              # continue an interrupted sweep",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", nargs="?", default=str(DEFAULT_STUDY), help="study YAML (default: sweeps/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study key (dotted, value parsed as YAML), e.g. --set rounds=5; repeatable")
    parser.add_argument("--output", help="results directory or URI, e.g. s3://bucket/prefix on a cluster "
                        "(default: results/<study name>); Tune's checkpoints are kept there too")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --output; finished trials are not rerun")
    parser.add_argument("--address", help="Ray cluster address (e.g. 'auto' on a cluster node); default: a local Ray")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray session (default: all)")
    parser.add_argument("--no-report", action="store_true", help="do not build the analysis report at the end")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from direct_ray.config import ConfigError, StudyConfig

    try:
        study = absolute_paths(StudyConfig.from_yaml(args.study, args.overrides))
        precheck_datasets(study)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trials = study.trials()
    from direct_ray.results.write import is_uri

    output = args.output or str(Path("results") / study.name)
    if not is_uri(output):
        output = str(Path(output).expanduser().resolve())
    record = _sweep_record(output, study.raw, args.resume)
    print(f"study {study.name!r}: {len(trials)} trials, {study.rounds} rounds of {study.b_train} labels; results -> {output}")

    # Tune warns on every forced snapshot; with short rounds that is noise, not news.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's own per-trial CSV and TensorBoard logs repeat what the Parquet curves hold and
    # cost the driver seconds (a 4-trial toy sweep: 5.8 s with all three, 3.3 s without); only
    # the JSON log is kept (below): Tune's result grid reads it, and warns for every trial
    # without one.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    # Reuse a Ray session that the caller already started (tests, notebooks); else start one.
    own_session = not ray.is_initialized()
    if own_session and args.address:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    elif own_session:
        from direct_ray.runtime.session import start_local_ray

        start_local_ray(args.num_cpus)
    from direct_ray.runtime.annotators import start_shared_team

    annotators: list = []
    try:
        # Annotators keep nothing a trial could lose, so the sweep starts shared teams of
        # max(b_parallel) (one per TRIALS_PER_TEAM concurrent trials) and a concurrent trial
        # starts two actor processes, not b_parallel + 2. The actors are this process's, so
        # they end with it.
        # The team names are stored with the sweep: a resumed sweep (whose trials get the
        # parameters stored at its first run) starts the same teams again.
        if "annotator_teams" not in record:
            concurrent = trials_at_once(study, len(trials), ray.cluster_resources())
            record["annotator_teams"] = annotator_team_names(record["sweep_id"], concurrent)
            _write_record(output, record)
        for name in record["annotator_teams"]:
            annotators += start_shared_team(name, max(study.b_parallels))
        context = {
            "sweep_id": record["sweep_id"],
            "output": output,
            "study": study.raw,
            "versions": _package_versions(),
            "annotator_teams": record["annotator_teams"],
        }
        bundle = {"CPU": study.resources.cpus_per_trial}
        if study.resources.gpus_per_trial:
            bundle["GPU"] = study.resources.gpus_per_trial
        trainable = tune.with_resources(tune_trial, tune.PlacementGroupFactory([{}, bundle]))
        run_config = tune.RunConfig(
            name=TUNE_DIR,
            storage_path=output,
            failure_config=tune.FailureConfig(max_failures=study.max_failures),
            # Each trial checkpoints every round; keeping 10 bounds the disk use and keeps Tune
            # from forcing an experiment snapshot every other round (which it does once a
            # trial has saved num_to_keep checkpoints since the last snapshot).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=10),
            callbacks=[_progress_callback(len(trials)), JsonLoggerCallback()],
            verbose=0,
        )
        if args.resume and tune.Tuner.can_restore(_join(output, TUNE_DIR)):
            tuner = tune.Tuner.restore(
                _join(output, TUNE_DIR), trainable, resume_unfinished=True, resume_errored=True
            )
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
                run_config=run_config,
            )
        results = tuner.fit()
    finally:
        for actor in annotators:
            ray.kill(actor)
        if own_session:
            ray.shutdown()

    errors = [r for r in results if r.error is not None]
    print(f"\nresults: {output}\n  curves:     {_join(output, 'curves')}\n  selections: {_join(output, 'selections')}")
    if is_uri(output):
        print(f"\ncopy the results locally (e.g. aws s3 sync {output} results/{study.name}) and analyse with:"
              f"\n  python -m analysis results/{study.name}")
    elif Path(output, "curves").exists():
        print("\n" + summary_table(output))
        analysis_cmd = f"python -m analysis {output}"
        if not args.no_report and Path("analysis", "__main__.py").is_file():
            print(f"\nbuilding the report: {analysis_cmd}", flush=True)
            subprocess.run([sys.executable, "-m", "analysis", output], check=False)
        else:
            print(f"\nanalyse with (from the repository root): {analysis_cmd}")
    if errors:
        print(f"\n{len(errors)} trial(s) failed:", file=sys.stderr)
        for r in errors:
            print(f"  {r.path}: {r.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
