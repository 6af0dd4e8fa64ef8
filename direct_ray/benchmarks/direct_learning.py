"""Learning studies for DIRECT's variants, in-process and without Ray: label efficiency.

    python -m direct_ray.benchmarks.direct_learning --dataset digits --k 2,3 --noise 0,0.2 \\
        --b-parallel 1,5,10 --seeds 10 --initial 20 --b-train 20 --rounds 10

    python -m direct_ray.benchmarks.direct_learning --make-features /tmp/features.npz
    python -m direct_ray.benchmarks.direct_learning --dataset features --path /tmp/features.npz ...

Each trial is the product's active-learning loop run inline: ``--initial`` random examples,
then ``--rounds`` rounds of ``--b-train`` labels; every round trains the MLP from scratch
(:func:`direct_ray.training.fit_and_score` on the CPU), scores the clean test split
(:func:`direct_ray.metrics.classification_metrics`) and lets the strategy buy the next
batch from an annotator with persistent uniform noise (:class:`direct_ray.noise.NoiseModel`:
an example always comes back with the same label, so every strategy faces the same
mislabeled data). Streams follow :mod:`direct_ray.seeding`, so for one seed every strategy
starts from the same examples, the same noise and the same first model.

Reported per setting (dataset, K, noise, B_parallel) and strategy, over seeds:

* ``AUC``: mean balanced accuracy over the ``rounds + 1`` evaluations (the area under the
  learning curve divided by its length), mean ± standard error;
* ``labels to target``: labels bought until balanced accuracy first reaches the target
  (``--target`` times the best final balanced accuracy of any strategy in the setting,
  averaged over seeds); a trial that never reaches it counts as ``total + b_train``;
* ``Δ AUC vs <reference>``: the paired difference to ``--reference`` (same seeds), ± SE.

Strategies whose purchases do not depend on ``B_parallel`` (everything except DIRECT) run
once per setting and are shown in every ``B_parallel`` row. Run with one torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from direct_ray.benchmarks.direct_variants import VARIANTS as PLANTED_VARIANTS
from direct_ray.data import load_dataset
from direct_ray.data.spec import Dataset, DatasetSpec
from direct_ray.metrics import classification_metrics
from direct_ray.noise import NoiseConfig, NoiseModel
from direct_ray.seeding import INITIAL_STREAM, SELECT_STREAM, TRAIN_STREAM, generator, int_seed
from direct_ray.strategies import STRATEGY_NAMES, make_strategy
from direct_ray.training import ModelConfig, fit_and_score

# The planted benchmark's DIRECT variants plus every registered strategy, by name.
STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: spec for name, spec in PLANTED_VARIANTS.items() if spec[0] != "random"},
    **{name: (name, {}) for name in STRATEGY_NAMES if name not in ("direct", "direct_paper")},
}


@dataclass(frozen=True)
class Setting:
    """One study setting: the dataset's name, its number of classes and the noise rate."""

    dataset: str
    k: int
    noise: float


def make_features_file(path: Path, n: int = 25_000, dim: int = 64, seed: int = 0) -> None:
    """A synthetic features pool: ``make_classification`` with 3 classes of 5 %, 5 % and 90 %.

    20,000 training and 5,000 test rows of ``dim`` float32 features. Loaded with
    ``num_classes=2`` the two rare classes stay apart from the majority only as class 0
    (5 %, class 1 merges into the majority); with ``num_classes=3`` all three are kept.
    """
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n, n_features=dim, n_informative=16, n_redundant=8, n_classes=3,
        n_clusters_per_class=2, weights=[0.05, 0.05, 0.9], class_sep=1.0, flip_y=0.0, random_state=seed,
    )
    x = x.astype(np.float32)
    split = n - 5_000
    np.savez(path, x_train=x[:split], y_train=y[:split].astype(np.int64), x_test=x[split:], y_test=y[split:].astype(np.int64))


def run_trial(
    data: Dataset, strategy_name: str, b_parallel: int, noise: float, seed: int, args: argparse.Namespace
) -> list[float]:
    """Balanced accuracy after each round (``rounds + 1`` values) of one active-learning trial."""
    registered, options = STRATEGIES[strategy_name]
    strategy = make_strategy(registered, b_parallel=b_parallel, **options)
    k = data.num_classes
    n = len(data.y_train)
    annotator = NoiseModel(NoiseConfig(model="uniform", rate=noise, persistent=True) if noise else NoiseConfig(), k, seed=seed)
    truth = data.y_train

    def annotate(indices: np.ndarray) -> np.ndarray:
        # Persistent noise is a function of (seed, index): the generator is never drawn from.
        return annotator.observe(truth[indices], indices, np.random.default_rng(0))

    observed = np.full(n, -1, dtype=np.int64)
    initial = generator(seed, INITIAL_STREAM).choice(n, size=args.initial, replace=False)
    observed[initial] = annotate(initial)
    model = ModelConfig(kind="mlp")
    curve = []
    for round_ in range(args.rounds + 1):
        labeled = np.flatnonzero(observed >= 0)
        fit = fit_and_score(
            model, data.x_train, labeled, observed[labeled], data.x_test, k,
            int_seed(seed, TRAIN_STREAM, round_), device="cpu", with_embeddings=strategy.needs_embeddings,
        )
        curve.append(classification_metrics(data.y_test, fit.test_pred, k)["balanced_accuracy"])
        if round_ == args.rounds:
            break
        bought = strategy.select(
            fit.probs, observed, args.b_train, annotate, generator(seed, SELECT_STREAM, round_ + 1),
            embeddings=fit.embeddings,
        )
        observed[bought] = annotate(bought)
    return curve


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0)


def labels_to_target(curve: Sequence[float], target: float, args: argparse.Namespace) -> int:
    """Labels bought when ``curve`` first reaches ``target``; ``total + b_train`` if never."""
    for round_, value in enumerate(curve):
        if value >= target:
            return args.initial + round_ * args.b_train
    return args.initial + (args.rounds + 1) * args.b_train


def report(curves: dict[tuple[Setting, int, str], list[list[float]]], args: argparse.Namespace) -> None:
    """One markdown table: per setting, B_parallel and strategy, AUC, labels to target, Δ AUC."""
    print(
        f"| dataset | K | noise | B_parallel | strategy | AUC | labels to target | Δ AUC vs {args.reference} |",
    )
    print("|---|---|---|---|---|---|---|---|")
    settings = list(dict.fromkeys(s for s, _, _ in curves))
    for setting in settings:
        finals = [statistics.fmean(c[-1] for c in cs) for (s, _, _), cs in curves.items() if s == setting]
        target = args.target * max(finals)
        for b_parallel in args.b_parallel:
            reference = curves.get((setting, b_parallel, args.reference))
            for name in args.strategies:
                key = (setting, b_parallel if _depends_on_b_parallel(name) else 0, name)
                cs = curves[key]
                auc, auc_se = mean_se([statistics.fmean(c) for c in cs])
                reach, reach_se = mean_se([labels_to_target(c, target, args) for c in cs])
                delta = "-"
                if reference is not None and name != args.reference:
                    diffs = [statistics.fmean(a) - statistics.fmean(b) for a, b in zip(cs, reference)]
                    d, d_se = mean_se(diffs)
                    delta = f"{d:+.4f} ± {d_se:.4f}"
                print(
                    f"| {setting.dataset} | {setting.k} | {setting.noise:g} | {b_parallel} | {name} | "
                    f"{auc:.4f} ± {auc_se:.4f} | {reach:.0f} ± {reach_se:.0f} | {delta} |",
                )


def _depends_on_b_parallel(name: str) -> bool:
    registered, _ = STRATEGIES[name]
    return registered in ("direct", "direct_paper")


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    return lambda text: [kind(x) for x in text.split(",") if x]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("digits", "features"), default="digits")
    parser.add_argument("--path", help="the .npz of --dataset features")
    parser.add_argument("--make-features", type=Path, metavar="PATH", help="write the synthetic features file and exit")
    parser.add_argument("--k", type=_csv(int), default=[2, 3], help="numbers of classes (comma-separated)")
    parser.add_argument("--noise", type=_csv(float), default=[0.0, 0.2], help="uniform noise rates (comma-separated)")
    parser.add_argument("--b-parallel", type=_csv(int), default=[1, 5, 10], help="B_parallel values (comma-separated)")
    parser.add_argument("--strategies", type=_csv(str), default=["paper", "default", "galaxy", "confidence", "random"],
                        help=f"comma-separated, from: {','.join(STRATEGIES)}")
    parser.add_argument("--reference", default="default", help="strategy the paired differences are taken against")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--initial", type=int, default=20, help="random labels before the first round")
    parser.add_argument("--b-train", type=int, default=20, help="labels per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.95, help="fraction of the best final balanced accuracy")
    args = parser.parse_args(argv)
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if args.dataset == "features" and not args.path and not args.make_features:
        parser.error("--dataset features needs --path")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.make_features:
        make_features_file(args.make_features)
        return
    import torch

    torch.set_num_threads(1)
    curves: dict[tuple[Setting, int, str], list[list[float]]] = {}
    start = time.perf_counter()
    for k in args.k:
        spec = DatasetSpec(kind="digits", num_classes=k) if args.dataset == "digits" else DatasetSpec(
            kind="features", num_classes=k, path=args.path
        )
        data = load_dataset(spec)
        for noise in args.noise:
            setting = Setting(spec.name, k, noise)
            for name in args.strategies:
                for b_parallel in args.b_parallel if _depends_on_b_parallel(name) else [0]:
                    curves[setting, b_parallel, name] = [
                        run_trial(data, name, max(b_parallel, 1), noise, seed, args) for seed in range(args.seeds)
                    ]
            print(f"{setting} done after {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    report(curves, args)


if __name__ == "__main__":
    main()
