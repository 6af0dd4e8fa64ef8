"""Synthetic results directories, written with the project's own writer, for the analysis tests.

``write_trial`` writes one trial with a given curve; ``realistic_study`` writes a small study
whose curves look like real ones (DIRECT learns fastest, then GALAXY, then random; noise
hurts; GALAXY records effective_b_parallel 1), for looking at the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from direct_ray.results.schema import CURVES, META_STUDY, META_TRIAL, META_VERSIONS
from direct_ray.results.write import write_trial_table

STUDY = {"name": "synthetic", "rounds": 3, "b_train": 10, "initial_size": 10, "model": {"kind": "mlp"}}
VERSIONS = {"direct-ray": "0.1.0", "numpy": np.__version__}


def curve_rows(
    trial_id: str,
    *,
    n_labeled: Sequence[int],
    balanced_accuracy: Sequence[float],
    minority: Sequence[int] | None = None,
    num_classes: int = 2,
    seed: int = 0,
    b_parallel: int = 1,
    effective_b_parallel: int | None = None,
    noise_model: str = "none",
    noise_rate: float = 0.0,
    annotation_mode: str = "sync",
    annotation_seconds: Sequence[float] | None = None,
    busy_seconds: Sequence[float] | None = None,
) -> list[dict]:
    """One trial's curve rows (every column of the curve files); unnamed columns get a plausible constant.

    Annotation is instant and synchronous unless ``annotation_mode`` and the per-round
    ``annotation_seconds`` / ``busy_seconds`` say otherwise.
    """
    minority = list(minority) if minority is not None else [n // 4 for n in n_labeled]
    annotation_seconds = list(annotation_seconds) if annotation_seconds is not None else [0.0] * len(n_labeled)
    busy_seconds = list(busy_seconds) if busy_seconds is not None else [0.0] * len(n_labeled)
    rows = []
    for r, (n, acc, mino) in enumerate(zip(n_labeled, balanced_accuracy, minority)):
        per_class = [mino] + [0] * (num_classes - 2) + [n - mino]
        rows.append({
            "sweep_id": "sweep-1", "trial_id": trial_id, "num_classes": num_classes, "imbalance_ratio": 9.0,
            "seed": seed, "b_parallel": b_parallel, "b_train": 10, "noise_model": noise_model,
            "noise_rate": noise_rate, "round": r, "n_labeled": n, "n_labeled_per_class": per_class,
            "n_noisy_labels": int(round(n * noise_rate)), "balanced_accuracy": float(acc), "accuracy": float(acc),
            "worst_class_accuracy": float(acc) - 0.1, "minority_accuracy": float(acc) - 0.1,
            "train_seconds": 0.5, "score_seconds": 0.1, "select_seconds": 0.2 / (effective_b_parallel or b_parallel),
            "effective_b_parallel": effective_b_parallel or b_parallel, "n_minority_labels": mino,
            "per_class_accuracy": [float(acc)] * num_classes, "round_seconds": 1.0, "model": "mlp",
            "noise_config": json.dumps({"model": noise_model, "rate": noise_rate}), "device": "cpu",
            "annotation_mode": annotation_mode, "annotation_seconds": float(annotation_seconds[r]),
            "annotator_busy_seconds": float(busy_seconds[r]), "annotation_config": json.dumps({"mode": annotation_mode}),
            "labels_in_flight": 0,
        })
    return rows


def write_trial(
    root: Path | str,
    *,
    strategy: str,
    seed: int,
    n_labeled: Sequence[int],
    balanced_accuracy: Sequence[float],
    minority: Sequence[int] | None = None,
    dataset: str = "toy-k2",
    num_classes: int = 2,
    b_parallel: int = 1,
    effective_b_parallel: int | None = None,
    noise_model: str = "none",
    noise_rate: float = 0.0,
    study: dict | None = None,
    trial_config: dict | None = None,
    annotation_mode: str = "sync",
    annotation_seconds: Sequence[float] | None = None,
    busy_seconds: Sequence[float] | None = None,
) -> Path | str:
    """Write one finished trial's curve file; returns its path (a Path for a local ``root``)."""
    trial_id = f"{dataset}_{strategy}_bp{b_parallel}_{noise_model}{noise_rate:g}_s{seed}"
    trial_id += "" if annotation_mode == "sync" else f"_{annotation_mode}"
    rows = curve_rows(trial_id, n_labeled=n_labeled, balanced_accuracy=balanced_accuracy, minority=minority,
                      num_classes=num_classes, seed=seed, b_parallel=b_parallel,
                      effective_b_parallel=effective_b_parallel, noise_model=noise_model, noise_rate=noise_rate,
                      annotation_mode=annotation_mode, annotation_seconds=annotation_seconds,
                      busy_seconds=busy_seconds)
    config = trial_config if trial_config is not None else {
        "strategy": strategy, "seed": seed, "b_parallel": b_parallel, "rounds": len(n_labeled) - 1,
        "b_train": 10, "initial_size": n_labeled[0],
    }
    metadata = {META_STUDY: study or STUDY, META_TRIAL: config, META_VERSIONS: VERSIONS}
    path = write_trial_table(root, CURVES, rows, dataset=dataset, strategy=strategy, trial_id=trial_id,
                             metadata=metadata)
    return path if "://" in str(root) else Path(path)


_SPEED = {"direct": 60.0, "galaxy": 80.0, "confidence": 110.0, "random": 260.0}
_MINORITY_SHARE = {"direct": 0.45, "galaxy": 0.4, "confidence": 0.3, "random": 0.1}


def realistic_study(
    root: Path | str,
    strategies: Sequence[str] = ("direct", "galaxy", "random"),
    seeds: Sequence[int] = (0, 1),
    noises: Sequence[tuple[str, float]] = (("none", 0.0), ("uniform", 0.2)),
    b_parallels: Sequence[int] = (1, 5),
    rounds: int = 10,
    b_train: int = 20,
    datasets: Sequence[tuple[str, int]] = (("digits-k2", 2),),
) -> Path | str:
    """A study with saturating curves whose speed depends on the strategy, hurt by noise and b_parallel."""
    study = {"name": "synthetic-realistic", "rounds": rounds, "b_train": b_train, "initial_size": b_train,
             "model": {"kind": "mlp"},
             "grid": {"dataset": [{"kind": "digits", "num_classes": k} for _, k in datasets],
                      "strategy": list(strategies), "seed": list(seeds), "b_parallel": list(b_parallels),
                      "noise": [{"model": m, "rate": r} for m, r in noises]}}
    n = b_train * (1 + np.arange(rounds + 1))
    for dataset, k in datasets:
        for strategy in strategies:
            for noise_model, rate in noises:
                for bp in b_parallels:
                    effective = 1 if strategy == "galaxy" else bp
                    for seed in seeds:
                        rng = np.random.default_rng([seed, bp, int(rate * 100), *map(ord, strategy)])
                        speed = _SPEED[strategy] * (1 + 0.08 * (effective - 1))
                        cap = 0.93 - 0.5 * rate
                        acc = 1 / k + (cap - 1 / k) * (1 - np.exp(-(n - 10) / speed)) + rng.normal(0, 0.012, n.size)
                        share = _MINORITY_SHARE[strategy]
                        mino = np.cumsum(rng.binomial(b_train, share, n.size))
                        write_trial(root, strategy=strategy, seed=seed, n_labeled=n.tolist(),
                                    balanced_accuracy=np.clip(acc, 0, 1).tolist(), minority=mino.tolist(),
                                    dataset=dataset, num_classes=k, b_parallel=bp, effective_b_parallel=effective,
                                    noise_model=noise_model, noise_rate=rate, study=study,
                                    trial_config={"strategy": strategy, "seed": seed, "b_parallel": bp,
                                                  "rounds": rounds, "b_train": b_train, "initial_size": b_train})
    return root
