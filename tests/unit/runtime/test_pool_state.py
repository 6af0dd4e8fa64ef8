"""The pool's bookkeeping, without Ray."""

import numpy as np
import pytest

from direct_ray.pool_state import PoolState
from direct_ray.results.rows import selection_rows


def test_record_tracks_order_round_annotator_and_noise():
    pool = PoolState.empty(6, num_classes=2)
    pool.record(0, [4, 1], observed=[1, 0], true_labels=[1, 1], annotators=[0, 1])
    pool.record(1, [2], observed=[0], true_labels=[0], annotators=[0])
    assert pool.n_labeled == 3
    assert pool.labeled_indices().tolist() == [4, 1, 2]
    assert pool.per_class_observed().tolist() == [2, 1]
    assert pool.n_noisy() == 1  # index 1: true 1, observed 0
    assert pool.n_minority() == 1  # only index 2 is truly class 0 (class 1 = majority)
    rows = selection_rows(pool, "t", 0)
    assert [(r["pool_index"], r["order"], r["observed_label"], r["true_label"], r["annotator"]) for r in rows] == [
        (4, 0, 1, 1, 0),
        (1, 1, 0, 1, 1),
    ]
    assert selection_rows(pool, "t", 1)[0]["order"] == 2
    assert {r["trial_id"] for r in rows} == {"t"}


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
    pool.record(1, [4], [0], [0], [2])
    again = PoolState.from_arrays(pool.to_arrays())
    for field in ("observed", "true_label", "round_bought", "annotator", "order"):
        np.testing.assert_array_equal(getattr(pool, field), getattr(again, field))
        assert getattr(again, field).flags.writeable
    assert again.num_classes == 3 and again.fingerprint() == pool.fingerprint()
    again.record(2, [1], [1], [1], [0])  # the rebuilt state keeps counting the purchase order
    assert again.order[1] == 3


def test_arrays_scale_with_the_labels_not_the_pool():
    pool = PoolState.empty(1_000_000, num_classes=2)
    pool.record(0, [999_999, 5, 17], [1, 0, 1], [1, 0, 0], [0, 1, 2])
    arrays = pool.to_arrays()
    assert sum(a.nbytes for a in arrays.values()) < 200
    assert arrays["index"].tolist() == [999_999, 5, 17]  # purchase order


def test_arrays_with_repeated_or_foreign_indices_are_refused():
    arrays = PoolState.empty(5, num_classes=2).to_arrays()
    for index in ([1, 1], [7, 0]):
        bad = dict(arrays, index=np.array(index), observed=np.zeros(2), true_label=np.zeros(2),
                   round_bought=np.zeros(2), annotator=np.zeros(2), order=np.arange(2))
        with pytest.raises(ValueError, match="distinct pool indices"):
            PoolState.from_arrays(bad)


def test_fingerprint_tells_states_apart():
    a, b = PoolState.empty(5, num_classes=2), PoolState.empty(5, num_classes=2)
    assert a.fingerprint() == b.fingerprint()
    a.record(0, [1], [0], [0], [0])
    assert a.fingerprint() != b.fingerprint()
    b.record(0, [1], [0], [0], [1])  # same label, another annotator
    assert a.fingerprint() != b.fingerprint()


def test_the_training_set_holds_only_labels_back_by_the_clock():
    state = PoolState.empty(10, 2)
    state.record(0, [4, 1, 7], [1, 0, 1], [1, 0, 1], [0, 1, 2], answered_at=[3.0, 5.0, 9.0])
    indices, labels = state.training_set(5.0)
    assert indices.tolist() == [4, 1] and labels.tolist() == [1, 0]  # answered at the clock counts
    assert state.pending(5.0).tolist() == [7] and state.pending(9.0).size == 0
    assert state.training_set()[0].tolist() == [4, 1, 7]  # no clock: every label
