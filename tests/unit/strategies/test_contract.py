"""The selection contract, checked for every registered strategy.

Every name in ``STRATEGY_NAMES`` runs the same checks (in the spirit of small-text's and
scikit-activeml's template tests): exact budget, no duplicates, never an already-labeled
index, at most ``effective_b_parallel`` indices per ``annotate`` call, the returned order
equal to the order of the calls, inputs left untouched, pool exhaustion, determinism under
a seed, and clear errors for bad input. Pools are random and small, so the whole file runs
in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from direct_ray.strategies import STRATEGY_NAMES, SelectionError, make_strategy

EMBEDDING_DIM = 6


@dataclass
class Pool:
    probs: np.ndarray
    truth: np.ndarray
    observed: np.ndarray
    embeddings: np.ndarray

    @property
    def n_unlabeled(self) -> int:
        return int(np.count_nonzero(self.observed == -1))


def make_pool(
    seed: int, n: int, k: int, n_labeled: int, *, ties: bool = False, dtype=np.float64, label_dtype=np.int64
) -> Pool:
    """A random pool; ``ties=True`` rounds the probabilities so that many rows coincide."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=n)
    if ties:
        probs = np.round(probs, 1)
        probs /= probs.sum(axis=1, keepdims=True)
    truth = rng.integers(0, k, n)
    observed = np.full(n, -1, dtype=label_dtype)
    labeled = rng.choice(n, n_labeled, replace=False)
    observed[labeled] = truth[labeled]
    return Pool(probs.astype(dtype), truth, observed, rng.normal(size=(n, EMBEDDING_DIM)))


class Oracle:
    """A noise-free annotator that enforces the call-size limit and records every call."""

    def __init__(self, truth: np.ndarray, limit: int) -> None:
        self.truth = truth
        self.limit = limit
        self.calls: list[np.ndarray] = []

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        assert indices.ndim == 1 and np.issubdtype(indices.dtype, np.integer)
        assert 1 <= indices.size <= self.limit, f"annotate called with {indices.size} > {self.limit} indices"
        self.calls.append(indices.copy())
        return self.truth[indices]


class QueueingOracle(Oracle):
    """An oracle that also takes fixed lists in one go (``annotate.queue``), as the runtime's does.

    It records a queued list as the batches it stands for, so its ``calls`` can be compared
    with those of a plain :class:`Oracle`.
    """

    def __init__(self, truth: np.ndarray, limit: int) -> None:
        super().__init__(truth, limit)
        self.queued = 0

    def queue(self, indices: np.ndarray, b_parallel: int) -> np.ndarray:
        assert b_parallel == self.limit, f"queue batches of {b_parallel}, effective b_parallel is {self.limit}"
        self.queued += 1
        return np.concatenate([self(indices[s : s + b_parallel]) for s in range(0, len(indices), b_parallel)])


def run(name: str, pool: Pool, budget: int, b_parallel: int, seed: int = 0, strategy=None, oracle_type=Oracle):
    """Select once (with a fresh strategy unless one is given); check the contract.

    Returns ``(bought, oracle calls)``.
    """
    strategy = make_strategy(name, b_parallel=b_parallel) if strategy is None else strategy
    assert strategy.name == name
    expected_parallel = 1 if strategy.sequential_only else b_parallel
    assert strategy.effective_b_parallel == expected_parallel
    embeddings = pool.embeddings if strategy.needs_embeddings else None
    inputs = (pool.probs.copy(), pool.observed.copy(), pool.embeddings.copy())
    oracle = oracle_type(pool.truth, expected_parallel)

    bought = strategy.select(
        pool.probs, pool.observed, budget, oracle, np.random.default_rng(seed), embeddings=embeddings
    )

    assert isinstance(bought, np.ndarray) and bought.ndim == 1 and np.issubdtype(bought.dtype, np.integer)
    assert bought.size == min(budget, pool.n_unlabeled), "exact budget unless the pool runs out"
    assert np.unique(bought).size == bought.size, "an index was bought twice"
    assert np.all((bought >= 0) & (bought < len(pool.truth)))
    assert np.all(pool.observed[bought] == -1), "an already-labeled index was bought"
    calls = np.concatenate(oracle.calls) if oracle.calls else np.empty(0, dtype=np.int64)
    assert np.array_equal(calls, bought), "returned order must be the order of the annotate calls"
    for before, after in zip(inputs, (pool.probs, pool.observed, pool.embeddings)):
        assert np.array_equal(before, after), "select mutated its input"
    return bought, oracle.calls


SETTINGS = [
    # (n, k, b_parallel, budget, n_labeled)
    (1, 2, 1, 1, 0),
    (50, 2, 1, 10, 5),
    (120, 3, 5, 23, 10),
    (200, 10, 4, 40, 30),
    (30, 4, 8, 7, 0),  # b_parallel larger than the budget
    (40, 3, 3, 60, 15),  # budget larger than the unlabeled pool: buys all 25
]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("n, k, b_parallel, budget, n_labeled", SETTINGS)
def test_contract(name, n, k, b_parallel, budget, n_labeled):
    pool = make_pool(n * k + budget, n, k, n_labeled)
    run(name, pool, budget, b_parallel)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_pool_exhaustion(name):
    pool = make_pool(1, 20, 3, 8)
    assert run(name, pool, 100, 3)[0].size == 12  # buys all that remain
    for budget, p in [(0, pool), (5, make_pool(2, 20, 3, 20))]:  # budget 0; fully labeled pool
        bought, calls = run(name, p, budget, 3)
        assert bought.size == 0 and calls == []


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_deterministic_under_a_seed(name):
    pool = make_pool(3, 150, 3, 12, ties=True)
    bought, calls = run(name, pool, 30, 4, seed=5)
    again, calls_again = run(name, pool, 30, 4, seed=5)
    assert np.array_equal(bought, again)
    assert [c.tolist() for c in calls] == [c.tolist() for c in calls_again]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("n, k, b_parallel, budget, n_labeled", SETTINGS)
def test_a_queueing_annotate_changes_nothing_bought(name, n, k, b_parallel, budget, n_labeled):
    # Noisy answers (a fixed function of the index), so that an adaptive strategy's choices
    # depend on them: the queue path must give the same purchases, batch for batch.
    pool = make_pool(n * k + budget + 1, n, k, n_labeled)
    pool.truth = np.where(np.arange(n) % 3 == 0, (pool.truth + 1) % k, pool.truth)
    bought, calls = run(name, pool, budget, b_parallel, seed=3)
    queued_bought, queued_calls = run(name, pool, budget, b_parallel, seed=3, oracle_type=QueueingOracle)
    assert np.array_equal(bought, queued_bought)
    assert [c.tolist() for c in calls] == [c.tolist() for c in queued_calls]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_pending_labels_are_neither_bought_nor_seen(name):
    """``pending`` (labels bought earlier, not back yet): the strategy selects exactly as on the
    pool without them, whatever ``observed`` holds for them, and never buys one."""
    pool = make_pool(11, 150, 3, 20)
    rng = np.random.default_rng(4)
    pending = np.sort(rng.choice(150, 25, replace=False))
    pool.observed[pending] = pool.truth[pending]  # bought; the labels are recorded but not back
    keep = np.setdiff1d(np.arange(150), pending)
    strategy = make_strategy(name, b_parallel=4)
    embeddings = pool.embeddings if strategy.needs_embeddings else None
    oracle = Oracle(pool.truth, strategy.effective_b_parallel)
    bought = strategy.select(pool.probs, pool.observed, 30, oracle, np.random.default_rng(1), embeddings=embeddings,
                             pending=pending)
    assert np.intersect1d(bought, pending).size == 0 and np.all(pool.observed[bought] == -1)
    assert np.array_equal(np.concatenate(oracle.calls), bought)  # pool indices reach the annotators
    sub = make_strategy(name, b_parallel=4).select(
        pool.probs[keep], pool.observed[keep], 30, Oracle(pool.truth[keep], strategy.effective_b_parallel),
        np.random.default_rng(1), embeddings=None if embeddings is None else embeddings[keep])
    assert np.array_equal(bought, keep[sub])
    other = pool.observed.copy()
    other[pending] = (other[pending] + 1) % 3  # what the pending labels will say cannot matter yet
    again = make_strategy(name, b_parallel=4).select(pool.probs, other, 30, Oracle(pool.truth, strategy.effective_b_parallel),
                                                    np.random.default_rng(1), embeddings=embeddings, pending=pending)
    assert np.array_equal(bought, again)


def test_pending_must_be_pool_indices():
    pool = make_pool(1, 20, 2, 5)
    with pytest.raises(ValueError, match="pending indices must lie in 0..19"):
        make_strategy("random", b_parallel=2).select(pool.probs, pool.observed, 3, Oracle(pool.truth, 2),
                                                     np.random.default_rng(0), pending=np.array([20]))


def test_batch_strategies_and_directs_phase_two_queue_their_lists():
    pool = make_pool(11, 200, 2, 10)
    for name, expected in [("random", 1), ("confidence", 1), ("direct", 2), ("galaxy", 0)]:
        strategy = make_strategy(name, b_parallel=4)
        oracle = QueueingOracle(pool.truth, strategy.effective_b_parallel)
        strategy.select(pool.probs, pool.observed, 40, oracle, np.random.default_rng(0))
        assert oracle.queued == expected, name  # DIRECT: one phase-2 list per class


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_one_instance_serves_several_rounds(name):
    # The runtime keeps one strategy object for a whole trial.
    pool = make_pool(7, 80, 3, 6)
    strategy = make_strategy(name, b_parallel=3)
    for round_ in range(3):
        bought, _ = run(name, pool, 10, 3, seed=round_, strategy=strategy)
        pool.observed[bought] = pool.truth[bought]
    assert pool.n_unlabeled == 80 - 6 - 30


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(2, 5),
    b_parallel=st.integers(1, 6),
    budget=st.integers(0, 50),
    labeled_fraction=st.floats(0, 1),
    ties=st.booleans(),
    float32=st.booleans(),
    int32_labels=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_contract_property(name, n, k, b_parallel, budget, labeled_fraction, ties, float32, int32_labels, seed):
    pool = make_pool(
        seed,
        n,
        k,
        int(labeled_fraction * n),
        ties=ties,
        dtype=np.float32 if float32 else np.float64,
        label_dtype=np.int32 if int32_labels else np.int64,
    )
    run(name, pool, budget, b_parallel, seed=seed)


def test_galaxy_is_sequential():
    galaxy = make_strategy("galaxy", b_parallel=5)
    assert galaxy.sequential_only and galaxy.effective_b_parallel == 1 and galaxy.b_parallel == 5


# --- bad input ---------------------------------------------------------------------------


def _bad_inputs():
    pool = make_pool(4, 12, 3, 3)
    p, o, e = pool.probs, pool.observed, pool.embeddings
    nan = p.copy()
    nan[0, 0] = np.nan
    return {
        "probs 1-D": dict(probs=p[:, 0]),
        "one class": dict(probs=p[:, :1]),
        "integer probs": dict(probs=(p > 0.5).astype(int)),
        "NaN probs": dict(probs=nan),
        "observed too short": dict(observed=o[:-1]),
        "observed float": dict(observed=o.astype(float)),
        "label = K": dict(observed=np.where(o == -1, -1, 3)),
        "label < -1": dict(observed=np.where(o == -1, -2, o)),
        "negative budget": dict(budget=-1),
        "float budget": dict(budget=2.5),
        "bool budget": dict(budget=True),
        "embeddings wrong N": dict(embeddings=e[:-1]),
        "embeddings 1-D": dict(embeddings=e[:, 0]),
    }, pool


BAD_INPUTS = list(_bad_inputs()[0])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_value_error(name, case):
    cases, pool = _bad_inputs()
    strategy = make_strategy(name, b_parallel=2)
    args = dict(probs=pool.probs, observed=pool.observed, budget=4, embeddings=pool.embeddings) | cases[case]
    oracle = Oracle(pool.truth, 2)
    with pytest.raises(ValueError):
        strategy.select(args["probs"], args["observed"], args["budget"], oracle, np.random.default_rng(0),
                        embeddings=args["embeddings"])
    assert oracle.calls == [], "no label may be bought before the input is validated"


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_missing_embeddings(name):
    pool = make_pool(5, 12, 3, 3)
    strategy = make_strategy(name)
    if not strategy.needs_embeddings:
        # Strategies that do not need embeddings accept and ignore them.
        with_emb = strategy.select(pool.probs, pool.observed, 4, Oracle(pool.truth, 1), np.random.default_rng(0),
                                   embeddings=pool.embeddings)
        without = strategy.select(pool.probs, pool.observed, 4, Oracle(pool.truth, 1), np.random.default_rng(0))
        assert np.array_equal(with_emb, without)
        return
    with pytest.raises(ValueError, match="needs embeddings"):
        strategy.select(pool.probs, pool.observed, 4, Oracle(pool.truth, 1), np.random.default_rng(0))


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize(
    "answer, match",
    [
        (lambda idx: np.zeros(len(idx) + 1, dtype=np.int64), "labels for"),
        (lambda idx: np.full(len(idx), 7), "label outside"),
    ],
    ids=["wrong count", "label out of range"],
)
def test_a_broken_annotator_is_a_selection_error(name, answer, match):
    pool = make_pool(6, 20, 3, 3)
    strategy = make_strategy(name, b_parallel=2)
    embeddings = pool.embeddings if strategy.needs_embeddings else None
    with pytest.raises(SelectionError, match=match):
        strategy.select(pool.probs, pool.observed, 4, answer, np.random.default_rng(0), embeddings=embeddings)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("b_parallel", [0, -1, 1.5, True])
def test_bad_b_parallel(name, b_parallel):
    with pytest.raises(ValueError, match="b_parallel must be an integer >= 1"):
        make_strategy(name, b_parallel=b_parallel)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown strategy 'dirct'; choose one of: direct, galaxy"):
        make_strategy("dirct")


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_state_round_trips_and_stateless_strategies_refuse_state(name):
    strategy = make_strategy(name)
    strategy.set_state(strategy.get_state())
    if name != "cluster_margin":
        with pytest.raises(ValueError, match="keeps no state"):
            strategy.set_state({"x": np.zeros(2)})


def test_buy_all_checks_the_whole_list_before_anything_is_queued():
    from direct_ray.strategies.base import LabelBuyer

    truth = np.arange(10) % 2
    for bad, message in [([1, 2, 1], "repeat"), ([0, 3], "already labeled"), (list(range(4, 10)), "remaining budget")]:
        oracle = QueueingOracle(truth, 2)
        buyer = LabelBuyer(np.array([-1, -1, -1, 0] + [-1] * 6), 2, 5, 2, oracle)
        with pytest.raises(SelectionError, match=message):
            buyer.buy_all(np.array(bad))
        assert oracle.queued == 0 and oracle.calls == [] and buyer.spent == 0
    short = QueueingOracle(truth, 2)
    short.queue = lambda indices, b_parallel: truth[indices][:-1]
    with pytest.raises(SelectionError, match="labels for"):
        LabelBuyer(np.full(10, -1), 2, 5, 2, short).buy_all(np.array([1, 2, 5]))
