"""The 1-D reduction: sorted lists, prefix sums, threshold estimate and version space."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from direct_ray.strategies.base import LabelBuyer
from direct_ray.strategies.reduction import (
    LabelView,
    class_order,
    labeled_positions,
    margin_scores,
    nearest_unlabeled,
    prefix_sums,
    row_max,
    signed_weights,
    threshold_estimate,
    version_space,
)

K = 3
# A label sequence in sorted order: -1 = unlabeled, else an observed class.
label_lists = st.lists(st.integers(min_value=-1, max_value=K - 1), min_size=0, max_size=40)


def brute_force_loss(sorted_labels: list[int], k: int) -> np.ndarray:
    """L(j) for j = 0..N, counted directly from the definition of the 0-1 loss of h_j."""
    labels = np.array(sorted_labels, dtype=np.int64)
    positions = np.arange(1, labels.size + 1)
    hypotheses = np.arange(labels.size + 1)[:, None]
    predicts_k = positions[None, :] <= hypotheses  # row j: what h_j says at every position
    mistakes = (predicts_k != (labels == k)[None, :]) & (labels != -1)[None, :]
    return mistakes.sum(axis=1)


def brute_force_threshold(sorted_labels: list[int], k: int) -> int:
    """argmin L, ties: closest to N/2, then the smaller index."""
    losses = brute_force_loss(sorted_labels, k)
    n = len(sorted_labels)
    best = np.flatnonzero(losses == losses.min())
    return int(min(best, key=lambda j: (abs(2 * j - n), j)))


@settings(max_examples=100, deadline=None)
@given(label_lists, st.integers(min_value=0, max_value=K - 1))
def test_argmin_loss_is_argmax_prefix_sum(sorted_labels, k):
    labels = np.array(sorted_labels, dtype=np.int64)
    s = prefix_sums(signed_weights(labels, k))
    losses = brute_force_loss(sorted_labels, k)
    n_k = sum(label == k for label in sorted_labels)
    np.testing.assert_array_equal(losses, n_k - s)  # L(j) = n_k - S(j), Lemma 1
    np.testing.assert_array_equal(np.flatnonzero(losses == losses.min()), np.flatnonzero(s == s.max()))


@settings(max_examples=100, deadline=None)
@given(label_lists, st.integers(min_value=0, max_value=K - 1))
def test_threshold_estimate_matches_brute_force_with_tie_rule(sorted_labels, k):
    labels = np.array(sorted_labels, dtype=np.int64)
    positions, is_k = labeled_positions(labels, k)
    assert threshold_estimate(positions, is_k, labels.size) == brute_force_threshold(sorted_labels, k)


@settings(max_examples=100, deadline=None)
@given(label_lists, st.integers(min_value=0, max_value=K - 1))
def test_version_space_follows_definition_and_holds_every_minimiser(sorted_labels, k):
    labels = np.array(sorted_labels, dtype=np.int64)
    n = labels.size
    positions, is_k = labeled_positions(labels, k)
    lo, hi = version_space(positions, is_k, n)
    labeled = [(p, lab == k) for p, lab in enumerate(sorted_labels, start=1) if lab != -1]
    a = next((p for p, mine in labeled if not mine), n + 1)
    expected_lo = max((p for p, mine in labeled if mine and p < a), default=0)
    z = max((p for p, mine in labeled if mine), default=0)
    expected_hi = min((p for p, mine in labeled if not mine and p > z), default=n + 1)
    assert (lo, hi) == (expected_lo, expected_hi)
    assert 0 <= lo < hi <= n + 1
    losses = brute_force_loss(sorted_labels, k)
    minimisers = np.flatnonzero(losses == losses.min())
    assert lo <= minimisers.min() and minimisers.max() <= hi - 1  # window holds h_lo..h_{hi-1}


def test_hand_worked_prefix_sums_and_thresholds():
    k, o, u = 0, 1, -1
    labels = np.array([k, k, o, k, o, o])
    np.testing.assert_array_equal(prefix_sums(signed_weights(labels, k)), [0, 1, 2, 1, 2, 1, 0])
    # S peaks at j = 2 and j = 4, both 1 away from N/2 = 3: the smaller wins.
    assert threshold_estimate(*labeled_positions(labels, k), 6) == 2
    # A plateau j = 1..4 (positions 2-4 unlabeled), N/2 = 2.5: 2 and 3 tie, 2 wins.
    plateau = np.array([k, u, u, u, o])
    assert threshold_estimate(*labeled_positions(plateau, k), 5) == 2
    # Nothing labeled: every hypothesis ties; the middle one.
    assert threshold_estimate(*labeled_positions(np.full(7, u), k), 7) == 3
    assert threshold_estimate(*labeled_positions(np.full(8, u), k), 8) == 4


def test_hand_worked_version_spaces():
    k, o, u = 0, 1, -1
    labels = np.array([k, u, o, u, k, u, o, u])  # k at 1 and 5, others at 3 and 7
    assert version_space(*labeled_positions(labels, k), 8) == (1, 7)
    assert version_space(*labeled_positions(np.full(8, u), k), 8) == (0, 9)
    only_k = np.array([u, k, u, k, u])
    assert version_space(*labeled_positions(only_k, k), 5) == (4, 6)
    only_other = np.array([u, o, u, o, u])
    assert version_space(*labeled_positions(only_other, k), 5) == (0, 2)


def test_k2_order_puts_the_most_confident_example_first():
    probs = np.array([[0.6, 0.4], [0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.45, 0.55]], dtype=np.float32)
    # Class 0: rows 0, 1, 3 all have q = 0; the most confident (0.9) must come first.
    # A plain stable sort of q alone would give [0, 1, 3, ...], the reverse of what we need.
    np.testing.assert_array_equal(class_order(probs, 0), [1, 3, 0, 4, 2])
    np.testing.assert_array_equal(class_order(probs, 1), [2, 4, 0, 3, 1])
    np.testing.assert_array_equal(class_order(probs.astype(np.float64), 0), [1, 3, 0, 4, 2])


def reference_order(probs: np.ndarray, k: int) -> np.ndarray:
    """Ascending q, then descending p_k, then ascending index, by an independent route."""
    q = probs.max(axis=1) - probs[:, k]
    keys = sorted(range(len(q)), key=lambda i: (float(q[i]), -float(probs[i, k]), i))
    return np.array(keys, dtype=np.int64)


# Few distinct values so that q and p tie often, signed zeros and negatives included.
tie_heavy = st.sampled_from([0.0, -0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1e-30, -0.5, 0.1])


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.lists(st.lists(tie_heavy, min_size=3, max_size=3), min_size=n, max_size=n)
    ),
    st.sampled_from([np.float16, np.float32, np.float64]),
)
def test_class_order_is_exact_on_ties_for_every_float_width(rows, dtype):
    probs = np.array(rows, dtype=dtype)
    for k in range(probs.shape[1]):
        expected = reference_order(probs.astype(np.float32 if dtype == np.float16 else dtype), k)
        np.testing.assert_array_equal(class_order(probs, k), expected)


def test_fast_path_agrees_with_lexsort_on_realistic_probs():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3.0, size=(20_000, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs32 = probs.astype(np.float32)
    for k in range(4):
        q = margin_scores(probs32, k)
        np.testing.assert_array_equal(class_order(probs32, k), np.lexsort((-probs32[:, k], q)))


def test_margin_scores_and_row_max():
    rng = np.random.default_rng(0)
    probs = rng.random((40_000, 5)).astype(np.float32)
    np.testing.assert_array_equal(row_max(probs), probs.max(axis=1))
    q = margin_scores(probs, 2)
    assert q.dtype == np.float32 and (q >= 0).all()
    np.testing.assert_array_equal(q, probs.max(axis=1) - probs[:, 2])
    assert not np.signbit(margin_scores(np.array([[-0.0, -0.0]], dtype=np.float32), 0)).any()


def test_nearest_unlabeled_visits_j_then_outwards():
    unlabeled = np.array([1, 2, 3, 4, 7, 8, 9, 10])  # 5 and 6 are labeled
    np.testing.assert_array_equal(nearest_unlabeled(unlabeled, 5, 4), [4, 7, 3, 8])
    np.testing.assert_array_equal(nearest_unlabeled(unlabeled, 0, 3), [1, 2, 3])
    np.testing.assert_array_equal(nearest_unlabeled(unlabeled, 10, 3), [10, 9, 8])
    np.testing.assert_array_equal(nearest_unlabeled(unlabeled, 8, 100), [8, 9, 7, 10, 4, 3, 2, 1])


def test_label_view_mirrors_the_buyer():
    observed = np.array([-1, 2, -1, -1, 0])
    buyer = LabelBuyer(observed, 3, budget=2, b_parallel=2, annotate=lambda idx: np.full(idx.size, 1))
    view = LabelView(buyer)
    assert view.labels.dtype == np.int8
    view.buy(np.array([0, 3]))
    np.testing.assert_array_equal(view.labels, [1, 2, -1, 1, 0])
    np.testing.assert_array_equal(buyer.observed, view.labels)
    np.testing.assert_array_equal(observed, [-1, 2, -1, -1, 0])  # the caller's array is untouched
    assert view.remaining == 0


@pytest.mark.parametrize("num_classes, dtype", [(127, np.int8), (128, np.int16), (40_000, np.int32)])
def test_label_view_dtype_fits_the_classes(num_classes, dtype):
    buyer = LabelBuyer(np.array([-1, num_classes - 1]), num_classes, 0, 1, lambda idx: idx)
    view = LabelView(buyer)
    assert view.labels.dtype == dtype and view.labels[1] == num_classes - 1
