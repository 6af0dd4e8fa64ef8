"""DIRECT's asynchronous VReduce and round, as mathematics: budget, in-flight limit, placement, cuts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from direct_ray.annotation import AnnotationConfig, SimulatedTeam, TeamClock
from direct_ray.strategies import STRATEGY_NAMES, SelectionError, make_strategy
from direct_ray.strategies.async_reduce import async_vreduce
from direct_ray.strategies.base import UNLABELED, LabelBuyer
from direct_ray.strategies.direct import vreduce
from direct_ray.strategies.reduction import LabelView
from tests.unit.strategies.test_contract import make_pool
from tests.unit.strategies.test_direct import separable_list

LOGNORMAL = {"model": "lognormal", "median": 30, "sigma": 1.0}
UNEVEN = {"mode": "async", "latency": LOGNORMAL, "speeds": [1, 1, 2, 0.5, 1]}

# Noise-free planted lists: the fraction of seeds whose final window is exactly the true cut.
# Measured over 200 seeds (n = 1000, b = 100): the synchronous VReduce 100 %, except 99.5 % at
# cut 100 with b_parallel 10; the asynchronous one 100 % for b_parallel 5 and 10 at both cuts.
CUT_SEEDS = 60
CUT_MARGIN = 0.05  # the asynchronous rate may be at most this far below the synchronous one
# 20 % uniform noise, n = 1000, cut 337, b = 100, b_parallel 10, 200 seeds: within 20
# positions of the cut in 73 % (sync) and 79.5 % (async) of the seeds.
NOISE_SEEDS = 100
NOISE_MARGIN = 0.10


class Spy:
    """An asynchronous annotate (a :class:`SimulatedTeam`) that records how many queries are in flight."""

    def __init__(self, truth: np.ndarray, size: int, config: dict, seed: int = 0) -> None:
        self.team = SimulatedTeam(TeamClock(AnnotationConfig.from_dict(config), size, seed), lambda i, w, k: truth[i], 1)
        self.truth = truth
        self.flying: set[int] = set()
        self.most = 0
        self.submitted: list[int] = []

    def submit(self, index: int) -> None:
        assert index not in self.flying
        self.team.submit(index)
        self.flying.add(index)
        self.submitted.append(index)
        self.most = max(self.most, len(self.flying))

    def next_answer(self) -> tuple[int, int]:
        index, label = self.team.next_answer()
        self.flying.remove(index)
        return index, label


def run_async(labels, budget, b_parallel, seed, *, observed=None, config=UNEVEN, clock_seed=None, k=0):
    """Asynchronous VReduce on the identity order (position p is pool index p - 1)."""
    n = labels.size
    observed = np.full(n, UNLABELED) if observed is None else observed
    spy = Spy(labels, b_parallel, config, seed if clock_seed is None else clock_seed)
    buyer = LabelBuyer(observed, 2, budget, b_parallel, spy)
    view = LabelView(buyer)
    return async_vreduce(view, np.arange(n), k, budget, np.random.default_rng(seed)), view, spy


def run_sync(labels, budget, b_parallel, seed, observed=None, k=0):
    n = labels.size
    observed = np.full(n, UNLABELED) if observed is None else observed
    view = LabelView(LabelBuyer(observed, 2, budget, b_parallel, lambda idx: labels[idx]))
    return vreduce(view, np.arange(n), k, budget, np.random.default_rng(seed)), view


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=400),
    cut_fraction=st.floats(min_value=0.0, max_value=1.0),
    budget=st.integers(min_value=0, max_value=60),
    b_parallel=st.integers(min_value=1, max_value=12),
    noise=st.sampled_from([0.0, 0.2]),
    prelabeled=st.integers(min_value=0, max_value=30),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_async_vreduce_budget_in_flight_and_placement(n, cut_fraction, budget, b_parallel, noise, prelabeled, seed):
    labels = separable_list(n, int(cut_fraction * n), noise, seed)
    observed = np.full(n, UNLABELED)
    already = np.random.default_rng(seed).choice(n, min(prelabeled, n - 1), replace=False)
    observed[already] = labels[already]
    result, view, spy = run_async(labels, budget, b_parallel, seed, observed=observed)
    lo, hi = result.window
    assert hi - lo == 1 or (budget == 0 and result.window == result.initial_window)  # also after an early stop
    assert result.steps == -(-budget // b_parallel)  # the synchronous schedule: m = ceil(b / B_parallel)
    # never past the budget (less only when the window runs out: the B_parallel = 1 test pins that down)
    assert result.spent == view.buyer.spent == len(spy.submitted) <= budget
    assert spy.most <= b_parallel  # never more than B_parallel in flight
    drawn = [d.index for d in result.draws]
    assert len(set(drawn)) == len(drawn) and not set(drawn) & set(already.tolist())  # never an index twice
    previous = result.initial_window
    for d in result.draws:
        assert d.index not in d.in_flight and len(d.in_flight) < b_parallel  # away from those in flight
        assert d.window[0] < d.index + 1 < d.window[1]  # strictly inside the current window
        assert previous[0] <= d.window[0] and d.window[1] <= previous[1]  # windows are nested
        previous = d.window
    assert previous[0] <= lo and hi <= previous[1]
    assert (view.labels[drawn] == labels[drawn]).all()


def test_b_parallel_one_is_the_synchronous_algorithm():
    labels = separable_list(500, 123, noise=0.1, seed=3)
    for seed in range(20):
        sync, _ = run_sync(labels, 40, 1, seed)
        result, _, spy = run_async(labels, 40, 1, seed)
        assert spy.submitted == np.concatenate(sync.batches).tolist()
        assert result.window == sync.window and result.initial_window == sync.initial_window


def test_hand_worked_first_queries_fill_the_window_without_repeats():
    # 4 positions, nothing labeled: window (0, 5) holds h_0..h_4; candidates are positions 1..4.
    # With b_parallel 4 the first four draws go out before any answer: they are the whole
    # window, each once, and each saw the earlier ones in flight.
    labels = separable_list(4, 2)
    result, _, spy = run_async(labels, 4, 4, seed=0, config={"mode": "async", "latency": {"model": "fixed", "seconds": 5}})
    assert result.initial_window == (0, 5)
    assert sorted(spy.submitted) == [0, 1, 2, 3]
    assert [len(d.in_flight) for d in result.draws] == [0, 1, 2, 3]
    assert [d.window for d in result.draws] == [(0, 5)] * 4
    assert result.window == (2, 3)  # h_2: positions 1, 2 are class 0


def test_hand_worked_steps_wait_for_answers_and_queries_come_from_the_shrunk_window():
    # 9 positions (W0 = 10), cut after 4, b = 6, b_parallel 2: m = 3 steps of widths
    # round(10 ** (2/3)) = 5, round(10 ** (1/3)) = 2, 1, after 3, 5 and 6 answers. Fixed 8 s
    # labels; annotator 1 is four times faster (2 s). Timeline:
    #   0 s: q1 -> annotator 0 (until 8 s), q2 -> annotator 1 (until 2 s)
    #   2 s: q2 back (1 answer); q3 -> annotator 1, from the initial window
    #   4 s: q3 back (2); q4 -> annotator 1, from the initial window
    #   6 s: q4 back (3): step 1, width 5; q5 -> annotator 1, from the width-5 window, q1 in flight
    #   8 s: q1 back (4; before q5, which also ends at 8 s but was submitted later); q6 -> annotator 0
    #   8 s: q5 back (5): step 2, width 2;  16 s: q6 back (6): step 3, width 1
    labels = separable_list(9, 4)
    config = {"mode": "async", "latency": {"model": "fixed", "seconds": 8}, "speeds": [1, 4]}
    result, view, spy = run_async(labels, 6, 2, seed=1, config=config)
    q = [d.index for d in result.draws]
    assert [d.window for d in result.draws[:4]] == [(0, 10)] * 4
    assert [d.window[1] - d.window[0] for d in result.draws[4:]] == [5, 5]
    assert [set(d.in_flight) for d in result.draws] == [set(), {q[0]}, {q[0]}, {q[0]}, {q[0]}, {q[4]}]
    assert spy.team.log.indices == [q[1], q[2], q[3], q[0], q[4], q[5]]
    assert spy.team.log.answered_at == [2, 4, 6, 8, 8, 16]
    lo, hi = result.window
    assert hi - lo == 1 and result.steps == 3
    bought = np.flatnonzero(view.labels != UNLABELED) + 1  # a hypothesis consistent with every label
    assert (labels[bought[bought <= lo] - 1] == 0).all() and (labels[bought[bought > lo] - 1] == 1).all()


@pytest.mark.parametrize("cut", [337, 100])
@pytest.mark.parametrize("b_parallel", [5, 10])
def test_finds_a_clean_cut_as_reliably_as_the_synchronous_version(cut, b_parallel):
    labels = separable_list(1000, cut)
    sync = np.mean([run_sync(labels, 100, b_parallel, seed)[0].window == (cut, cut + 1) for seed in range(CUT_SEEDS)])
    asyn = np.mean([run_async(labels, 100, b_parallel, seed)[0].window == (cut, cut + 1) for seed in range(CUT_SEEDS)])
    assert asyn >= sync - CUT_MARGIN
    assert asyn >= 0.95


def test_lands_near_a_noisy_cut_as_often_as_the_synchronous_version():
    near_sync, near_async = [], []
    for seed in range(NOISE_SEEDS):
        labels = separable_list(1000, 337, noise=0.2, seed=10_000 + seed)
        near_sync.append(abs(run_sync(labels, 100, 10, seed)[0].window[0] - 337) <= 20)
        near_async.append(abs(run_async(labels, 100, 10, seed)[0].window[0] - 337) <= 20)
    assert np.mean(near_async) >= np.mean(near_sync) - NOISE_MARGIN


def test_deterministic_under_seeds_and_answer_order_follows_simulated_time():
    labels = separable_list(800, 300, noise=0.1, seed=1)
    a, _, spy_a = run_async(labels, 60, 6, seed=4, clock_seed=9)
    b, _, spy_b = run_async(labels, 60, 6, seed=4, clock_seed=9)
    assert a == b and spy_a.submitted == spy_b.submitted
    times = spy_a.team.log.answered_at
    assert times == sorted(times) and len(times) == a.spent
    other, _, _ = run_async(labels, 60, 6, seed=4, clock_seed=10)  # other latencies, other answer order
    assert [d.index for d in other.draws] != [d.index for d in a.draws]


def test_needs_an_asynchronous_annotate():
    view = LabelView(LabelBuyer(np.full(10, UNLABELED), 2, 3, 2, lambda idx: np.zeros(len(idx), dtype=np.int64)))
    with pytest.raises(SelectionError, match="submit and next_answer"):
        async_vreduce(view, np.arange(10), 0, 3, np.random.default_rng(0))


# --- whole DIRECT rounds -------------------------------------------------------------------


def imbalanced_pool(n=3000, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.choice(num_classes, n, p=[0.05, 0.1, 0.85][-num_classes:] if num_classes == 3 else [0.1, 0.9])
    logits = rng.normal(size=(n, num_classes)) + 2.0 * np.eye(num_classes)[truth]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    observed = np.full(n, UNLABELED)
    observed[:30] = truth[:30]
    return probs, truth, observed


@settings(max_examples=25, deadline=None)
@given(
    budget=st.integers(min_value=0, max_value=150),
    b_parallel=st.integers(min_value=1, max_value=12),
    num_classes=st.sampled_from([2, 3]),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_direct_round_buys_exactly_the_budget_with_at_most_b_parallel_in_flight(budget, b_parallel, num_classes, seed):
    probs, truth, observed = imbalanced_pool(600, num_classes, seed)
    spy = Spy(truth, b_parallel, UNEVEN, seed)
    bought = make_strategy("direct", b_parallel=b_parallel).select(probs, observed, budget, spy, np.random.default_rng(seed))
    assert bought.size == budget and np.unique(bought).size == budget
    assert (observed[bought] == UNLABELED).all()
    assert spy.most <= b_parallel and not spy.flying
    assert sorted(spy.submitted) == sorted(bought.tolist())
    assert bought.tolist() == spy.team.log.indices  # in the order the answers came back


def test_direct_round_exhausts_a_small_pool():
    probs, truth, observed = imbalanced_pool(60, 2, 1)
    spy = Spy(truth, 7, UNEVEN)
    bought = make_strategy("direct", b_parallel=7).select(probs, observed, 500, spy, np.random.default_rng(0))
    assert sorted(bought.tolist()) == np.flatnonzero(observed == UNLABELED).tolist()


OPTIONS = [
    ("direct", {}),
    ("direct_paper", {}),
    ("direct", {"threshold_tie": "lowest", "phase1_fraction": 0.3, "phase1_cap": 10, "version_space": "near_optimal",
                "version_space_slack": 2, "phase1_order": "most_first", "phase2_order": "fewest_first"}),
]


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("name, options", OPTIONS, ids=["direct", "direct_paper", "options"])
def test_direct_round_with_b_parallel_one_is_the_synchronous_round(num_classes, name, options):
    probs, truth, observed = imbalanced_pool(2000, num_classes, 2)
    for seed in range(4):
        sync = make_strategy(name, b_parallel=1, **options).select(
            probs, observed, 120, lambda i: truth[i], np.random.default_rng(seed))
        spy = Spy(truth, 1, UNEVEN, seed)
        asyn = make_strategy(name, b_parallel=1, **options).select(probs, observed, 120, spy, np.random.default_rng(seed))
        assert np.array_equal(sync, asyn)


def test_direct_round_finds_as_many_rare_examples_as_the_synchronous_round():
    probs, truth, observed = imbalanced_pool(3000, 3, 4)
    rare_sync, rare_async = [], []
    for seed in range(8):
        sync = make_strategy("direct", b_parallel=10).select(probs, observed, 200, lambda i: truth[i], np.random.default_rng(seed))
        asyn = make_strategy("direct", b_parallel=10).select(probs, observed, 200, Spy(truth, 10, UNEVEN, seed), np.random.default_rng(seed))
        rare_sync.append(np.count_nonzero(truth[sync] < 2))
        rare_async.append(np.count_nonzero(truth[asyn] < 2))
    assert np.mean(rare_async) >= 0.9 * np.mean(rare_sync)


# --- the buyer's asynchronous contract -----------------------------------------------------


class Liar(Spy):
    """An asynchronous annotate that answers an index it was never asked about."""

    def next_answer(self) -> tuple[int, int]:
        index, label = super().next_answer()
        return index + 1, label


def test_buyer_enforces_the_asynchronous_contract():
    truth = np.zeros(20, dtype=np.int64)
    buyer = LabelBuyer(np.full(20, UNLABELED), 2, 5, 2, Spy(truth, 2, UNEVEN))
    buyer.submit(3)
    with pytest.raises(SelectionError, match="already in flight"):
        buyer.submit(3)
    buyer.submit(4)
    with pytest.raises(SelectionError, match="2 queries already in flight, b_parallel=2"):
        buyer.submit(5)
    buyer.drain()
    with pytest.raises(SelectionError, match="already labeled"):
        buyer.submit(3)
    with pytest.raises(SelectionError, match="no query in flight"):
        buyer.next_answer()
    buyer.submit_all(np.array([6, 7, 8]))  # pulls: waits for an answer before the third goes out
    buyer.drain()
    with pytest.raises(SelectionError, match="remaining budget"):
        buyer.submit(9)
    assert sorted(buyer.bought().tolist()) == [3, 4, 6, 7, 8] and buyer.spent == 5
    liar = LabelBuyer(np.full(20, UNLABELED), 2, 5, 2, Liar(truth, 2, UNEVEN))
    liar.submit(3)
    with pytest.raises(SelectionError, match="not in flight"):
        liar.next_answer()
    with pytest.raises(SelectionError, match="offers submit and next_answer"):
        LabelBuyer(np.full(20, UNLABELED), 2, 5, 2, lambda idx: truth[idx]).submit(3)


# --- every strategy with asynchronous annotators -------------------------------------------


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("n, k, b_parallel, budget, n_labeled", [(50, 2, 1, 10, 5), (120, 3, 5, 23, 10), (40, 3, 3, 60, 15)])
def test_every_strategy_buys_its_budget_asynchronously(name, n, k, b_parallel, budget, n_labeled):
    pool = make_pool(n * k + budget, n, k, n_labeled)
    strategy = make_strategy(name, b_parallel=b_parallel)
    spy = Spy(pool.truth, b_parallel, UNEVEN, seed=n)
    embeddings = pool.embeddings if strategy.needs_embeddings else None
    bought = strategy.select(pool.probs, pool.observed, budget, spy, np.random.default_rng(0), embeddings=embeddings)
    assert bought.size == min(budget, pool.n_unlabeled) and np.unique(bought).size == bought.size
    assert (pool.observed[bought] == UNLABELED).all()
    assert spy.most <= strategy.effective_b_parallel and not spy.flying
    assert bought.tolist() == spy.team.log.indices  # in the order the answers came back
    again = make_strategy(name, b_parallel=b_parallel).select(
        pool.probs, pool.observed, budget, Spy(pool.truth, b_parallel, UNEVEN, seed=n), np.random.default_rng(0),
        embeddings=embeddings)
    assert np.array_equal(bought, again)  # deterministic under the seeds
