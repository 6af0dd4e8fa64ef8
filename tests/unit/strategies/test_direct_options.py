"""DIRECT's open choices: ``direct_paper`` reproduces the original purchases, each option on
hand-worked lists, option validation, and phase 1 under label noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from direct_ray.strategies import make_strategy

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
