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
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

DEFAULT_STUDY = Path(__file__).resolve().parent.parent / "sweeps" / "default.yaml"
TUNE_DIR = "tune"
SWEEP_FILE = "sweep.json"
METRIC_COLUMNS = ("round", "n_labeled", "balanced_accuracy", "n_minority_labels")


def _package_versions() -> dict[str, str]:
    import numpy
    import pyarrow
    import ray
    import torch

    import direct_ray

    return {
        "direct_ray": direct_ray.__version__,
        "python": platform.python_version(),
        "ray": ray.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
    }


def tune_trial(param: dict[str, Any]) -> None:
    """The Tune trainable: one trial, resumed from Tune's checkpoint when there is one."""
    from ray import tune

    from direct_ray.config import TrialConfig
    from direct_ray.trial import TrialContext, TrialState, run_trial

    config = TrialConfig.from_dict(param["trial"])
    ctx = param["context"]
    context = TrialContext(
        sweep_id=ctx["sweep_id"], output=ctx["output"], study=ctx["study"], versions=ctx["versions"], verbose=False
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


def _finished_on_disk(config, output: str) -> bool:
    """True when the trial's curve file already holds every round (its Parquet is the truth)."""
    import pyarrow.parquet as pq

    from direct_ray.results.schema import CURVES
    from direct_ray.results.write import trial_file_path

    path = trial_file_path(output, CURVES, config.dataset.name, config.strategy, config.trial_id)
    if not path.exists():
        return False
    rounds = pq.read_table(path, columns=["round"])["round"].to_pylist()
    return sorted(rounds) == list(range(config.rounds + 1))


def _progress_callback(n_trials: int):
    from ray import tune

    class Progress(tune.Callback):
        """One line per finished round and per finished trial (Tune's own tables are too verbose)."""

        def __init__(self) -> None:
            self.done = 0
            self.start = time.time()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            print(
                f"  {trial.config['trial']['strategy']:>14} {_trial_id(trial)}: round "
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


def _sweep_record(output: Path, study_raw: dict, resume: bool) -> dict:
    path = output / SWEEP_FILE
    if path.exists():
        record = json.loads(path.read_text())
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
    output.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))
    return record


def precheck_datasets(study) -> None:
    """Load the datasets that are cheap to load here (digits, features) and check the budget fits."""
    from direct_ray.data import load_dataset
    from direct_ray.trial import check_trial

    trials = study.trials()
    for spec in study.datasets:
        if spec.kind in ("digits", "features"):
            dataset = load_dataset(spec)
            check_trial(next(t for t in trials if t.dataset == spec), dataset)


def summary_table(output: Path) -> str:
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
        "  python -m direct_ray.sweep sweeps/paper_table1_cifar10_svhn.yaml --address auto   # on a cluster\n"
        "  python -m direct_ray.sweep --resume              # continue an interrupted sweep",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", nargs="?", default=str(DEFAULT_STUDY), help="study YAML (default: sweeps/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study key (dotted, value parsed as YAML), e.g. --set rounds=5; repeatable")
    parser.add_argument("--output", help="results directory (default: results/<study name>)")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --output; finished trials are not rerun")
    parser.add_argument("--address", help="Ray cluster address (e.g. 'auto' on a cluster node); default: a local Ray")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray session (default: all)")
    parser.add_argument("--no-report", action="store_true", help="do not build the analysis report at the end")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from direct_ray.config import ConfigError, StudyConfig

    try:
        study = StudyConfig.from_yaml(args.study, args.overrides)
        precheck_datasets(study)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trials = study.trials()
    output = Path(args.output or Path("results") / study.name).expanduser().resolve()
    record = _sweep_record(output, study.raw, args.resume)
    print(f"study {study.name!r}: {len(trials)} trials, {study.rounds} rounds of {study.b_train} labels; results -> {output}")

    import ray
    from ray import tune

    # Reuse a Ray session that the caller already started (tests, notebooks); else start one.
    own_session = not ray.is_initialized()
    if own_session and args.address:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    elif own_session:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        context = {
            "sweep_id": record["sweep_id"],
            "output": str(output),
            "study": study.raw,
            "versions": _package_versions(),
        }
        bundle = {"CPU": study.resources.cpus_per_trial}
        if study.resources.gpus_per_trial:
            bundle["GPU"] = study.resources.gpus_per_trial
        trainable = tune.with_resources(tune_trial, tune.PlacementGroupFactory([{}, bundle]))
        run_config = tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(output),
            failure_config=tune.FailureConfig(max_failures=study.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[_progress_callback(len(trials))],
            verbose=0,
        )
        if args.resume and tune.Tuner.can_restore(str(output / TUNE_DIR)):
            tuner = tune.Tuner.restore(
                str(output / TUNE_DIR), trainable, resume_unfinished=True, resume_errored=True
            )
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search([t.to_dict() for t in trials]), "context": context},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=study.max_concurrent_trials,
                    trial_dirname_creator=_trial_id,
                    trial_name_creator=_trial_id,
                ),
                run_config=run_config,
            )
        results = tuner.fit()
    finally:
        if own_session:
            ray.shutdown()

    errors = [r for r in results if r.error is not None]
    print(f"\nresults: {output}\n  curves:     {output / 'curves'}\n  selections: {output / 'selections'}")
    if (output / "curves").exists():
        print("\n" + summary_table(output))
    analysis_cmd = f"python -m analysis {output}"
    if not args.no_report and Path("analysis").is_dir():
        print(f"\nbuilding the report: {analysis_cmd}")
        subprocess.run([sys.executable, "-m", "analysis", str(output)], check=False)
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
