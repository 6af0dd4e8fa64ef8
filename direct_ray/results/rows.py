"""The rows of a trial's results tables, built from its state (column names: :mod:`.schema`).

A curve row describes one round: which trial it is (the study's grid point), what the pool
holds after the round's purchase, the clean test-split metrics of the model trained on it,
and the round's timings. Selection rows are the audit record of every label bought; they
are rebuilt from the pool state, which keeps the round, order, annotator and both labels of
each purchase.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from direct_ray.config import TrialConfig
from direct_ray.pool_state import PoolState
from direct_ray.results.schema import ACCURACY_COLUMNS


@dataclass(frozen=True)
class RoundTimes:
    """Wall-clock seconds of one round (the only values that differ between reruns)."""

    train: float
    score: float
    select: float
    round: float

@dataclass(frozen=True)
class AnnotationTimes:
    """Simulated annotation time of one round's purchase (deterministic, unlike :class:`RoundTimes`)."""

    seconds: float  # wall time to buy the round's labels
    busy: float  # summed labelling time of all annotators
    in_flight: int = 0  # labels bought but not back when the round ended (not in its model)


def curve_row(
    config: TrialConfig,
    *,
    sweep_id: str,
    dataset: str,
    num_classes: int,
    imbalance_ratio: float,
    round_: int,
    pool: PoolState,
    metrics: dict,
    times: RoundTimes,
    effective_b_parallel: int,
    device: str,
    annotation: AnnotationTimes,
) -> dict:
    """One row of the curves table (every column of :data:`~.schema.CURVE_SCHEMA`)."""
    return {
        "sweep_id": sweep_id,
        "trial_id": config.trial_id,
        "dataset": dataset,
        "num_classes": num_classes,
        "imbalance_ratio": float(imbalance_ratio),
        "strategy": str(config.strategy),
        "seed": config.seed,
        "b_parallel": config.b_parallel,
        "b_train": config.b_train,
        "noise_model": config.noise.model,
        "noise_rate": float(config.noise.nominal_rate),
        "round": round_,
        "n_labeled": pool.n_labeled,
        "n_labeled_per_class": pool.per_class_observed().tolist(),
        "n_noisy_labels": pool.n_noisy(),
        "n_minority_labels": pool.n_minority(),
        **{column: metrics[column] for column in ACCURACY_COLUMNS},
        "train_seconds": float(times.train),
        "score_seconds": float(times.score),
        "select_seconds": float(times.select),
        "effective_b_parallel": int(effective_b_parallel),
        "per_class_accuracy": metrics["per_class_accuracy"],
        "round_seconds": float(times.round),
        "model": config.model.kind,
        "noise_config": json.dumps(config.noise.to_dict(), sort_keys=True),
        "device": device,
        "annotation_mode": config.annotation.mode,
        "annotation_seconds": float(annotation.seconds),
        "annotator_busy_seconds": float(annotation.busy),
        "annotation_config": json.dumps(config.annotation.to_dict(), sort_keys=True),
        "labels_in_flight": int(annotation.in_flight),
    }


def selection_rows(pool: PoolState, trial_id: str, round_: int) -> list[dict]:
    """Audit rows (one per label bought in ``round_``), in purchase order."""
    idx = np.flatnonzero(pool.round_bought == round_)
    idx = idx[np.argsort(pool.order[idx], kind="stable")]
    return [
        {
            "trial_id": trial_id,
            "round": round_,
            "order": int(pool.order[i]),
            "pool_index": int(i),
            "true_label": int(pool.true_label[i]),
            "observed_label": int(pool.observed[i]),
            "annotator": int(pool.annotator[i]),
            "answered_at": float(pool.answered_at[i]),
        }
        for i in idx
    ]
