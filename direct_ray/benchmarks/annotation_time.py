"""Annotation wall time: DIRECT with synchronous and asynchronous annotators, and GALAXY.

``python -m direct_ray.benchmarks.annotation_time [--quick] [--seeds 5] [--datasets digits,features]``

Whole active-learning trials in this process (no Ray): the product's strategies, the MLP of
:func:`direct_ray.training.fit_and_score`, the annotators' noise model and the test-split
metrics, with a team of ``--b-parallel`` simulated annotators whose labels take lognormal
time (:mod:`direct_ray.annotation`; median ``--median`` seconds, ``--sigma``). Training time
is not simulated: the clock counts only the annotators' time.

For each dataset it runs DIRECT with synchronous batches, DIRECT with asynchronous
annotators (the default ``overlap``, and each of ``--overlaps``; 0: rounds that wait for
their last label) and GALAXY (one query at a time), over
the same seeds, as the runtime runs a trial (a round's model trains on the labels back by
the round's end; labels still out are hidden from the next selection), and prints

* the team's utilisation, ``busy / (B_parallel x wall)``: the summed labelling time over the
  time the whole team was paid for. ``1 / utilisation`` is the annotation wall time over
  the ideal (total work shared perfectly by the team);
* the labels each needs (labels paid for, in flight or not) to reach target balanced
  accuracies: those that close half, 80 % and 95 % of the gap between the first and the
  best point of synchronous DIRECT's seed-averaged curve (fractions of its budget would
  put every target on the plateau of a curve that saturates early, as the digits' does).
  Labels are interpolated between rounds; on the seed-averaged curves, per seed as mean
  and standard deviation, and paired by seed: the ratio of means to synchronous DIRECT
  with the standard error of the paired difference;
* the targets: asynchronous utilisation >= 0.83 (wall <= 1.2 x ideal) and at most 5 % more
  labels than synchronous DIRECT to the same balanced accuracy;
* utilisation against the round size: four rounds selected with the first model (only the
  clock is measured), ``B_train`` from 2 to 80 labels per annotator, pooled over 20 clock
  seeds. A round that waits for its last label leaves the team waiting for its slowest
  labels; with heavy-tailed latencies that wait is a few median latencies, so utilisation
  then depends on how many labels each annotator has per round. Overlapping rounds remove
  the wait but the last round's.

Datasets: the embedded digits (K = 2 unless ``--digits-classes``) and a synthetic
20,000-example features pool (scikit-learn's ``make_classification``, K = 3 with about 90 %
in the last class), written to a temporary ``.npz`` and read through
:func:`direct_ray.data.load_dataset`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from direct_ray.annotation import DEFAULT_OVERLAP, AnnotationConfig, SimulatedTeam, TeamClock
from direct_ray.config import Budget
from direct_ray.data import Dataset, DatasetSpec, load_dataset
from direct_ray.metrics import classification_metrics
from direct_ray.noise import NoiseConfig, NoiseModel
from direct_ray.pool_state import PoolState
from direct_ray.seeding import ANNOTATOR_STREAM, INITIAL_STREAM, SELECT_STREAM, TRAIN_STREAM, generator, int_seed
from direct_ray.strategies import make_strategy
from direct_ray.training import ModelConfig, fit_and_score

UTILISATION_TARGET = 0.83
LABEL_COST_TARGET = 1.05
# Target accuracies: these fractions of the way from the first to the best point of synchronous
# DIRECT's seed-averaged curve.
TARGET_FRACTIONS = (0.5, 0.8, 0.95)


@dataclass(frozen=True)
class Arm:
    """One compared setting: a strategy, an annotation mode and (async) the rounds' ``overlap``."""

    label: str
    strategy: str
    mode: str
    overlap: Optional[int] = None  # None: the default

    def annotation(self, latency: dict) -> AnnotationConfig:
        extra = {} if self.overlap is None else {"overlap": self.overlap}
        return AnnotationConfig.from_dict({"mode": self.mode, "latency": latency, **extra})


SYNC, ASYNC = "DIRECT sync", "DIRECT async"


def arms(overlaps: Sequence[int] = ()) -> tuple[Arm, ...]:
    """Synchronous DIRECT, asynchronous DIRECT (the default overlap, then each of ``overlaps``), GALAXY."""
    extra = [Arm(f"{ASYNC}, overlap {o}", "direct", "async", overlap=o) for o in overlaps if o != DEFAULT_OVERLAP]
    return (Arm(SYNC, "direct", "sync"), Arm(ASYNC, "direct", "async"), *extra, Arm("GALAXY", "galaxy", "sync"))


@dataclass
class Trial:
    """One trial's curve and clock."""

    labels: np.ndarray  # n_labeled after each round
    accuracy: np.ndarray  # balanced accuracy after each round
    busy: float
    wall: float
    b_parallel: int

    @property
    def utilisation(self) -> float:
        return self.busy / (self.b_parallel * self.wall)


def features_pool(path: Path, size: int, seed: int = 0) -> DatasetSpec:
    """Write a synthetic imbalanced features file (about 90 % in the last of 3 classes); its spec."""
    from sklearn.datasets import make_classification

    test = size // 4
    x, y = make_classification(
        n_samples=size + test, n_features=20, n_informative=8, n_redundant=4, n_classes=3,
        n_clusters_per_class=2, weights=[0.04, 0.06, 0.90], class_sep=1.0, flip_y=0.0, random_state=seed,
    )
    x = x.astype(np.float32)
    np.savez(path, x_train=x[:size], y_train=y[:size], x_test=x[size:], y_test=y[size:])
    return DatasetSpec(kind="features", num_classes=3, path=str(path))


def label_fn(truth: np.ndarray, noise: NoiseConfig, num_classes: int, seed: int):
    """What the annotators answer: the runtime's keyed noise draws (seed, annotator, query key)."""
    models: dict[int, NoiseModel] = {}

    def labels(indices: np.ndarray, annotators: np.ndarray, keys: list) -> np.ndarray:
        out = np.empty(indices.size, dtype=np.int64)
        for j, (index, who, key) in enumerate(zip(indices.tolist(), annotators.tolist(), keys)):
            model = models.setdefault(who, NoiseModel(noise, num_classes, annotator=who, seed=seed))
            rng = np.random.default_rng([seed, ANNOTATOR_STREAM, who, *key])
            out[j] = model.observe(truth[index : index + 1], np.array([index]), rng)[0]
        return out

    return labels


def take(pool: PoolState, team: SimulatedTeam, truth: np.ndarray, round_: int, slots: int, more_rounds: bool) -> None:
    """Record the team's new answers in ``pool`` as the runtime does, and end the round (:meth:`TeamClock.close_round`)."""
    log, start = team.log, pool.n_labeled
    bought = np.asarray(log.indices[start:], dtype=np.int64)
    pool.record(round_, bought, log.labels[start:], truth[bought], log.annotators[start:], log.answered_at[start:])
    team.clock.close_round(slots, team.clock.config.round_overlap if more_rounds else 0)


def run_trial(data: Dataset, arm: Arm, budget: Budget, b_parallel: int, latency: dict, noise: NoiseConfig,
              seed: int, model: ModelConfig) -> Trial:
    """One trial: the initial random batch, then ``rounds`` of select -> train -> score, as the runtime runs it."""
    clock = TeamClock(arm.annotation(latency), b_parallel, seed)
    team = SimulatedTeam(clock, label_fn(data.y_train, noise, data.num_classes, seed), 0)
    strategy = make_strategy(arm.strategy, b_parallel=b_parallel)
    slots = strategy.effective_b_parallel
    pool = PoolState.empty(data.y_train.size, data.num_classes)
    team.queue(generator(seed, INITIAL_STREAM).choice(data.y_train.size, size=budget.initial_size, replace=False), slots)
    take(pool, team, data.y_train, 0, slots, more_rounds=False)  # the first model waits for the whole initial batch
    labels, accuracy = [], []
    for round_ in range(budget.rounds + 1):
        ready, observed = pool.training_set(clock.now)
        fit = fit_and_score(model, data.x_train, ready, observed, data.x_test, data.num_classes,
                            int_seed(seed, TRAIN_STREAM, round_), "cpu", with_embeddings=False)
        labels.append(pool.n_labeled)  # labels paid for, in flight or not
        accuracy.append(classification_metrics(data.y_test, fit.test_pred, data.num_classes)["balanced_accuracy"])
        if round_ == budget.rounds:
            break
        team.start_round(round_ + 1)
        strategy.select(fit.probs, pool.observed, budget.b_train, team, generator(seed, SELECT_STREAM, round_ + 1),
                        pending=pool.pending(clock.now))
        take(pool, team, data.y_train, round_ + 1, slots, more_rounds=round_ + 1 < budget.rounds)
    return Trial(np.array(labels), np.array(accuracy), clock.busy, clock.now, b_parallel)


def utilisation_by_round_size(data: Dataset, budget: Budget, b_parallel: int, latency: dict, model: ModelConfig,
                              settings: Sequence[Arm], out, clock_seeds: int = 20, rounds: int = 4) -> None:
    """Utilisation of ``rounds`` rounds for several round sizes, pooled over clock seeds.

    Only the clock is measured: every round selects with the first model (no retraining),
    so the queries' placement is realistic and the run is cheap.
    """
    n = data.y_train.size
    initial = generator(0, INITIAL_STREAM).choice(n, size=budget.initial_size, replace=False)
    fit = fit_and_score(model, data.x_train, initial, data.y_train[initial], data.x_test, data.num_classes,
                        int_seed(0, TRAIN_STREAM, 0), "cpu", with_embeddings=False)
    sizes = [s for s in (2, 5, 10, 20, 40, 80) if rounds * s * b_parallel <= n - budget.initial_size]
    print(f"\nUtilisation of {rounds} rounds against the round size (labels per annotator per round = "
          f"B_train / B_parallel, B_train in brackets; {clock_seeds} clock seeds pooled):\n", file=out)
    print("| setting | " + " | ".join(f"{s} ({s * b_parallel})" for s in sizes) + " |", file=out)
    print("|" + " --- |" * (len(sizes) + 1), file=out)
    for arm in settings:
        cells = []
        for size in sizes:
            busy = wall = 0.0
            for seed in range(clock_seeds):
                clock = TeamClock(arm.annotation(latency), b_parallel, seed)
                team = SimulatedTeam(clock, lambda idx, who, keys: data.y_train[idx], 1)
                strategy = make_strategy(arm.strategy, b_parallel=b_parallel)
                pool = PoolState.empty(n, data.num_classes)
                pool.record(0, initial, data.y_train[initial], data.y_train[initial], np.full(initial.size, -1))
                for round_ in range(1, rounds + 1):
                    team.start_round(round_)
                    strategy.select(fit.probs, pool.observed, size * b_parallel, team,
                                    generator(seed, SELECT_STREAM, round_), pending=pool.pending(clock.now))
                    take(pool, team, data.y_train, round_, strategy.effective_b_parallel, more_rounds=round_ < rounds)
                busy, wall = busy + clock.busy, wall + b_parallel * clock.now
            cells.append(f"{busy / wall:.2f}")
        print(f"| {arm.label} | " + " | ".join(cells) + " |", file=out)


def labels_to_reach(labels: np.ndarray, accuracy: np.ndarray, target: float) -> float:
    """Labels at which a curve first reaches ``target`` (linear between rounds); NaN if never."""
    above = np.flatnonzero(accuracy >= target)
    if not above.size:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(labels[0])
    a0, a1 = accuracy[i - 1], accuracy[i]
    return float(labels[i - 1] + (labels[i] - labels[i - 1]) * (target - a0) / (a1 - a0))


def mean_sd(values: Sequence[float]) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "not reached"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}" if max(values) < 10 else f"{statistics.fmean(values):.0f} ± {sd:.0f}"


def report(name: str, trials: dict[str, list[Trial]], budget: Budget, b_parallel: int, out) -> dict[str, float]:
    """Print one dataset's tables; return the headline figures (async utilisation, label ratios)."""
    print(f"\n## {name}: B_parallel {b_parallel}, {budget.initial_size} initial + {budget.rounds} x {budget.b_train} labels, "
          f"{len(next(iter(trials.values())))} seeds\n", file=out)
    print("| setting | utilisation (per seed) | utilisation (pooled) | wall / ideal | annotation wall (h) | final balanced accuracy |", file=out)
    print("| --- | --- | --- | --- | --- | --- |", file=out)
    pooled: dict[str, float] = {}
    for label, runs in trials.items():
        pooled[label] = sum(t.busy for t in runs) / sum(t.b_parallel * t.wall for t in runs)
        print(f"| {label} | {mean_sd([t.utilisation for t in runs])} | {pooled[label]:.3f} | {1 / pooled[label]:.2f} | "
              f"{mean_sd([t.wall / 3600 for t in runs])} | {mean_sd([t.accuracy[-1] for t in runs])} |", file=out)
    sync = trials[SYNC]
    labels = sync[0].labels
    mean_curves = {label: np.mean([t.accuracy for t in runs], axis=0) for label, runs in trials.items()}
    first, best = float(mean_curves[SYNC][0]), float(mean_curves[SYNC].max())
    targets = [first + f * (best - first) for f in TARGET_FRACTIONS]
    asyncs = [label for label in trials if label.startswith(ASYNC)]
    print("\nLabels to reach the balanced accuracies that close 50 %, 80 % and 95 % of the gap between the first and "
          f"the best point of synchronous DIRECT's averaged curve ({first:.4f} to {best:.4f}; seed-averaged curves; "
          "per seed: mean ± sd; ratios on the averaged curves):\n", file=out)
    print("| target | " + " | ".join(f"{label} (averaged curve) | {label} (per seed)" for label in trials)
          + "".join(f" | {label} / sync" for label in asyncs) + " |", file=out)
    print("|" + " --- |" * (2 * len(trials) + len(asyncs) + 1), file=out)
    ratios: dict[str, list[float]] = {label: [] for label in asyncs}
    for target in targets:
        cells = []
        needed = {}
        for label, runs in trials.items():
            needed[label] = labels_to_reach(labels, mean_curves[label], target)
            cells.append(f"{needed[label]:.0f}" if not np.isnan(needed[label]) else "not reached")
            cells.append(mean_sd([labels_to_reach(t.labels, t.accuracy, target) for t in runs]))
        for label in asyncs:
            ratios[label].append(needed[label] / needed[SYNC])
        print(f"| {target:.4f} | " + " | ".join(cells) + "".join(f" | {ratios[label][-1]:.3f}" for label in asyncs)
              + " |", file=out)
    print("\nThe same, paired by seed (mean labels to the target over synchronous DIRECT's, on the seeds where "
          "both reach it, ± the standard error of the paired difference):\n", file=out)
    print("| target | " + " | ".join(f"{label} / sync" for label in asyncs) + " |", file=out)
    print("|" + " --- |" * (len(asyncs) + 1), file=out)
    paired: dict[str, list[float]] = {label: [] for label in asyncs}
    for target in targets:
        cells = []
        for label in asyncs:
            mean, se, n = paired_ratio(trials[label], sync, target)
            paired[label].append(mean)
            cells.append(f"{mean:.3f} ± {se:.3f} ({n} seeds)")
        print(f"| {target:.4f} | " + " | ".join(cells) + " |", file=out)
    print("\n| setting | utilisation | labels / sync, averaged curves | labels / sync, paired by seed |", file=out)
    print("| --- | --- | --- | --- |", file=out)
    for label in asyncs:
        print(f"| {label} | {pooled[label]:.3f} | {np.mean(ratios[label]):.3f} | {np.nanmean(paired[label]):.3f} |",
              file=out)
    headline = {"utilisation": pooled[ASYNC], "label_ratio": float(np.mean(ratios[ASYNC])),
                "paired_label_ratio": float(np.nanmean(paired[ASYNC]))}
    util_ok = headline["utilisation"] >= UTILISATION_TARGET
    label_ok = headline["label_ratio"] <= LABEL_COST_TARGET
    print(f"\nasync utilisation {headline['utilisation']:.3f} (target >= {UTILISATION_TARGET}): "
          f"{'met' if util_ok else 'MISSED'}; sync {pooled[SYNC]:.3f}, GALAXY {pooled['GALAXY']:.3f}", file=out)
    print(f"async labels / sync labels to the same accuracy {headline['label_ratio']:.3f} on the averaged curves, "
          f"{headline['paired_label_ratio']:.3f} paired by seed (mean over the targets; target <= {LABEL_COST_TARGET}): "
          f"{'met' if label_ok else 'MISSED'} on the averaged curves", file=out)
    return headline


def paired_ratio(runs: Sequence[Trial], baseline: Sequence[Trial], target: float) -> tuple[float, float, int]:
    """Labels-to-``target`` of ``runs`` over ``baseline`` (same seed order), paired by seed.

    The ratio of the two means over the seeds where both reach the target, with the standard
    error of the mean paired difference over the baseline mean (a mean of per-seed ratios
    would be biased upwards by noisy denominators). Returns (ratio, standard error, seeds).
    """
    pairs = [(labels_to_reach(t.labels, t.accuracy, target), labels_to_reach(b.labels, b.accuracy, target))
             for t, b in zip(runs, baseline)]
    pairs = [(x, y) for x, y in pairs if np.isfinite(x) and np.isfinite(y)]
    if not pairs:
        return float("nan"), float("nan"), 0
    base = statistics.fmean(y for _, y in pairs)
    differences = [x - y for x, y in pairs]
    se = statistics.stdev(differences) / len(pairs) ** 0.5 / base if len(pairs) > 1 else float("nan")
    return 1.0 + statistics.fmean(differences) / base, se, len(pairs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m direct_ray.benchmarks.annotation_time",
        description="Annotation wall time and label cost of DIRECT with synchronous and asynchronous annotators, and GALAXY.",
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds and fewer rounds (a smoke run)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per setting (default 5)")
    parser.add_argument("--datasets", default="digits,features", help="comma-separated: digits, features (default both)")
    parser.add_argument("--b-parallel", type=int, default=10, help="annotators in the team (default 10)")
    parser.add_argument("--median", type=float, default=30.0, help="median seconds per label (default 30)")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma of the latencies (default 1.0)")
    parser.add_argument("--noise", type=float, default=0.0, help="uniform label-noise rate (default 0)")
    parser.add_argument("--persistent", action="store_true",
                        help="noise keyed by the example, not the annotator: both modes then see the same wrong labels")
    parser.add_argument("--features-size", type=int, default=20_000, help="pool size of the features dataset")
    parser.add_argument("--digits-classes", type=int, default=2, help="K of the digits dataset (default 2)")
    parser.add_argument("--save", type=Path, help="also write every trial's curve and clock to this JSON file")
    parser.add_argument("--overlaps", default="0",
                        help=f"comma-separated overlap settings compared with the default ({DEFAULT_OVERLAP}; "
                        "b_parallel - 1 or more: no limit); default 0")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    seeds = range(2 if args.quick else args.seeds)
    latency = {"model": "lognormal", "median": args.median, "sigma": args.sigma}
    noise = NoiseConfig(model="uniform", rate=args.noise, persistent=args.persistent) if args.noise else NoiseConfig()
    model = ModelConfig(kind="mlp")
    settings = arms([int(o) for o in args.overlaps.split(",") if o.strip()])
    budgets = {"digits": Budget(rounds=4 if args.quick else 8, b_train=100, initial_size=20),
               "features": Budget(rounds=4 if args.quick else 10, b_train=400, initial_size=100)}
    print(f"# Annotation time (lognormal median {args.median:g} s, sigma {args.sigma:g}; noise {args.noise:g}"
          f"{', persistent' if args.persistent and args.noise else ''}; DIRECT async: overlap {DEFAULT_OVERLAP})")
    saved: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            if name == "digits":
                spec = DatasetSpec(kind="digits", num_classes=args.digits_classes)
            elif name == "features":
                spec = features_pool(Path(tmp) / "pool.npz", args.features_size)
            else:
                parser.error(f"unknown dataset {name!r}; choose digits or features")
            data = load_dataset(spec)
            start = time.perf_counter()
            trials = {arm.label: [run_trial(data, arm, budgets[name], args.b_parallel, latency, noise, seed, model)
                                  for seed in seeds] for arm in settings}
            report(f"{name} ({data.y_train.size} pool examples, K = {data.num_classes})", trials, budgets[name],
                   args.b_parallel, sys.stdout)
            utilisation_by_round_size(data, budgets[name], args.b_parallel, latency, model, settings, sys.stdout,
                                      5 if args.quick else 20)
            print(f"\n({time.perf_counter() - start:.0f} s)")
            saved[name] = {label: [asdict(t) for t in runs] for label, runs in trials.items()}
    if args.save is not None:
        args.save.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "trials": saved},
                                        default=lambda a: a.tolist()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
