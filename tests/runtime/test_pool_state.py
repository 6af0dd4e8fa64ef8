"""The pool's bookkeeping, without Ray."""

import numpy as np
import pytest

from direct_ray.runtime.pool import PoolState


def test_record_tracks_order_round_annotator_and_noise():
    pool = PoolState.empty(6, num_classes=2)
    pool.record(0, [4, 1], observed=[1, 0], true_labels=[1, 1], annotators=[0, 1])
    pool.record(1, [2], observed=[0], true_labels=[0], annotators=[0])
    assert pool.n_labeled == 3
    assert pool.labeled_indices().tolist() == [4, 1, 2]
    assert pool.per_class_observed().tolist() == [2, 1]
    assert pool.n_noisy() == 1  # index 1: true 1, observed 0
    assert pool.n_minority() == 1  # only index 2 is truly class 0 (class 1 = majority)
    rows = pool.selection_rows(0)
    assert [(r["pool_index"], r["order"], r["observed_label"], r["true_label"], r["annotator"]) for r in rows] == [
        (4, 0, 1, 1, 0),
        (1, 1, 0, 1, 1),
    ]
    assert pool.selection_rows(1)[0]["order"] == 2


def test_an_example_cannot_be_bought_twice():
    pool = PoolState.empty(4, num_classes=2)
    pool.record(0, [1], [0], [0], [0])
    with pytest.raises(ValueError, match="only once"):
        pool.record(1, [1], [0], [0], [0])
    with pytest.raises(ValueError, match="only once"):
        pool.record(1, [2, 2], [0, 0], [0, 0], [0, 0])
    assert pool.n_labeled == 1


def test_arrays_round_trip():
    pool = PoolState.empty(5, num_classes=3)
    pool.record(0, [3, 0], [2, 1], [2, 2], [1, 0])
    again = PoolState.from_arrays(pool.to_arrays())
    for key, value in pool.to_arrays().items():
        np.testing.assert_array_equal(value, again.to_arrays()[key])


def test_fingerprint_tells_states_apart():
    a, b = PoolState.empty(5, num_classes=2), PoolState.empty(5, num_classes=2)
    assert a.fingerprint() == b.fingerprint()
    a.record(0, [1], [0], [0], [0])
    assert a.fingerprint() != b.fingerprint()
    b.record(0, [1], [0], [0], [1])  # same label, another annotator
    assert a.fingerprint() != b.fingerprint()
