"""The imbalance construction and ratio: every row of the paper's Table 1, hand cases, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from direct_ray.data import class_map, imbalance_ratio, imbalanced_labels

# Training-split class histograms of the original datasets (torchvision label order;
# SVHN's digit '0' is label 0).
HISTOGRAMS = {
    "cifar10": [5000] * 10,
    "cifar100": [500] * 100,
    "svhn": [4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659],
}

# Table 1: (dataset, K, N_K majority, sum of minority classes, imbalance ratio gamma).
TABLE_1 = [
    ("cifar10", 2, 45000, 5000, 0.1111),
    ("cifar10", 3, 40000, 10000, 0.1250),
    ("cifar100", 2, 49500, 500, 0.0101),
    ("cifar100", 3, 49000, 1000, 0.0102),
    ("svhn", 2, 68309, 4948, 0.0724),
    ("svhn", 3, 54448, 18809, 0.2546),
]


def labels_from_histogram(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


@pytest.mark.parametrize(("dataset", "k", "majority", "minority_total", "gamma"), TABLE_1)
def test_table_1_row(dataset, k, majority, minority_total, gamma):
    labels = imbalanced_labels(labels_from_histogram(HISTOGRAMS[dataset]), k)
    counts = np.bincount(labels, minlength=k)
    assert len(counts) == k
    assert counts[k - 1] == majority
    assert counts[: k - 1].sum() == minority_total
    assert round(imbalance_ratio(labels, k), 4) == gamma


@pytest.mark.parametrize(("dataset", "k"), [(row[0], row[1]) for row in TABLE_1])
def test_table_1_settings_keep_the_constructions_labels(dataset, k):
    """The merged class is already the largest, so majority-last changes nothing."""
    histogram = HISTOGRAMS[dataset]
    mapping = class_map(labels_from_histogram(histogram), k, len(histogram))
    assert mapping.tolist() == imbalanced_labels(np.arange(len(histogram)), k).tolist()


def test_svhn_k10_moves_its_largest_digit_last():
    """Without merging, SVHN's most frequent digit (1) is the majority: it becomes class 9."""
    mapping = class_map(labels_from_histogram(HISTOGRAMS["svhn"]), 10, 10)
    assert mapping.tolist() == [0, 9, 1, 2, 3, 4, 5, 6, 7, 8]


def test_svhn_k3_ratio_is_the_larger_minority_class_over_the_majority():
    labels = imbalanced_labels(labels_from_histogram(HISTOGRAMS["svhn"]), 3)
    assert imbalance_ratio(labels, 3) == 13861 / 54448


def test_hand_case_merges_the_tail_into_the_last_class():
    labels = np.array([0, 1, 2, 3, 4, 1, 0, 4])
    assert imbalanced_labels(labels, 2).tolist() == [0, 1, 1, 1, 1, 1, 0, 1]
    assert imbalanced_labels(labels, 3).tolist() == [0, 1, 2, 2, 2, 1, 0, 2]
    assert imbalanced_labels(labels, 5).tolist() == labels.tolist()
    assert imbalanced_labels(labels, 3).dtype == np.int64


def test_hand_case_ratio():
    # counts: class 0 -> 1, class 1 -> 3, class 2 -> 6
    labels = np.array([0, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    assert imbalance_ratio(labels, 3) == 0.5
    # an empty class counts as zero; the ratio is still second largest / largest
    assert imbalance_ratio(np.array([2, 2, 2, 2, 1]), 3) == 0.25
    assert imbalance_ratio(np.array([1, 1, 1]), 2) == 0.0
    assert imbalance_ratio(np.array([0, 1]), 2) == 1.0


def test_input_is_not_modified():
    labels = np.array([0, 5, 3])
    labels.flags.writeable = False
    imbalanced_labels(labels, 2)
    assert labels.tolist() == [0, 5, 3]


@pytest.mark.parametrize(
    ("labels", "k", "message"),
    [
        (np.array([0, 1]), 1, "num_classes"),
        (np.array([0, 1]), True, "num_classes"),
        (np.array([[0, 1]]), 2, "1-D"),
        (np.array([0.0, 1.0]), 2, "integers"),
        (np.array([0, -1]), 2, ">= 0"),
    ],
)
def test_bad_labels_are_errors(labels, k, message):
    with pytest.raises(ValueError, match=message):
        imbalanced_labels(labels, k)
    with pytest.raises(ValueError, match=message):
        imbalance_ratio(labels, k)


def test_ratio_rejects_labels_beyond_k_and_empty_input():
    with pytest.raises(ValueError, match="0..1"):
        imbalance_ratio(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="empty"):
        imbalance_ratio(np.array([], dtype=np.int64), 2)


@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=200),
    st.integers(2, 10),
)
def test_properties(raw, k):
    labels = np.array(raw)
    merged = imbalanced_labels(labels, k)
    keep = labels < k - 1
    assert np.array_equal(merged[keep], labels[keep])
    assert np.all(merged[~keep] == k - 1)
    counts = np.bincount(merged, minlength=k)
    assert counts.sum() == len(raw)
    gamma = imbalance_ratio(merged, k)
    assert 0.0 <= gamma <= 1.0
    assert gamma == np.sort(counts)[-2] / counts.max()
