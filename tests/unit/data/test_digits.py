"""The embedded default dataset: scikit-learn's digits, fixed split, imbalanced the paper's way."""

from __future__ import annotations

import numpy as np
import pytest

from direct_ray.data import Dataset, DatasetSpec, imbalance_ratio, imbalanced_labels, load_dataset
from direct_ray.data.digits import digits_splits


@pytest.fixture(scope="module")
def digits2() -> Dataset:
    return load_dataset(DatasetSpec("digits", num_classes=2))


def test_shapes_types_and_range(digits2):
    assert digits2.name == "digits-k2"
    assert digits2.kind == "features"
    assert digits2.x_train.shape == (1257, 64) and digits2.x_test.shape == (540, 64)
    assert digits2.x_train.dtype == np.float32 and digits2.y_train.dtype == np.int64
    assert digits2.x_train.min() == 0.0 and digits2.x_train.max() == 1.0
    assert set(np.unique(digits2.y_train)) == {0, 1}


def test_imbalance_is_digit_zero_against_the_rest(digits2):
    counts = digits2.class_counts()
    assert counts.tolist() == [124, 1133]  # 70% of the 178 zeros; the other nine digits merged
    assert digits2.imbalance_ratio == pytest.approx(124 / 1133)
    assert np.bincount(digits2.y_test).tolist() == [54, 486]


def test_split_is_fixed_and_stratified(digits2):
    again = load_dataset(DatasetSpec("digits", num_classes=2))
    assert np.array_equal(again.x_train, digits2.x_train)
    assert np.array_equal(again.y_test, digits2.y_test)
    ten = load_dataset(DatasetSpec("digits", num_classes=10))
    # stratified on the ten digits: each digit keeps ~30% of its examples in the test split
    share = np.bincount(ten.y_test) / (np.bincount(ten.y_test) + np.bincount(ten.y_train))
    assert np.allclose(share, 0.3, atol=0.01)
    # the same rows in the same order whatever K is; only the labels are merged
    assert np.array_equal(ten.x_train, digits2.x_train)
    assert np.array_equal(np.minimum(ten.y_train, 1), digits2.y_train)


@pytest.mark.parametrize("k", [2, 3])
def test_labels_are_the_papers_construction(k):
    """The merged digits are the largest class, so the majority-last rule keeps the construction's labels."""
    _, y_train, _, y_test = digits_splits()
    ds = load_dataset(DatasetSpec("digits", num_classes=k))
    assert ds.classes == tuple(imbalanced_labels(np.arange(10), k).tolist())
    assert np.array_equal(ds.y_train, imbalanced_labels(y_train, k))
    assert np.array_equal(ds.y_test, imbalanced_labels(y_test, k))


def test_k3_keeps_digits_zero_and_one():
    ds = load_dataset(DatasetSpec("digits", num_classes=3))
    counts = ds.class_counts()
    assert counts[2] == counts.max() and counts[:2].sum() < 300
    assert ds.imbalance_ratio == imbalance_ratio(ds.y_train, 3)


def test_more_classes_than_digits_is_an_error():
    with pytest.raises(ValueError, match="num_classes=11 exceeds the 10 classes of digits"):
        DatasetSpec("digits", num_classes=11)
