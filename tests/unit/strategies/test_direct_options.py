"""DIRECT's open choices: ``direct_paper`` reproduces the original purchases, each option on
hand-worked lists, option validation, and phase 1 under label noise."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import numpy as np
import pytest

from direct_ray.benchmarks import direct_variants
from direct_ray.benchmarks.direct_variants import planted_setting
from direct_ray.strategies import make_strategy
from direct_ray.strategies.base import UNLABELED, LabelBuyer
from direct_ray.strategies.direct import Direct, DirectPaper, annotate_near_threshold, class_visit_order
from direct_ray.strategies.reduction import (
    LabelView,
    labeled_positions,
    near_optimal_window,
    threshold_estimate,
    version_space,
)

FIXTURE = Path(__file__).parent / "fixtures" / "direct_paper_purchases.json"


def planted_pool(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """~90 % of the pool in class K-1, softmax(2.5 * onehot(true) + N(0, 1)) as model output."""
    rng = np.random.default_rng(seed)
    minority = rng.random(n) < 0.1
    truth = np.where(minority, rng.integers(0, k - 1, n), k - 1)
    logits = 2.5 * np.eye(k)[truth] + rng.normal(size=(n, k))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return probs, truth


def recorded_case_purchases(case: dict) -> np.ndarray:
    """Re-run one recorded case: 2 % noisy initial labels, persistent noise, one round."""
    n, k, seed = case["n"], case["k"], case["seed"]
    probs, truth = planted_pool(seed, n, k)
    rng = np.random.default_rng(seed + 100)
    observed = np.full(n, -1)
    initial = rng.choice(n, n // 50, replace=False)
    observed[initial] = truth[initial]
    flips = rng.random(n) < case["noise"]
    noisy = np.where(flips, (truth + rng.integers(1, k, n)) % k, truth)
    strategy = make_strategy("direct_paper", b_parallel=case["b_parallel"])
    return strategy.select(probs, observed, case["budget"], lambda i: noisy[i], np.random.default_rng(seed))


@pytest.mark.parametrize("case", json.loads(FIXTURE.read_text()), ids=lambda c: f"n{c['n']}k{c['k']}s{c['seed']}")
def test_direct_paper_buys_exactly_what_the_original_direct_bought(case):
    assert recorded_case_purchases(case).tolist() == case["bought"]


K, O, U = 0, 1, UNLABELED  # labeled k, labeled another class, unlabeled (class k = 0)


def estimate(sorted_labels: list[int], tie: str) -> int:
    labels = np.array(sorted_labels)
    return threshold_estimate(*labeled_positions(labels, K), labels.size, tie)


def test_tie_rules_on_a_gap_left_of_the_middle():
    # S = 0 at j = 0, 1 for j = 1..5 (the gap after the k at position 1), 0 for j = 6..8.
    labels = [K, U, U, U, U, O, U, U]
    assert estimate(labels, "half") == 4
    assert estimate(labels, "lowest") == 1
    assert estimate(labels, "largest") == 5
    assert estimate(labels, "midpoint") == 3
    assert estimate(labels, "minority") == 1  # k holds half of the labels: not the minority


def test_tie_rules_with_two_maximal_segments():
    # S: 0 at j = 0; -1 at 1..2; 0 at 3..8; -1 at 9; -2 at 10. Maximal segments [0, 0] and [3, 8].
    labels = [O, U, K, U, U, U, U, U, O, O]
    assert estimate(labels, "half") == 5
    assert estimate(labels, "lowest") == 0
    assert estimate(labels, "largest") == 8
    assert estimate(labels, "midpoint") == 0  # the middle of the lowest maximal segment
    assert estimate(labels, "minority") == 8  # k holds 1 of 4 labels: largest


def test_unknown_tie_rule_is_refused():
    with pytest.raises(ValueError, match="tie must be one of"):
        estimate([K, O], "closest")


def test_near_optimal_window_is_not_blown_open_by_one_flipped_label():
    # positions: 1 k, 3 k, 5..9 other except a flipped k at 10, 11 other.
    labels = np.array([K, U, K, U, O, U, O, O, O, K, O, U])
    positions, is_k = labeled_positions(labels, K)
    assert version_space(positions, is_k, labels.size) == (3, 11)  # the paper's start spans the flip
    # S = 0, 1 (j=1..2), 2 (3..4), 1 (5..6), 0 (7), -1 (8), -2 (9), -1 (10), -2 (11..12)
    assert near_optimal_window(positions, is_k, labels.size, 0) == (3, 5)
    assert near_optimal_window(positions, is_k, labels.size, 1) == (1, 7)
    assert near_optimal_window(positions, is_k, labels.size, 4) == (0, 13)


def test_near_optimal_window_without_labels_is_the_whole_list():
    labels = np.full(6, U)
    assert near_optimal_window(*labeled_positions(labels, K), 6, 1) == (0, 7)


@pytest.mark.parametrize("seed", range(40))
def test_near_optimal_window_equals_the_papers_on_separated_labels_and_holds_it_with_slack(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    cut = int(rng.integers(0, n + 1))
    truth = np.where(np.arange(n) < cut, K, O)
    labels = np.where(rng.random(n) < 0.3, truth, U)
    positions, is_k = labeled_positions(labels, K)
    paper = version_space(positions, is_k, n)
    assert near_optimal_window(positions, is_k, n, 0) == paper
    lo, hi = near_optimal_window(positions, is_k, n, int(rng.integers(1, 4)))
    assert lo <= paper[0] and paper[1] <= hi


@pytest.mark.parametrize(
    "budget, k, fraction, cap, expected",
    [(200, 2, 0.5, None, 50), (201, 4, 0.5, None, 25), (200, 2, 0.5, 30, 30), (200, 2, 0.25, None, 25), (1000, 2, 0.5, 60, 60), (7, 3, 0.5, None, 1)],
)
def test_phase1_budget_per_class(budget, k, fraction, cap, expected):
    assert Direct(phase1_fraction=fraction, phase1_cap=cap).phase1_budget(budget, k) == expected


def test_class_visit_orders():
    labels = np.array([0, 0, 0, 1, 2, 2, U, U])  # counts 3, 1, 2; class 3 has none
    rng = np.random.default_rng(0)
    assert class_visit_order(labels, 4, "fewest_first", rng) == [3, 1, 2, 0]
    assert class_visit_order(labels, 4, "most_first", rng) == [0, 2, 1, 3]
    tied = np.array([1, 0, U])
    assert class_visit_order(tied, 3, "fewest_first", rng) == [2, 0, 1]  # ties by class index
    assert class_visit_order(tied, 3, "most_first", rng) == [0, 1, 2]
    assert sorted(class_visit_order(labels, 4, "random", rng)) == [0, 1, 2, 3]


class PhaseCounter:
    """Instant annotator: VReduce buys through calls, phase 2 through ``queue``."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.called: list[int] = []
        self.queued: list[int] = []

    def __call__(self, indices):
        self.called.extend(np.asarray(indices).tolist())
        return self.labels[indices]

    def queue(self, indices, b_parallel):
        self.queued.extend(np.asarray(indices).tolist())
        return self.labels[indices]


def one_round(options: dict, *, noise: float = 0.0, seed: int = 0, n: int = 2000, k: int = 2, budget: int = 100):
    pool = planted_setting(seed, n, k, noise)
    annotator = PhaseCounter(pool.annotated)
    strategy = Direct(b_parallel=1, **options)
    bought = strategy.select(pool.probs, pool.observed, budget, annotator, np.random.default_rng(seed))
    return pool, annotator, bought


@pytest.mark.parametrize("options", [{"phase1_cap": 0}, {"phase1_fraction": 0.0}])
def test_no_phase1_budget_sends_everything_to_phase2(options):
    _, annotator, bought = one_round(options)
    assert annotator.called == [] and annotator.queued == bought.tolist()


def test_phase1_cap_bounds_vreduce_per_class():
    _, annotator, bought = one_round({"phase1_cap": 3, "version_space": "paper"}, k=3, budget=120)
    assert 0 < len(annotator.called) <= 3 * 3 and bought.size == 120


@pytest.mark.parametrize(
    "tie, expected", [("lowest", [1, 2]), ("largest", [4, 3]), ("half", [3, 4]), ("midpoint", [2, 3])]
)
def test_phase2_buys_around_the_end_of_the_gap_the_tie_rule_picks(tie, expected):
    # Positions 1 (k) and 6 (other) are labeled; phase 2 visits j_hat, j_hat + 1, j_hat - 1, ...
    # lowest: j_hat = 1 -> positions 2, 3; largest: 5 -> 5, 4; half: 4 -> 4, 5; midpoint: 3 -> 3, 4.
    sorted_labels = np.array([K, U, U, U, U, O, U, U])
    truth = np.where(np.arange(8) < 3, K, O)
    buyer = LabelBuyer(sorted_labels, 2, 2, 1, lambda i: truth[i])
    assert annotate_near_threshold(LabelView(buyer), np.arange(8), K, 2, tie) == 2
    assert buyer.bought().tolist() == expected  # pool index = position - 1


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("threshold_tie", "closest", "threshold_tie must be one of 'half', 'lowest', 'largest', 'minority', 'midpoint'"),
        ("phase1_fraction", 1.5, r"phase1_fraction must be a number in \[0, 1\]"),
        ("phase1_fraction", True, "phase1_fraction must be a number"),
        ("phase1_cap", -1, "phase1_cap must be an integer >= 0"),
        ("phase1_cap", 2.5, "phase1_cap must be an integer >= 0"),
        ("version_space", "wide", "version_space must be one of 'paper', 'near_optimal'"),
        ("version_space_slack", -1, "version_space_slack must be an integer >= 0"),
        ("phase1_order", "sorted", "phase1_order must be one of 'random', 'fewest_first', 'most_first'"),
        ("phase2_order", None, "phase2_order must be one of"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(option, value, message):
    with pytest.raises(ValueError, match=message):
        make_strategy("direct", **{option: value})


def test_direct_paper_takes_no_options():
    with pytest.raises(TypeError):
        make_strategy("direct_paper", threshold_tie="lowest")


NOISY_SEEDS = 5


@pytest.mark.parametrize("b_parallel", [1, 10])
def test_with_20_percent_noise_phase1_buys_at_least_twice_the_minority_rate(b_parallel):
    # Planted pools of 10^4 (~10 % minority), 2 % noisy initial labels, one round of 1,000
    # with K = 2: the paper's version space spans the list from the first flipped label on,
    # so its phase 1 buys majority examples (measured: 2.7 % minority at b_parallel = 1);
    # the default stays near the cut (measured: 45 % and 46 % at b_parallel 1 and 10).
    bought_truth, pool_rates = [], []
    for seed in range(NOISY_SEEDS):
        pool = planted_setting(seed, 10_000, 2, 0.2)
        annotator = PhaseCounter(pool.annotated)
        make_strategy("direct", b_parallel=b_parallel).select(
            pool.probs, pool.observed, 1000, annotator, np.random.default_rng(seed)
        )
        bought_truth.append(pool.truth[annotator.called])
        pool_rates.append(np.mean(pool.truth != 1))
    phase1_minority = np.mean(np.concatenate(bought_truth) != 1)
    assert phase1_minority >= 2 * np.mean(pool_rates)


@pytest.mark.parametrize("tie, expected", [("lowest", [1, 4]), ("half", [3, 2]), ("midpoint", [2, 4])])
def test_direct_buys_phase2_where_its_tie_rule_puts_the_cut(tie, expected):
    # 8 examples: class 0's list is the pool order (position p = index p - 1), class 1's its
    # reverse (position p = index 8 - p); index 0 is labeled 0, index 5 labeled 1. No phase 1;
    # both classes have one label, so "fewest_first" visits class 0 first, one label each.
    # Class 0's argmax gap is j = 1..5: lowest 1 -> buys position 2 (index 1); half 4 ->
    # position 4 (index 3); midpoint 3 -> position 3 (index 2). Class 1 then sees that label
    # too. lowest: gap 3..6 -> position 4 (index 4). half: index 3 (class 1) is position 5,
    # gap 5..7 -> 5 is labeled, position 6 (index 2). midpoint: index 2 (class 0) is
    # position 6, gap 3..5 -> 4 (index 4).
    probs = np.linspace([0.99, 0.01], [0.01, 0.99], 8)
    observed = np.full(8, U)
    observed[[0, 5]] = [0, 1]
    truth = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    strategy = Direct(threshold_tie=tie, phase1_cap=0, phase2_order="fewest_first")
    for seed in range(6):  # the order, hence the purchases, must not depend on the generator
        bought = strategy.select(probs, observed, 2, lambda i: truth[i], np.random.default_rng(seed))
        assert bought.tolist() == expected


def test_the_planted_benchmark_prints_one_row_per_setting_and_variant(capsys):
    direct_variants.main(
        ["--k", "2,3", "--b-parallel", "1", "--noise", "0.2", "--seeds", "2", "--n", "600", "--budget", "30",
         "--variants", "paper,default,random"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| K | B_parallel | noise | paper | default | random |"
    assert sum(line.startswith("| 2 | 1 | 0.2 |") for line in lines) == 1 + 3  # summary + detail rows
    assert sum(line.startswith("| 3 | 1 | 0.2 |") for line in lines) == 1 + 3


def test_the_planted_benchmark_refuses_an_unknown_variant():
    with pytest.raises(SystemExit):
        direct_variants.parse_args(["--variants", "paper,nope"])


def test_every_option_is_annotated_with_its_allowed_values():
    hints = typing.get_type_hints(Direct.__init__)
    assert typing.get_args(hints["threshold_tie"]) == ("half", "lowest", "largest", "minority", "midpoint")
    assert typing.get_args(hints["version_space"]) == ("paper", "near_optimal")
    assert typing.get_args(hints["phase1_order"]) == ("random", "fewest_first", "most_first")
    assert typing.get_args(hints["phase2_order"]) == ("random", "fewest_first", "most_first")
    assert hints["phase1_cap"] == typing.Optional[int]
    assert hints["phase1_fraction"] is float and hints["version_space_slack"] is int
    assert typing.get_type_hints(DirectPaper.__init__) == {"b_parallel": int, "return": type(None)}
