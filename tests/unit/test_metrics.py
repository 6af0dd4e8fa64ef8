"""Test-split metrics on hand-worked cases."""

import math

import numpy as np
import pytest

from direct_ray.metrics import classification_metrics


def test_hand_worked_three_classes():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 2, 1, 1, 2, 2, 2, 0])
    m = classification_metrics(y_true, y_pred, 3)
    assert m["per_class_accuracy"] == [0.5, 1.0, 0.75]
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["worst_class_accuracy"] == 0.5
    assert m["minority_accuracy"] == pytest.approx(3 / 4)  # classes 0 and 1 pooled


def test_absent_class_is_left_out_of_the_means():
    m = classification_metrics(np.array([1, 1]), np.array([1, 0]), 2)
    assert math.isnan(m["per_class_accuracy"][0])
    assert m["balanced_accuracy"] == 0.5
    assert math.isnan(m["minority_accuracy"])


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.array([0]), 2)
