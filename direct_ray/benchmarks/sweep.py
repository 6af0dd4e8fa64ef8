"""Sweep benchmark (issue 4): a 4-trial study through Ray Tune vs the same trials one after another.

    python -m direct_ray.benchmarks.sweep [--cpus 2] [--rounds 10] [--repeats 2] [--features N | --study YAML]

Both arms run in one process on one Ray session with ``--cpus`` CPUs, write the same
Parquet files and checkpoint every round; the sequential arm calls
:func:`direct_ray.trial.run_trial` for each trial in turn, starting without spare actors
(as Tune's fresh trainable processes do), so each arm pays its own actor start-up. The ratio is Tune's wall time over
the sequential wall time (target <= 0.65 on 2 CPU cores). The arms alternate, so machine
noise hits both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ray
import yaml

from direct_ray.config import StudyConfig
from direct_ray.benchmarks.trial import features_file
from direct_ray.sweep import LOCAL_RAY_CONFIG
from direct_ray.sweep import main as sweep_main
from direct_ray.trial import TrialContext, release_spare_actors, run_trial


def study_dict(rounds: int, dataset: dict, b_train: int) -> dict:
    return {
        "name": "bench4",
        "rounds": rounds,
        "b_train": b_train,
        "initial_size": b_train,
        "model": {"kind": "mlp"},
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0},
        "grid": {
            "dataset": [dataset],
            "strategy": ["direct", "random"],
            "seed": [0, 1],
            "b_parallel": [5],
            "noise": [{"model": "uniform", "rate": 0.2}],
        },
    }


def run_tune(study_file: Path, tmp: Path) -> float:
    start = time.perf_counter()
    code = sweep_main([str(study_file), "--output", str(tmp / f"tune-{time.time_ns()}"), "--no-report"])
    if code != 0:
        raise RuntimeError("the Tune sweep failed")
    return time.perf_counter() - start


def run_sequential(study: StudyConfig, tmp: Path) -> float:
    """The trials one after another in this process, starting cold like Tune's fresh trainables."""
    release_spare_actors()
    out = tmp / f"seq-{time.time_ns()}"
    start = time.perf_counter()
    for trial in study.trials():
        run_trial(trial, checkpoint_dir=out / "ckpt" / trial.trial_id, context=TrialContext(output=out, verbose=False))
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--features", type=int, metavar="N",
                        help="use a synthetic N x 64 features pool (b_train 100) instead of the digits (b_train 20)")
    parser.add_argument("--study", type=Path, help="time this study YAML instead (e.g. sweeps/default.yaml)")
    args = parser.parse_args(argv)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _system_config=LOCAL_RAY_CONFIG)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            if args.features:
                path, _ = features_file(tmp, args.features)
                dataset, b_train, label = {"kind": "features", "path": str(path), "num_classes": 2}, 100, f"{args.features:,} x 64 features"
            else:
                dataset, b_train, label = {"kind": "digits", "num_classes": 2}, 20, "digits K=2"
            study_file = tmp / "study.yaml"
            study_file.write_text(yaml.safe_dump(study_dict(args.rounds, dataset, b_train)))
            if args.study:
                study_file, label = args.study.resolve(), f"study {args.study}"
            study = StudyConfig.from_yaml(study_file)
            run_sequential(study, tmp)  # warm the worker processes (torch import) for both arms
            tune_times, seq_times = [], []
            for _ in range(args.repeats):
                seq_times.append(run_sequential(study, tmp))
                tune_times.append(run_tune(study_file, tmp))
    finally:
        ray.shutdown()
    seq, tune = statistics.median(seq_times), statistics.median(tune_times)
    what = label if args.study else f"4 trials ({label}, direct/random x 2 seeds, {args.rounds} rounds of {b_train}, b_parallel 5)"
    print(f"\n{what}, {args.cpus} CPUs")
    print(f"  sequential run_trial: {', '.join(f'{t:.1f}' for t in seq_times)} s (median {seq:.1f} s)")
    print(f"  Ray Tune sweep:       {', '.join(f'{t:.1f}' for t in tune_times)} s (median {tune:.1f} s)")
    print(f"  ratio Tune / sequential = {tune / seq:.2f} (target <= 0.65)")


if __name__ == "__main__":
    main()
