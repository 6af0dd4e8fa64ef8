"""Test-split metrics for one round (the clean test labels; class K-1 is the majority)."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Balanced accuracy (mean per-class recall), accuracy, per-class, worst-class and minority recall.

    A class absent from the test split has no recall; it is left out of the means (NaN in
    ``per_class_accuracy``). ``minority_accuracy`` is the recall over all minority examples
    (classes 0..K-2) pooled together.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError("y_true and y_pred must be non-empty 1-D arrays of the same length")
    support = np.bincount(y_true, minlength=num_classes).astype(np.float64)
    hits = np.bincount(y_true[y_true == y_pred], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / support, np.nan)
    minority = y_true < num_classes - 1
    return {
        "balanced_accuracy": float(np.nanmean(recall)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "worst_class_accuracy": float(np.nanmin(recall)),
        "minority_accuracy": float(np.mean(y_pred[minority] == y_true[minority])) if minority.any() else float("nan"),
        "per_class_accuracy": [float(r) for r in recall],
    }
