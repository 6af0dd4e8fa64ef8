"""Simulated annotation time in real trials: the selection actor's clock, its columns, and resume."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pytest

from direct_ray.annotation import AnnotationConfig
from direct_ray.noise import NoiseConfig
from direct_ray.trial import TrialContext, TrialState, run_trial
from tests.integration.test_trial import curve, make_config

LOGNORMAL = {"model": "lognormal", "median": 30, "sigma": 1.0}
ASYNC = AnnotationConfig.from_dict({"mode": "async", "latency": LOGNORMAL, "speeds": [1, 2, 0.5]})
ASYNC_WAITING = AnnotationConfig.from_dict({"mode": "async", "latency": LOGNORMAL, "speeds": [1, 2, 0.5], "overlap": 0})
SYNC = AnnotationConfig.from_dict({"mode": "sync", "latency": LOGNORMAL})


def timed_config(annotation: AnnotationConfig, **changes):
    return make_config(b_parallel=3, b_train=12, initial_size=9, rounds=3, noise=NoiseConfig(), annotation=annotation,
                       **changes)


def answer_times(state: TrialState) -> list[float]:
    return [row["answered_at"] for row in state.selections]


@pytest.fixture(scope="module")
def async_run(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("async")
    return run_trial(timed_config(ASYNC), context=TrialContext(output=out)), out


def round_ends(state: TrialState) -> np.ndarray:
    """Simulated time at which each round ended (its model trained)."""
    return np.cumsum([r["annotation_seconds"] for r in state.curve])


def test_async_trial_reports_its_clock(async_run):
    state, out = async_run
    rows = state.curve
    assert [r["annotation_mode"] for r in rows] == ["async"] * 4
    seconds = np.array([r["annotation_seconds"] for r in rows])
    busy = np.array([r["annotator_busy_seconds"] for r in rows])
    assert (seconds > 0).all() and (busy > 0).all() and busy.sum() <= 3 * seconds.sum() + 1e-9
    times = answer_times(state)
    assert max(times) == pytest.approx(seconds.sum())  # the clock runs on across rounds; the last round waits
    ends = round_ends(state)
    for round_ in range(4):
        mine = [row["answered_at"] for row in state.selections if row["round"] == round_]
        assert mine == sorted(mine)  # a round's purchases in the order of simulated finish times
        # the round ended without waiting for its last labels, never with more than b_parallel - 1 out
        out_then = [row["answered_at"] > ends[round_] for row in state.selections if row["round"] <= round_]
        assert rows[round_]["labels_in_flight"] == sum(out_then)
        assert sum(row["answered_at"] > ends[round_] for row in state.selections if row["round"] == round_) <= 2
    assert rows[0]["labels_in_flight"] == rows[-1]["labels_in_flight"] == 0  # the initial batch and last round wait
    assert sum(r["labels_in_flight"] for r in rows) > 0  # with sigma 1 some round ends with labels out
    files = ds.dataset(out / "curves", partitioning="hive").to_table()
    assert files["annotation_seconds"].to_pylist() == pytest.approx(seconds.tolist())
    assert files["labels_in_flight"].to_pylist() == [r["labels_in_flight"] for r in rows]
    assert ds.dataset(out / "selections", partitioning="hive").to_table()["answered_at"].to_pylist() == pytest.approx(times)


def test_async_rounds_that_wait_end_with_their_last_label(ray_session):
    state = run_trial(timed_config(ASYNC_WAITING), context=TrialContext())
    ends = round_ends(state)
    for round_ in range(4):
        mine = [row["answered_at"] for row in state.selections if row["round"] == round_]
        assert max(mine) == pytest.approx(ends[round_])
    assert [r["labels_in_flight"] for r in state.curve] == [0] * 4
    assert answer_times(state) == sorted(answer_times(state))


def test_sync_latencies_change_the_clock_not_the_labels(ray_session):
    plain = run_trial(timed_config(AnnotationConfig()), context=TrialContext())
    timed = run_trial(timed_config(SYNC), context=TrialContext())
    assert curve(plain) == curve(timed)
    drop = ("trial_id", "answered_at")
    assert [{k: v for k, v in r.items() if k not in drop} for r in plain.selections] == \
        [{k: v for k, v in r.items() if k not in drop} for r in timed.selections]
    assert all(r["annotation_seconds"] == 0 and r["annotation_mode"] == "sync" for r in plain.curve)
    assert answer_times(plain) == [0.0] * len(plain.selections)
    assert all(r["annotation_seconds"] > 0 for r in timed.curve)


def test_galaxy_clock_is_the_sum_of_its_labelling_time(ray_session):
    state = run_trial(timed_config(ASYNC, strategy="galaxy"), context=TrialContext())
    for row in state.curve:
        assert row["annotation_seconds"] == pytest.approx(row["annotator_busy_seconds"])


def test_a_resumed_trial_continues_the_clock(async_run, tmp_path, inject_faults):
    clean = async_run[0]
    inject_faults(trial_raise_at_round=2)
    with pytest.raises(RuntimeError, match="injected fault"):
        run_trial(timed_config(ASYNC), checkpoint_dir=tmp_path / "ckpt", context=TrialContext())
    assert TrialState.load(tmp_path / "ckpt").annotation_clock > 0
    resumed = run_trial(timed_config(ASYNC), checkpoint_dir=tmp_path / "ckpt", context=TrialContext())
    assert curve(resumed) == curve(clean)
    assert answer_times(resumed) == answer_times(clean)
    columns = ("annotation_seconds", "annotator_busy_seconds")
    assert [[r[c] for c in columns] for r in resumed.curve] == [[r[c] for c in columns] for r in clean.curve]
