"""The cheap baselines on hand-worked pools with known answers, and against plain numpy.

The 5-example, 3-class pool below (class 2 is the majority):

=====  ==================  =====  ======  =======  ===========
row    probs               max    margin  entropy  1 - p[2]
=====  ==================  =====  ======  =======  ===========
0      0.50  0.30  0.20    0.50   0.20    1.0297   0.80
1      0.40  0.35  0.25    0.40   0.05    1.0805   0.75
2      0.90  0.05  0.05    0.90   0.85    0.3944   0.95
3      0.34  0.33  0.33    0.34   0.01    1.0986   0.67
4      0.45  0.45  0.10    0.45   0.00    0.9489   0.90
=====  ==================  =====  ======  =======  ===========
"""

from __future__ import annotations

import numpy as np
import pytest

from direct_ray.strategies import make_strategy
from direct_ray.strategies.uncertainty import MostLikelyPositive

POOL = np.array(
    [
        [0.50, 0.30, 0.20],
        [0.40, 0.35, 0.25],
        [0.90, 0.05, 0.05],
        [0.34, 0.33, 0.33],
        [0.45, 0.45, 0.10],
    ]
)
TRUTH = np.array([0, 1, 0, 2, 1])


def select(name, probs, observed=None, budget=None, **options):
    observed = np.full(len(probs), -1) if observed is None else np.asarray(observed)
    budget = int((observed == -1).sum()) if budget is None else budget
    strategy = make_strategy(name, b_parallel=2, **options)
    return strategy.select(probs, observed, budget, lambda idx: idx % probs.shape[1], np.random.default_rng(0))


@pytest.mark.parametrize(
    "name, order",
    [
        ("confidence", [3, 1, 4, 0, 2]),  # lowest max probability first
        ("margin", [4, 3, 1, 0, 2]),  # smallest top1 - top2 first
        ("entropy", [3, 1, 0, 4, 2]),  # highest entropy first
        ("mlp", [2, 4, 0, 1, 3]),  # highest minority probability 1 - p[2] first
    ],
)
def test_hand_worked_order(name, order):
    assert select(name, POOL).tolist() == order
    assert select(name, POOL, budget=2).tolist() == order[:2]


@pytest.mark.parametrize(
    "name, labeled, order",
    [("confidence", 3, [1, 4]), ("margin", 4, [3, 1]), ("entropy", 3, [1, 0]), ("mlp", 2, [4, 0])],
)
def test_the_top_pick_is_skipped_once_labeled(name, labeled, order):
    observed = np.full(5, -1)
    observed[labeled] = TRUTH[labeled]
    assert select(name, POOL, observed, budget=2).tolist() == order


def test_mlp_with_positive_classes():
    # Score p[:, 1]: 0.30, 0.35, 0.05, 0.33, 0.45.
    assert select("mlp", POOL, positive_classes=[1]).tolist() == [4, 1, 3, 0, 2]
    # p[:, 0] + p[:, 1] is 1 - p[:, 2]: the default order.
    assert select("mlp", POOL, positive_classes=(0, 1)).tolist() == [2, 4, 0, 1, 3]


def test_mlp_two_classes_picks_the_highest_minority_probability():
    probs = np.array([[0.1, 0.9], [0.6, 0.4], [0.3, 0.7], [0.05, 0.95]])
    assert select("mlp", probs, budget=3).tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    "classes, match",
    [([], "non-empty"), ([-1], "class indices >= 0"), ([True], "class indices >= 0"), ([1, 1], "must not repeat")],
)
def test_mlp_rejects_bad_positive_classes(classes, match):
    with pytest.raises(ValueError, match=match):
        MostLikelyPositive(positive_classes=classes)


@pytest.mark.parametrize("classes", [[3], [0, 1, 2]])
def test_mlp_positive_classes_must_be_a_proper_subset(classes):
    with pytest.raises(ValueError, match="proper subset of the classes 0..2"):
        select("mlp", POOL, positive_classes=classes)


@pytest.mark.parametrize("name", ["confidence", "margin", "entropy", "mlp"])
def test_ties_go_to_the_lower_index(name):
    probs = np.tile([0.6, 0.3, 0.1], (6, 1))
    assert select(name, probs, budget=4).tolist() == [0, 1, 2, 3]


def test_entropy_treats_zero_probabilities_as_zero():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    strategy = make_strategy("entropy")
    keys = strategy.sort_keys(probs)
    expected = -np.array([0.0, np.log(2), -(0.2 * np.log(0.2) + 0.8 * np.log(0.8)), np.log(3)])
    np.testing.assert_allclose(keys, expected, rtol=1e-12, atol=0)
    assert select("entropy", probs).tolist() == [3, 1, 2, 0]


@pytest.mark.parametrize("k", [3, 10])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keys_match_plain_numpy_across_blocks(k, dtype):
    # 50,000 rows span several cache blocks; quantised probabilities create many ties.
    rng = np.random.default_rng(k)
    probs = np.round(rng.dirichlet(np.ones(k), size=50_000), 2).astype(dtype)
    top2 = np.sort(probs, axis=1)[:, -2:]
    exact = {
        "confidence": probs.max(axis=1),
        "margin": top2[:, 1] - top2[:, 0],
        "mlp": probs[:, k - 1],
    }
    for name, reference in exact.items():
        keys = make_strategy(name).sort_keys(probs)
        assert keys.dtype == dtype
        assert np.array_equal(keys, reference), name
    p = probs.astype(np.float64)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=1)
    np.testing.assert_allclose(make_strategy("entropy").sort_keys(probs), -entropy, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["confidence", "margin", "mlp"])
def test_selection_equals_a_stable_sort_of_the_unlabeled_keys(name):
    rng = np.random.default_rng(1)
    probs = np.round(rng.dirichlet(np.ones(4), size=30_000), 2)
    observed = np.where(rng.random(30_000) < 0.3, rng.integers(0, 4, 30_000), -1)
    unlabeled = np.flatnonzero(observed == -1)
    keys = make_strategy(name).sort_keys(probs)[unlabeled]
    expected = unlabeled[np.argsort(keys, kind="stable")[:500]]
    assert np.array_equal(select(name, probs, observed, budget=500), expected)


def test_random_is_uniform_over_the_unlabeled_pool():
    # 8 unlabeled examples, 3 bought per draw: each is bought with probability 3/8.
    observed = np.array([-1, 0, -1, -1, 1, -1, -1, -1, -1, -1])
    strategy = make_strategy("random")
    draws = 4000
    rng = np.random.default_rng(0)
    counts = np.zeros(10)
    for _ in range(draws):
        counts[strategy.choose(None, observed, np.flatnonzero(observed == -1), 3, rng, None)] += 1
    assert counts[1] == counts[4] == 0
    p, se = 3 / 8, np.sqrt(3 / 8 * 5 / 8 / draws)
    assert np.all(np.abs(counts[observed == -1] / draws - p) < 5 * se)


def test_random_follows_the_generator():
    probs = np.full((100, 2), 0.5)
    observed = np.full(100, -1)
    strategy = make_strategy("random", b_parallel=3)
    bought = [
        strategy.select(probs, observed, 10, lambda i: np.zeros(len(i), int), np.random.default_rng(s)) for s in (0, 0, 1)
    ]
    assert np.array_equal(bought[0], bought[1])
    assert not np.array_equal(bought[0], bought[2])
