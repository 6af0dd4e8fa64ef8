"""Sweep benchmark: a 4-trial study through Ray Tune vs the same trials one after another.

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
* sequential: :func:`direct_ray.trial.run_trial` for each trial in turn in this process;
* with ``--concurrent``, a third arm without Tune: as many zero-CPU runner actors as the
  sweep would run trials at once, each calling ``run_trial`` for its share of the trials,
  with the sweep's shared annotator teams. Its gap to the Tune arm is what Tune's own machinery
  (trainables, reports, checkpoints, the controller) costs; its gap to the sequential arm is
  what running trials side by side costs.

Both write the same Parquet files and checkpoint every round. The arms alternate, so
machine noise hits both; the ratio is Tune's median wall time over the sequential median
(target <= 0.65 on 2 CPU cores).

Each arm also measures the machine's busy CPU time (every process, Ray's daemons
included), which splits the ratio exactly into two factors::

    Tune wall / sequential wall = (Tune CPU / sequential CPU) x (sequential cores in use / Tune cores in use)

The first is the work Tune adds, the second what running trials side by side gains. The
sequential arm already keeps more than one core busy (its actors and Ray's daemons run
beside the training task), so even a Tune arm that added no work and kept every core busy
could not go below ``sequential cores in use / --cpus``: that bound is printed as the floor.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil
import ray
import yaml

from direct_ray.benchmarks.trial import features_file
from direct_ray.config import StudyConfig, TrialConfig
from direct_ray.runtime.annotators import start_shared_team
from direct_ray.runtime.priority import coordination_actor
from direct_ray.runtime.session import start_local_ray
from direct_ray.cli import main as sweep_main
from direct_ray.runtime.team import ActorCache, annotator_team_names, team_for_trial, trials_at_once
from direct_ray.trial import TrialContext, run_trial


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


@dataclass(frozen=True)
class Timing:
    """One arm's wall time and the machine's busy CPU time (all processes) over it."""

    wall: float
    cpu: float

    @property
    def cores(self) -> float:
        """Average number of cores in use."""
        return self.cpu / self.wall


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, every core and process together.

    Busy is everything but idle, waiting for I/O and time stolen by the hypervisor; Linux
    also counts a guest VM's time in ``user``, so that is not added twice.
    """
    times = psutil.cpu_times()._asdict()
    not_busy = ("idle", "iowait", "steal", "guest", "guest_nice")
    return sum(seconds for name, seconds in times.items() if name not in not_busy)


class _Stopwatch:
    """Wall and machine-wide busy CPU time of a ``with`` block."""

    def __enter__(self) -> "_Stopwatch":
        self.wall0, self.cpu0 = time.perf_counter(), busy_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.timing = Timing(time.perf_counter() - self.wall0, busy_cpu_seconds() - self.cpu0)


def _fresh_session(cpus: int) -> None:
    start_local_ray(cpus, quiet=True)


def run_tune(study_file: Path, out: Path, cpus: int) -> Timing:
    """Time ``python -m direct_ray.sweep`` on the study, in a fresh Ray session."""
    _fresh_session(cpus)
    try:
        with _Stopwatch() as watch:
            code = sweep_main([str(study_file), "--output", str(out), "--no-report"])
    finally:
        ray.shutdown()
    if code != 0:
        raise RuntimeError("the Tune sweep failed")
    return watch.timing


def run_sequential(study: StudyConfig, out: Path, cpus: int) -> Timing:
    """Time the study's trials one after another in this process, in a fresh Ray session."""
    _fresh_session(cpus)
    try:
        with _Stopwatch() as watch:
            run_in_turn(study.trials(), out)
    finally:
        ray.shutdown()
    return watch.timing


class Ratio(NamedTuple):
    """Tune's wall time over the sequential one, and its two factors: ``ratio == work * parallelism``."""

    ratio: float
    work: float
    parallelism: float


def decompose(seq: Timing, tune: Timing) -> Ratio:
    """Split one pair of runs' ratio exactly into CPU work x parallelism (see the module doc)."""
    return Ratio(tune.wall / seq.wall, tune.cpu / seq.cpu, seq.cores / tune.cores)


def run_in_turn(trials: list[TrialConfig], out: Path, teams: list[str] | None = None) -> None:
    """Run ``trials`` one after another in this process, checkpointing under ``out/ckpt``.

    ``teams``: the shared annotator teams to use, assigned as the sweep assigns them; None:
    this process keeps annotators of its own. Like a Tune trainable, the process keeps its
    actors from one trial to the next, and ends them after the last.
    """
    cache = ActorCache()
    try:
        for trial in trials:
            team = team_for_trial(trial.trial_id, teams) if teams else None
            context = TrialContext(output=out, annotator_team=team)
            run_trial(trial, checkpoint_dir=out / "ckpt" / trial.trial_id, context=context, actor_cache=cache)
    finally:
        cache.release()


class TrialRunner:
    """Runs trials one after another in its own process (the concurrent arm's stand-in for a Tune trainable)."""

    def run(self, trials: list[dict], out: str, teams: list[str]) -> None:
        run_in_turn([TrialConfig.from_dict(t) for t in trials], Path(out), teams)


TrialRunnerActor = coordination_actor(TrialRunner)


def run_concurrent(study: StudyConfig, out: Path, cpus: int) -> Timing:
    """Time the study's trials as many at a time as the sweep would run, in runner actors without
    Tune, with the sweep's shared annotator teams, in a fresh Ray session."""
    _fresh_session(cpus)
    try:
        with _Stopwatch() as watch:
            trials = [t.to_dict() for t in study.trials()]
            slots = trials_at_once(study, len(trials), ray.cluster_resources())
            teams = annotator_team_names("benchmark", slots)
            # The annotators live as long as this list references them.
            annotators = [a for team in teams for a in start_shared_team(team, max(study.b_parallels))]
            runners = [TrialRunnerActor.remote() for _ in range(slots)]
            ray.get([runner.run.remote(trials[i::slots], str(out), teams) for i, runner in enumerate(runners)])
            del annotators
    finally:
        ray.shutdown()
    return watch.timing


def summarise(seq: list[Timing], tune: list[Timing], cpus: int, concurrent: list[Timing] = ()) -> list[str]:
    """The report's lines: each arm's runs, the ratio of medians, and the medians of its factors."""
    median = statistics.median

    def runs(timings: list[Timing]) -> str:
        return ", ".join(f"{t.wall:.1f} s ({t.cores:.2f} cores)" for t in timings)

    parts = [decompose(s, t) for s, t in zip(seq, tune)]
    without_tune = []
    if concurrent:
        own = [decompose(s, c) for s, c in zip(seq, concurrent)]
        without_tune = [
            f"  without Tune:         {runs(concurrent)}; median {median(t.wall for t in concurrent):.1f} s: ratio "
            f"{median(t.wall for t in concurrent) / median(t.wall for t in seq):.2f}, work "
            f"{median(p.work for p in own):.2f}x, parallelism {median(p.parallelism for p in own):.2f} (medians)",
        ]
    return [
        f"  sequential run_trial: {runs(seq)}; median {median(t.wall for t in seq):.1f} s",
        f"  Ray Tune sweep:       {runs(tune)}; median {median(t.wall for t in tune):.1f} s",
        f"  ratio Tune / sequential = {median(t.wall for t in tune) / median(t.wall for t in seq):.2f} "
        f"(target <= 0.65; per run {', '.join(f'{p.ratio:.2f}' for p in parts)})",
        f"  per run = CPU work x parallelism, medians: work {median(p.work for p in parts):.2f}x "
        f"(Tune CPU / sequential CPU), parallelism {median(p.parallelism for p in parts):.2f} "
        f"(sequential cores / Tune cores)",
        f"  floor (Tune adding no CPU work, all {cpus} cores busy): sequential cores / {cpus} = "
        f"{median(t.cores for t in seq) / cpus:.2f}",
        *without_tune,
    ]


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
    parser.add_argument("--concurrent", action="store_true",
                        help="also time the trials side by side without Tune (runner actors): separates Tune's own cost")
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
        tune_times, seq_times, concurrent_times = [], [], []
        for i in range(args.repeats):
            seq_times.append(run_sequential(study, tmp / f"seq-{i}", args.cpus))
            tune_times.append(run_tune(study_file, tmp / f"tune-{i}", args.cpus))
            parts = decompose(seq_times[-1], tune_times[-1])
            line = (f"repeat {i + 1}: sequential {seq_times[-1].wall:.1f} s, Tune {tune_times[-1].wall:.1f} s: ratio "
                    f"{parts.ratio:.2f} = work {parts.work:.2f} x parallelism {parts.parallelism:.2f}")
            if args.concurrent:
                concurrent_times.append(run_concurrent(study, tmp / f"concurrent-{i}", args.cpus))
                line += f"; without Tune {concurrent_times[-1].wall:.1f} s"
            print(line, flush=True)
    model = yaml.safe_dump(study.model.to_dict(), default_flow_style=True, width=200).strip()
    what = label if args.study else (f"{len(study.trials())} trials ({label}, direct/random x 2 seeds, {args.rounds} rounds "
                                     f"of {b_train}, b_parallel 5, model {model})")
    print(f"\n{what}, {args.cpus} CPUs, each arm in a fresh Ray session")
    print("\n".join(summarise(seq_times, tune_times, args.cpus, concurrent_times)))


if __name__ == "__main__":
    main()
