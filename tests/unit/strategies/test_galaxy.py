"""GALAXY: bisection on per-class linear graphs, nearest-to-cut queries, fallbacks, speed of search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from direct_ray.strategies import make_strategy
from direct_ray.strategies.base import UNLABELED, LabelBuyer
from direct_ray.strategies.galaxy import Galaxy, LinearGraph, random_unlabeled
from direct_ray.strategies.reduction import LabelView, class_order, row_max


def line_pool(n: int) -> np.ndarray:
    """K = 2 probabilities whose class-0 list is the identity order (position p = index p - 1)."""
    p0 = np.linspace(0.99, 0.01, n)
    return np.stack([p0, 1 - p0], axis=1)


def cut_labels(n: int, cut: int) -> np.ndarray:
    return (np.arange(n) >= cut).astype(np.int64)


def run(probs, truth, observed, budget, seed=0, b_parallel=1):
    sizes = []

    def annotate(idx):
        sizes.append(idx.size)
        return truth[idx]

    bought = make_strategy("galaxy", b_parallel=b_parallel).select(
        probs, observed, budget=budget, annotate=annotate, rng=np.random.default_rng(seed)
    )
    return bought, sizes


@pytest.mark.parametrize("n", [2**8, 2**12, 2**16])
def test_locates_the_cut_of_a_separable_list_in_log_n_queries(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        cut = int(rng.integers(1, n))
        truth = cut_labels(n, cut)
        observed = np.full(n, UNLABELED)
        observed[[0, n - 1]] = truth[[0, n - 1]]  # one example of each class
        bought, _ = run(line_pool(n), truth, observed, budget=40, seed=cut)
        found = np.flatnonzero(np.isin(bought, [cut - 1, cut]).cumsum() == 2)
        queries = int(found[0]) + 1 if found.size else None  # until both sides of the cut are labeled
        assert queries is not None and queries <= math.ceil(math.log2(n)) + 1, (cut, queries)


def test_after_the_cut_it_queries_the_nearest_unlabeled_nodes():
    n, cut = 1000, 400
    truth = cut_labels(n, cut)
    observed = np.full(n, UNLABELED)
    observed[[cut - 1, cut]] = truth[[cut - 1, cut]]  # the cut is already known
    bought, _ = run(line_pool(n), truth, observed, budget=6)
    # Distances 1, 1, 2, 2, 3, 3 from the cut, in some order within each distance.
    assert set(bought[:2]) == {cut - 2, cut + 1}
    assert set(bought[2:4]) == {cut - 3, cut + 2}
    assert set(bought[4:6]) == {cut - 4, cut + 3}


def test_shortest_run_between_different_labels_is_bisected_first():
    n = 40
    truth = np.zeros(n, dtype=np.int64)
    observed = np.full(n, UNLABELED)
    # Class 0 graph: positions 1(+) 11(-) 21(+) 25(-): runs of 9, 9 and 3 unlabeled nodes.
    observed[[0, 10, 20, 24]] = [0, 1, 0, 1]
    bought, _ = run(line_pool(n), truth, observed, budget=1)
    np.testing.assert_array_equal(bought, [22])  # midpoint of positions 22..24 is 23


def test_random_fallback_without_any_cut():
    n = 500
    truth = np.zeros(n, dtype=np.int64)
    observed = np.full(n, UNLABELED)
    bought, sizes = run(line_pool(n), truth, observed, budget=25)
    assert np.unique(bought).size == 25 and sizes == [1] * 25


def test_random_unlabeled_enumerates_when_rejection_fails():
    labels = np.zeros(10_000, dtype=np.int8)
    labels[1234] = UNLABELED
    assert random_unlabeled(labels, np.random.default_rng(0)) == 1234


def brute_force_candidates(sorted_labels: np.ndarray, k: int) -> set[int]:
    """Every position GALAXY may query next on one list, by rescanning it (1-based)."""
    n = sorted_labels.size
    labeled = [p for p in range(1, n + 1) if sorted_labels[p - 1] != UNLABELED]
    sign = {p: sorted_labels[p - 1] == k for p in labeled}
    runs = [(b - a - 1, a, b) for a, b in zip(labeled, labeled[1:]) if sign[a] != sign[b] and b - a > 1]
    if runs:
        shortest = min(length for length, _, _ in runs)
        return {(a + b) // 2 for length, a, b in runs if length == shortest}
    cuts = [a for a, b in zip(labeled, labeled[1:]) if sign[a] != sign[b]]
    unlabeled = [p for p in range(1, n + 1) if sorted_labels[p - 1] == UNLABELED]
    if not cuts or not unlabeled:
        return set()
    distance = {p: min(a - p if p <= a else p - a - 1 for a in cuts) for p in unlabeled}
    nearest = min(distance.values())
    return {p for p, d in distance.items() if d == nearest}


@pytest.mark.parametrize("seed", range(8))
def test_every_query_follows_the_rules_against_a_brute_force_rescan(seed):
    rng = np.random.default_rng(seed)
    n, num_classes = 60, 3
    # Coarse probabilities: many ties, so the tie-breaking of the sort matters too.
    probs = rng.integers(0, 4, size=(n, num_classes)).astype(np.float32) + 0.5
    probs /= probs.sum(axis=1, keepdims=True)
    truth = rng.integers(0, num_classes, n)
    noisy = np.where(rng.random(n) < 0.2, rng.integers(0, num_classes, n), truth)
    observed = np.full(n, UNLABELED)
    start = rng.choice(n, 6, replace=False)
    observed[start] = noisy[start]
    buyer = LabelBuyer(observed, num_classes, n - 6, 1, lambda idx: noisy[idx])
    view = LabelView(buyer)
    maxima = row_max(probs)
    graphs = [LinearGraph(class_order(probs, k, maxima), k, view.labels, rng) for k in range(num_classes)]
    for step in range(n - 6):
        k = step % num_classes
        allowed = brute_force_candidates(view.labels[graphs[k].order], k)
        index = graphs[k].next_query()
        if index is None:
            assert not allowed
            index = random_unlabeled(view.labels, rng)
        else:
            assert int(np.flatnonzero(graphs[k].order == index)[0]) + 1 in allowed
        label = int(view.buy(np.array([index]))[0])
        for graph in graphs:
            graph.add(index, label)
    assert (view.labels != UNLABELED).all()


@pytest.mark.parametrize("budget", [0, 1, 37, 200])
def test_exact_budget_one_query_at_a_time_and_deterministic(budget):
    rng = np.random.default_rng(0)
    n = 2000
    truth = rng.choice(3, n, p=[0.05, 0.15, 0.8])
    logits = rng.normal(scale=1.5, size=(n, 3))
    logits[np.arange(n), truth] += 2.0
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    observed = np.full(n, UNLABELED)
    start = rng.choice(n, 40, replace=False)
    observed[start] = truth[start]
    before = observed.copy()
    bought, sizes = run(probs, truth, observed, budget, seed=3, b_parallel=5)
    assert bought.size == budget and np.unique(bought).size == budget
    assert not np.isin(bought, start).any() and set(sizes) <= {1}
    np.testing.assert_array_equal(observed, before)
    again, _ = run(probs, truth, observed, budget, seed=3, b_parallel=5)
    np.testing.assert_array_equal(bought, again)


def test_sequential_only_and_pool_exhaustion():
    assert Galaxy.sequential_only and Galaxy(b_parallel=4).effective_b_parallel == 1
    n = 30
    truth = cut_labels(n, 12)
    observed = np.full(n, UNLABELED)
    observed[:3] = truth[:3]
    bought, _ = run(line_pool(n), truth, observed, budget=100)
    np.testing.assert_array_equal(np.sort(bought), np.arange(3, n))
