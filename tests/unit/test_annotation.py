"""The simulated annotation clock: latency models, synchronous batches, asynchronous scheduling."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from direct_ray.annotation import DEFAULT_OVERLAP, AnnotationConfig, SimulatedTeam, TeamClock
from direct_ray.strategies import make_strategy

LOGNORMAL = {"model": "lognormal", "median": 30, "sigma": 1.0}


def config(**data) -> AnnotationConfig:
    return AnnotationConfig.from_dict(data)


def fixed(seconds: float, **extra) -> AnnotationConfig:
    return config(latency={"model": "fixed", "seconds": seconds}, **extra)


# --- configuration -------------------------------------------------------------------------


def test_default_is_instant_sync_and_round_trips():
    default = AnnotationConfig()
    assert default.is_default and default.latency is None and default.to_dict() == {"mode": "sync"}
    assert AnnotationConfig.from_dict({}) == default
    full = config(mode="async", latency=LOGNORMAL, speeds=[1, 1, 2, 0.5, 1], straggler={"probability": 0.1, "factor": 5})
    assert not full.is_default
    assert AnnotationConfig.from_dict(full.to_dict()) == full
    assert hash(full) == hash(AnnotationConfig.from_dict(full.to_dict()))
    assert config(mode="async").label == "async" and full.label == "async-lognormal"


def test_async_rounds_overlap_by_default_and_zero_makes_them_wait():
    default = config(mode="async")
    assert default.round_overlap == DEFAULT_OVERLAP == 2 and default.to_dict() == {"mode": "async"}
    assert default.label == "async"
    waiting = config(mode="async", overlap=0, latency=LOGNORMAL)
    assert waiting.round_overlap == 0 and waiting.label == "async-overlap0-lognormal"
    assert AnnotationConfig.from_dict(waiting.to_dict()) == waiting
    assert config(mode="sync").round_overlap == 0 and "overlap" not in config(mode="sync").to_dict()
    with pytest.raises(ValueError, match="overlap is an async setting"):
        config(mode="sync", overlap=1)
    for bad in (True, -1, 1.5):
        with pytest.raises(ValueError, match="annotation.overlap"):
            config(mode="async", overlap=bad)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mode": "parallel"}, "annotation.mode"),
        ({"latency": {"model": "fixed"}}, "annotation.latency: latency model fixed takes ['seconds']"),
        ({"latency": {"model": "fixed", "seconds": 1, "sigma": 1}}, "takes ['seconds'], got ['seconds', 'sigma']"),
        ({"latency": {"model": "lognormal", "median": 0, "sigma": 1}}, "annotation.latency.median"),
        ({"latency": {"model": "lognormal", "median": 3, "sigma": -1}}, "annotation.latency.sigma"),
        ({"latency": {"model": "lognormal", "median": 3, "sigma": True}}, "annotation.latency.sigma"),
        ({"latency": {"model": "gamma", "mean": 3}}, "annotation.latency"),
        ({"latency": {"model": "fixed", "seconds": 1}, "speeds": [1, 0]}, "annotation.speeds[1]: input should be greater than 0"),
        ({"latency": {"model": "fixed", "seconds": 1}, "speeds": []}, "annotation.speeds"),
        ({"speeds": [1, 2]}, "need a latency model"),
        ({"latency": {"model": "fixed", "seconds": 1}, "straggler": {"probability": 1.5, "factor": 2}},
         "annotation.straggler.probability"),
        ({"latency": {"model": "fixed", "seconds": 1}, "straggler": {"probability": 0.5, "factor": 0.5}},
         "annotation.straggler.factor"),
        ({"mode": "sync", "delay": 3}, "annotation: unknown key(s) ['delay']"),
    ],
)
def test_bad_configs_name_the_field(data, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AnnotationConfig.from_dict(data)


def test_config_is_frozen():
    with pytest.raises(Exception):
        AnnotationConfig().mode = "async"


# --- latencies -----------------------------------------------------------------------------


def test_latency_is_a_pure_function_of_seed_annotator_and_key():
    c = config(latency=LOGNORMAL)
    assert c.latency_of(3, 1, (2, 5, 0)) == c.latency_of(3, 1, (2, 5, 0))
    others = {c.latency_of(4, 1, (2, 5, 0)), c.latency_of(3, 2, (2, 5, 0)), c.latency_of(3, 1, (2, 5, 1))}
    assert c.latency_of(3, 1, (2, 5, 0)) not in others and len(others) == 3
    assert AnnotationConfig().latency_of(3, 1, (2, 5, 0)) == 0.0


def test_fixed_latency_with_speeds_and_certain_straggler():
    c = fixed(10.0, speeds=[1, 2, 0.5])
    assert [c.latency_of(0, a, (0, 0, 0)) for a in range(4)] == [10.0, 5.0, 20.0, 10.0]  # speeds[a % 3]
    slow = fixed(10.0, straggler={"probability": 1.0, "factor": 4})
    never = fixed(10.0, straggler={"probability": 0.0, "factor": 4})
    assert slow.latency_of(0, 0, (1, 1, 0)) == 40.0 and never.latency_of(0, 0, (1, 1, 0)) == 10.0


def test_lognormal_median_and_spread():
    c = config(latency=LOGNORMAL)
    draws = np.array([c.latency_of(0, a, (r, b, 0)) for a in range(5) for r in range(20) for b in range(40)])
    assert abs(np.median(draws) / 30 - 1) < 0.1
    assert abs(np.std(np.log(draws)) - 1.0) < 0.05


def test_straggler_probability_is_its_frequency_and_shares_the_normal_draw():
    base = config(latency=LOGNORMAL)
    strag = config(latency=LOGNORMAL, straggler={"probability": 0.2, "factor": 10})
    ratio = np.array([strag.latency_of(0, 0, (r, b, 0)) / base.latency_of(0, 0, (r, b, 0)) for r in range(40) for b in range(50)])
    assert set(np.round(ratio, 9)) == {1.0, 10.0}  # the same normal draw, scaled or not
    assert abs(np.mean(ratio > 1) - 0.2) < 0.03


# --- synchronous and asynchronous schedules ------------------------------------------------


def test_sync_batch_takes_its_slowest_latency():
    c = fixed(10.0, speeds=[1, 2, 0.5])
    clock = TeamClock(c, 3, seed=0)
    answers = clock.sync_batch([(7, 0, (0, 0, 0)), (8, 1, (0, 0, 1)), (9, 2, (0, 0, 2))])
    assert [a.answered_at for a in answers] == [10.0, 5.0, 20.0]
    assert clock.now == 20.0 and clock.busy == 35.0
    clock.sync_batch([(3, 1, (0, 1, 0))])
    assert clock.now == 25.0 and clock.busy == 40.0


def test_async_answers_come_back_by_finish_time_not_submission():
    # annotator 0 takes 10 s, annotator 1 takes 2.5 s: the second query is answered first
    clock = TeamClock(fixed(10.0, speeds=[1, 4]), 2, seed=0)
    clock.submit(100, (0, 0, 0))
    clock.submit(200, (0, 1, 0))
    with pytest.raises(RuntimeError, match="busy"):
        clock.submit(300, (0, 2, 0))
    first = clock.next_answer()
    assert (first.index, first.annotator, first.answered_at, clock.now) == (200, 1, 2.5, 2.5)
    clock.submit(300, (0, 2, 0))  # the free annotator (1) takes it at 2.5 s
    assert [(a.index, a.answered_at) for a in (clock.next_answer(), clock.next_answer())] == [(300, 5.0), (100, 10.0)]
    assert clock.now == 10.0 and clock.busy == 15.0


def test_async_fixed_list_is_pulled_by_the_first_free_annotator():
    # speeds 1 and 3 at 6 s: annotator 1 answers at 2, 4, 6, ...; annotator 0 at 6, 12
    clock = TeamClock(fixed(6.0, speeds=[1, 3]), 2, seed=0)
    answers = clock.schedule_list(list(range(8)), [(0, b, 0) for b in range(8)], 2)
    assert [a.annotator for a in sorted(answers, key=lambda a: a.index)] == [0, 1, 1, 1, 0, 1, 1, 1]
    assert [a.answered_at for a in answers] == [2, 4, 6, 6, 8, 10, 12, 12]
    assert clock.now == 12.0 and clock.busy == 24.0  # a perfectly packed team: utilisation 1


def test_instant_async_submissions_rotate_over_the_team():
    clock = TeamClock(AnnotationConfig(mode="async"), 3, seed=0)
    who = []
    for i in range(6):
        who.append(clock.submit(i, (0, i, 0)).annotator)
        clock.next_answer()
    assert who == [0, 1, 2, 0, 1, 2]


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 6),
    slots=st.integers(1, 6),
    n=st.integers(0, 40),
    seed=st.integers(0, 1000),
)
def test_async_list_invariants(size, slots, n, seed):
    slots = min(slots, size)
    clock = TeamClock(config(mode="async", latency=LOGNORMAL, speeds=[1, 2, 0.5]), size, seed)
    answers = clock.schedule_list(list(range(n)), [(0, b, 0) for b in range(n)], slots)
    assert sorted(a.index for a in answers) == list(range(n))
    finish = [a.answered_at for a in answers]
    assert finish == sorted(finish)  # answers in order of simulated finish time
    assert math.isclose(clock.busy, sum(a.seconds for a in answers))
    # at every moment at most `slots` queries are in flight, and an annotator does one at a time
    events = sorted([(a.started_at, 1) for a in answers] + [(a.answered_at, -1) for a in answers], key=lambda e: (e[0], e[1]))
    load = np.cumsum([d for _, d in events]) if events else np.zeros(1)
    assert load.max(initial=0) <= slots
    for who in range(size):
        mine = sorted((a.started_at, a.answered_at) for a in answers if a.annotator == who)
        assert all(prev[1] <= nxt[0] + 1e-9 for prev, nxt in zip(mine, mine[1:]))
    if n:
        assert clock.busy <= slots * clock.now + 1e-6


# --- rounds that overlap -------------------------------------------------------------------


def overlapping_round() -> TeamClock:
    """Two annotators at 10 s and 40 s a label, two slots: q0 (a0, 0-10), q1 (a1, 0-40), then q2 (a0, 10-20)."""
    clock = TeamClock(fixed(10.0, mode="async", speeds=[1, 0.25]), 2, seed=0)
    clock.submit(0, (1, 0, 0))
    clock.submit(1, (1, 1, 0))
    assert clock.next_answer().index == 0
    clock.submit(2, (1, 2, 0))  # the round's last query, placed at 10 s
    assert [clock.next_answer().index for _ in range(2)] == [2, 1]
    return clock


def test_a_round_that_overlaps_ends_when_few_enough_labels_are_out():
    clock = overlapping_round()
    # after the last submission (10 s) both slots are busy until q2 is answered at 20 s
    assert clock.close_round(slots=2, overlap=1) == 20.0
    assert clock.free_at == [20.0, 40.0]  # annotator 1 is still on q1
    # the next round: the free annotator starts at once, the next query waits for annotator 1
    first, second = clock.submit(3, (2, 0, 0)), clock.submit(4, (2, 1, 0))
    assert (first.annotator, first.started_at, second.annotator, second.started_at) == (0, 20.0, 1, 40.0)
    assert [clock.next_answer().answered_at for _ in range(2)] == [30.0, 80.0]
    assert clock.close_round(slots=2, overlap=0) == 80.0


def test_a_round_that_waits_ends_with_its_last_label():
    assert overlapping_round().close_round(slots=2, overlap=0) == 40.0
    # the overlap is capped at slots - 1: with two slots, at most one label may be out
    assert overlapping_round().close_round(slots=2, overlap=5) == 20.0
    assert overlapping_round().close_round(slots=2, overlap=9) == 20.0  # no limit: the first free slot
    # one slot (a sequential strategy): the round's only query in flight is its last label
    assert overlapping_round().close_round(slots=1, overlap=3) == 40.0
    # three slots: the two labels out at the last submission may stay out, so it ends right then;
    # with overlap 1 it ends when one of them is back
    assert overlapping_round().close_round(slots=3, overlap=2) == 10.0
    assert overlapping_round().close_round(slots=3, overlap=1) == 20.0


def test_a_round_cannot_end_with_its_own_queries_unanswered():
    clock = TeamClock(fixed(1.0, mode="async"), 2, seed=0)
    clock.submit(0, (0, 0, 0))
    with pytest.raises(RuntimeError, match="in flight"):
        clock.close_round(slots=2, overlap=1)


def test_free_at_must_match_the_team():
    with pytest.raises(ValueError, match="free_at has 1 entries for a team of 2"):
        TeamClock(fixed(1.0, mode="async"), 2, seed=0, free_at=[3.0])


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 6), slots=st.integers(1, 6), sizes=st.lists(st.integers(1, 30), min_size=1, max_size=5),
       overlap=st.integers(0, 6), seed=st.integers(0, 1000))
def test_overlapping_rounds_invariants(size, slots, sizes, overlap, seed):
    """Over several rounds: a round ends no earlier than its last submission and no later than its
    last label, leaves at most ``min(overlap, slots - 1)`` of its labels out, an annotator does one query at a
    time across rounds, and the trial ends when every label is in."""
    slots = min(slots, size)
    for overlap in (overlap, 0):
        clock = TeamClock(config(mode="async", latency=LOGNORMAL, speeds=[1, 2, 0.5]), size, seed)
        answers, key = [], 0
        for round_, n in enumerate(sizes):
            start = clock.now
            mine = clock.schedule_list(list(range(key, key + n)), [(round_, b, 0) for b in range(n)], slots)
            key += n
            answers += mine
            end = clock.close_round(slots, overlap if round_ < len(sizes) - 1 else 0)
            assert start <= end <= max(a.answered_at for a in answers) + 1e-9
            assert sum(a.answered_at > end for a in mine) <= min(overlap, slots - 1)
            assert all(a.started_at >= start - 1e-9 for a in mine)
        assert math.isclose(clock.now, max(a.answered_at for a in answers))  # the last round waits for every label
        for who in range(size):
            spans = sorted((a.started_at, a.answered_at) for a in answers if a.annotator == who)
            assert all(prev[1] <= nxt[0] + 1e-9 for prev, nxt in zip(spans, spans[1:]))
        assert clock.busy <= size * clock.now + 1e-6


# --- the annotate object -------------------------------------------------------------------


def truth_labels(truth):
    return lambda idx, who, keys: truth[idx]


def test_simulated_team_sync_keys_and_rotation_match_the_runtime():
    seen = []

    def labels(idx, who, keys):
        seen.extend(zip(idx.tolist(), who.tolist(), keys))
        return np.zeros(idx.size, dtype=np.int64)

    team = SimulatedTeam(TeamClock(fixed(1.0), 3, seed=0), labels, round_=4)
    team(np.array([5, 6]))
    team.queue(np.array([7, 8, 9, 10]), 2)
    assert seen == [(5, 0, (4, 0, 0)), (6, 1, (4, 0, 1)), (7, 1, (4, 1, 0)), (8, 2, (4, 1, 1)),
                    (9, 2, (4, 2, 0)), (10, 0, (4, 2, 1))]
    assert team.clock.now == 3.0 and not hasattr(team, "submit")


def test_galaxy_clock_is_the_sum_of_its_latencies_in_both_modes():
    rng = np.random.default_rng(0)
    truth = (rng.random(400) > 0.1).astype(np.int64)
    probs = np.clip(rng.normal(0.5, 0.3, 400), 0.01, 0.99)
    probs = np.stack([1 - probs, probs], axis=1)
    observed = np.full(400, -1)
    for mode in ("sync", "async"):
        team = SimulatedTeam(TeamClock(config(mode=mode, latency=LOGNORMAL), 5, seed=1), truth_labels(truth), 1)
        make_strategy("galaxy", b_parallel=5).select(probs, observed, 30, team, np.random.default_rng(0))
        assert math.isclose(team.clock.now, team.clock.busy)  # one query at a time: no overlap
        assert len(team.log.indices) == 30


def binary_pool(seed: int, n: int, rare: float, separation: float, labeled: int):
    """A random two-class pool: true labels (``rare`` of class 0), softmax scores that separate
    the classes by ``separation``, and the first ``labeled`` examples labeled."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) > rare).astype(np.int64)
    logits = rng.normal(size=(n, 2)) + separation * np.eye(2)[truth]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    observed = np.full(n, -1)
    observed[:labeled] = truth[:labeled]
    return truth, probs, observed


@pytest.mark.parametrize("name", ["random", "confidence", "direct"])
def test_async_batch_and_direct_keep_the_team_busier_than_sync(name):
    # One round of 300 labels by 10 annotators, lognormal sigma 1, pooled over 6 clock seeds
    # (a single round can end on one very slow label: per seed 0.77-0.96 for DIRECT).
    truth, probs, observed = binary_pool(1, 2000, rare=0.1, separation=2.0, labeled=20)
    utilisation = {}
    for mode in ("sync", "async"):
        busy = wall = 0.0
        for seed in range(6):
            team = SimulatedTeam(TeamClock(config(mode=mode, latency=LOGNORMAL), 10, seed=seed), truth_labels(truth), 1)
            bought = make_strategy(name, b_parallel=10).select(probs, observed, 300, team, np.random.default_rng(seed))
            assert np.array_equal(bought, team.log.indices)  # bought in the order the answers came
            if mode == "async":
                assert team.log.answered_at == sorted(team.log.answered_at)
            busy, wall = busy + team.clock.busy, wall + team.clock.now
        utilisation[mode] = busy / (10 * wall)
    assert utilisation["sync"] < 0.5 < 0.83 <= utilisation["async"] <= 1.0


def test_an_asynchronous_round_never_touches_labels_still_out():
    """DIRECT's asynchronous round with pending labels buys through the team in pool indices,
    exactly what it buys on the pool without them."""
    n = 600
    truth, probs, observed = binary_pool(3, n, rare=0.15, separation=1.5, labeled=40)
    pending = np.arange(20, 40)  # bought last round, still out
    keep = np.setdiff1d(np.arange(n), pending)
    runs = []
    for shown, labels_of, hidden in ((observed, truth, pending), (observed[keep], truth[keep], None)):
        team = SimulatedTeam(TeamClock(config(mode="async", latency=LOGNORMAL), 5, seed=2), truth_labels(labels_of), 1)
        bought = make_strategy("direct", b_parallel=5).select(probs if hidden is not None else probs[keep], shown, 60,
                                                             team, np.random.default_rng(0), pending=hidden)
        assert np.array_equal(bought, team.log.indices)
        runs.append((bought, team.log.answered_at))
    (bought, times), (sub, sub_times) = runs
    assert np.intersect1d(bought, np.arange(40)).size == 0
    assert np.array_equal(bought, keep[sub]) and times == sub_times
