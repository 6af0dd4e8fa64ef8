"""Sweep benchmark (issue 4): a 4-trial study through Ray Tune vs the same trials one after another.

    python -m direct_ray.benchmarks.sweep [--cpus 2] [--rounds 10] [--repeats 2]
        [--features N] [--model '{kind: mlp, hidden: 1024, epochs: 300}'] [--study YAML]

The study is 4 trials (direct and random x 2 seeds, b_parallel 5, 20% uniform noise) on
the digits (b_train 20) or, with ``--features N``, on a synthetic N x 64 features pool
(b_train 100); ``--model`` sets the classifier (a YAML mapping, as in a study), so the
rounds can be made as heavy as real training makes them; ``--study`` times any study YAML.

Each arm runs in a fresh Ray session of ``--cpus`` CPUs, timed from the moment the session
is up, so each pays its own start-up (actor processes, the training worker's torch
import), as a user running either would:

* Tune: ``python -m direct_ray.sweep`` on the study (Tune runs as many trials at once as the
  CPUs allow);
* sequential: :func:`direct_ray.trial.run_trial` for each trial in turn in this process.

Both write the same Parquet files and checkpoint every round. The arms alternate, so
machine noise hits both; the ratio is Tune's median wall time over the sequential median
(target <= 0.65 on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ray
import yaml

from direct_ray.benchmarks.trial import features_file
from direct_ray.config import StudyConfig
from direct_ray.runtime.session import start_local_ray
from direct_ray.sweep import main as sweep_main
from direct_ray.trial import TrialContext, release_spare_actors, run_trial


def study_dict(rounds: int, dataset: dict, b_train: int, model: dict | None = None) -> dict:
    return {
        "name": "bench4",
        "rounds": rounds,
        "b_train": b_train,
        "initial_size": b_train,
        "model": model or {"kind": "mlp"},
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0},
        "grid": {
            "dataset": [dataset],
            "strategy": ["direct", "random"],
            "seed": [0, 1],
            "b_parallel": [5],
            "noise": [{"model": "uniform", "rate": 0.2}],
        },
    }


def _fresh_session(cpus: int) -> None:
    start_local_ray(cpus, quiet=True)


def run_tune(study_file: Path, out: Path, cpus: int) -> float:
    """Wall time of ``python -m direct_ray.sweep`` on the study, in a fresh Ray session."""
    _fresh_session(cpus)
    try:
        start = time.perf_counter()
        code = sweep_main([str(study_file), "--output", str(out), "--no-report"])
        elapsed = time.perf_counter() - start
    finally:
        ray.shutdown()
    if code != 0:
        raise RuntimeError("the Tune sweep failed")
    return elapsed


def run_sequential(study: StudyConfig, out: Path, cpus: int) -> float:
    """Wall time of the study's trials one after another in this process, in a fresh Ray session."""
    _fresh_session(cpus)
    try:
        start = time.perf_counter()
        for trial in study.trials():
            run_trial(trial, checkpoint_dir=out / "ckpt" / trial.trial_id, context=TrialContext(output=out, verbose=False))
        elapsed = time.perf_counter() - start
    finally:
        release_spare_actors()  # this process's actor team belongs to the session that ends here
        ray.shutdown()
    return elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--features", type=int, metavar="N",
                        help="use a synthetic N x 64 features pool (b_train 100) instead of the digits (b_train 20)")
    parser.add_argument("--model", type=yaml.safe_load, metavar="YAML",
                        help="the study's model mapping, e.g. '{kind: mlp, hidden: 1024, epochs: 300}' (default: {kind: mlp})")
    parser.add_argument("--study", type=Path, help="time this study YAML instead (e.g. sweeps/default.yaml)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.features:
            path, _ = features_file(tmp, args.features)
            dataset, b_train, label = {"kind": "features", "path": str(path), "num_classes": 2}, 100, f"{args.features:,} x 64 features"
        else:
            dataset, b_train, label = {"kind": "digits", "num_classes": 2}, 20, "digits K=2"
        study_file = tmp / "study.yaml"
        study_file.write_text(yaml.safe_dump(study_dict(args.rounds, dataset, b_train, args.model)))
        if args.study:
            study_file, label = args.study.resolve(), f"study {args.study}"
        study = StudyConfig.from_yaml(study_file)
        # Untimed: loads the libraries into the page cache, so the first timed arm is not penalised.
        run_sequential(StudyConfig.from_yaml(study_file, ["rounds=1"]), tmp / "warm-up", args.cpus)
        tune_times, seq_times = [], []
        for i in range(args.repeats):
            seq_times.append(run_sequential(study, tmp / f"seq-{i}", args.cpus))
            tune_times.append(run_tune(study_file, tmp / f"tune-{i}", args.cpus))
            print(f"repeat {i + 1}: sequential {seq_times[-1]:.1f} s, Tune {tune_times[-1]:.1f} s", flush=True)
    seq, tune = statistics.median(seq_times), statistics.median(tune_times)
    model = yaml.safe_dump(study.model.to_dict(), default_flow_style=True, width=200).strip()
    what = label if args.study else (f"{len(study.trials())} trials ({label}, direct/random x 2 seeds, {args.rounds} rounds "
                                     f"of {b_train}, b_parallel 5, model {model})")
    print(f"\n{what}, {args.cpus} CPUs, each arm in a fresh Ray session")
    print(f"  sequential run_trial: {', '.join(f'{t:.1f}' for t in seq_times)} s (median {seq:.1f} s)")
    print(f"  Ray Tune sweep:       {', '.join(f'{t:.1f}' for t in tune_times)} s (median {tune:.1f} s)")
    print(f"  ratio Tune / sequential = {tune / seq:.2f} (target <= 0.65)")


if __name__ == "__main__":
    main()
