"""Label savings, interpolation, AUC and seed averaging on curves whose answers are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.budget import budget_summaries, normalized_auc, robustness_series, value_at
from analysis.curves import Method, estimate, group_curves, mean_curve, trial_curves
from analysis.savings import baseline_for, labels_to_reach, saving, savings_table, target_accuracy
from analysis.tables import savings_markdown
from direct_ray.results.read import ResultsError, read_table
from tests.unit.analysis.synthetic import write_trial

N = [10, 20, 30, 40, 50]
# Seed-averaged: random [.50 .55 .60 .65 .70], direct [.50 .65 .725 .76 .79], galaxy [.5 .6 .7 .8 .85].
CURVES = {
    ("random", 0): [0.50, 0.54, 0.58, 0.62, 0.66],
    ("random", 1): [0.50, 0.56, 0.62, 0.68, 0.74],
    ("direct", 0): [0.50, 0.62, 0.70, 0.75, 0.78],
    ("direct", 1): [0.50, 0.68, 0.75, 0.77, 0.80],
    ("confidence", 0): [0.50, 0.52, 0.54, 0.56, 0.58],  # never reaches any target
    ("confidence", 1): [0.50, 0.52, 0.54, 0.56, 0.58],
    ("galaxy", 0): [0.50, 0.60, 0.70, 0.80, 0.85],
    ("galaxy", 1): [0.50, 0.60, 0.70, 0.80, 0.85],
}


def _groups(tmp_path, seeds=(0, 1)):
    for (strategy, seed), acc in CURVES.items():
        if seed in seeds:
            write_trial(tmp_path, strategy=strategy, seed=seed, n_labeled=N, balanced_accuracy=acc,
                        effective_b_parallel=1)
    return group_curves(trial_curves(read_table(tmp_path)))


def _row(rows, strategy, baseline, fraction):
    (row,) = [r for r in rows if r.method.strategy == strategy and r.baseline.strategy == baseline
              and r.fraction == fraction]
    return row


# --- pure functions -------------------------------------------------------------------------------

def test_labels_to_reach_interpolates_the_first_crossing():
    n = np.array([10, 20, 30, 40])
    assert labels_to_reach(n, np.array([0.5, 0.6, 0.8, 0.9]), 0.7) == pytest.approx(25.0)
    # not monotone: the first crossing counts, not a later one
    assert labels_to_reach(n, np.array([0.5, 0.7, 0.6, 0.9]), 0.65) == pytest.approx(17.5)
    assert labels_to_reach(n, np.array([0.5, 0.6, 0.8, 0.9]), 0.6) == pytest.approx(20.0)
    assert labels_to_reach(n, np.array([0.7, 0.8, 0.8, 0.9]), 0.6) == 10.0  # already there at the start
    assert math.isnan(labels_to_reach(n, np.array([0.5, 0.6, 0.6, 0.6]), 0.61))


@given(st.lists(st.floats(0, 1), min_size=2, max_size=12), st.floats(0, 1))
def test_labels_to_reach_lies_between_the_bracketing_rounds(values, target):
    n = np.arange(1, len(values) + 1) * 10
    labels = labels_to_reach(n, np.array(values), target)
    above = [i for i, v in enumerate(values) if v >= target]
    if not above:
        assert math.isnan(labels)
    else:
        i = above[0]
        assert n[max(i - 1, 0)] <= labels <= n[i]


def test_target_accuracy_is_a_fraction_of_the_gain():
    assert target_accuracy(np.array([0.5, 0.6, 0.9]), 0.5) == pytest.approx(0.7)
    assert target_accuracy(np.array([0.5, 0.6, 0.7]), 1.0) == 0.7  # exactly the last value, never above
    assert math.isnan(target_accuracy(np.array([0.6, 0.7, 0.6]), 0.5))  # no improvement, no target


def test_saving():
    assert saving(25.0, 50.0) == pytest.approx(0.5)
    assert saving(60.0, 50.0) == pytest.approx(-0.2)
    assert math.isnan(saving(math.nan, 50.0))


def test_value_at_and_normalized_auc():
    n = np.array([10, 20, 30])
    y = np.array([0.5, 0.7, 0.9])
    assert value_at(n, y, 25) == pytest.approx(0.8)
    assert math.isnan(value_at(n, y, 31))
    assert normalized_auc(n, y, 10, 30) == pytest.approx(0.7)
    # 10..20: mean 0.6 over 10; 20..25: mean 0.75 over 5 -> 9.75 / 15
    assert normalized_auc(n, y, 10, 25) == pytest.approx(0.65)
    assert normalized_auc(n, y, 20, 20) == pytest.approx(0.7)
    assert math.isnan(normalized_auc(n, y, 5, 30))


def test_estimate():
    est = estimate([0.1, 0.3, math.nan])
    assert (est.mean, est.se, est.n) == (pytest.approx(0.2), pytest.approx(0.1), 2)
    one = estimate([0.4])
    assert one.n == 1 and math.isnan(one.se)
    assert "no uncertainty" in one.format()
    assert estimate([]).format() == "n/a"


def test_mean_curve_uses_the_points_every_seed_reached(tmp_path):
    write_trial(tmp_path, strategy="direct", seed=0, n_labeled=[10, 20, 30], balanced_accuracy=[0.5, 0.6, 0.7])
    write_trial(tmp_path, strategy="direct", seed=1, n_labeled=[10, 20], balanced_accuracy=[0.7, 0.8])
    (trials,) = group_curves(trial_curves(read_table(tmp_path))).popitem()[1].values()
    curve = mean_curve(trials)
    assert curve.n_labeled.tolist() == [10, 20]
    assert curve.mean == pytest.approx([0.6, 0.7])
    assert curve.se == pytest.approx([0.1, 0.1])
    assert curve.n_seeds == 2


def test_baseline_for_matches_b_parallel_else_the_smallest():
    methods = [Method("random", 1), Method("random", 5), Method("galaxy", 1)]
    assert baseline_for(Method("direct", 5), methods, "random") == Method("random", 5)
    assert baseline_for(Method("direct", 5), methods, "galaxy") == Method("galaxy", 1)
    assert baseline_for(Method("direct", 5), methods, "missing") is None


# --- the whole table on known curves --------------------------------------------------------------

def test_savings_against_random(tmp_path):
    rows = savings_table(_groups(tmp_path), fractions=(0.5, 1.0))
    full = _row(rows, "direct", "random", 1.0)
    assert full.target == pytest.approx(0.70)
    assert full.baseline_labels == pytest.approx(50.0)
    assert full.labels == pytest.approx(20 + 0.05 / 0.075 * 10)  # 26.67
    assert full.saving == pytest.approx(1 - (20 + 0.05 / 0.075 * 10) / 50)  # 46.7%
    # per seed: seed 0 target .66 -> 25 vs 50 = 0.5; seed 1 target .74 -> 28.57 vs 50 = 0.4286
    seed1 = 1 - (20 + 0.06 / 0.07 * 10) / 50
    assert full.per_seed.mean == pytest.approx((0.5 + seed1) / 2)
    assert full.per_seed.se == pytest.approx(abs(0.5 - seed1) / 2)
    assert (full.per_seed.n, full.n_seeds) == (2, 2)
    half = _row(rows, "direct", "random", 0.5)
    assert half.target == pytest.approx(0.60)
    assert half.baseline_labels == pytest.approx(30.0)
    assert half.labels == pytest.approx(10 + 0.1 / 0.15 * 10)
    assert half.saving == pytest.approx(1 - (10 + 0.1 / 0.15 * 10) / 30)


def test_savings_against_galaxy_and_negative_savings(tmp_path):
    rows = savings_table(_groups(tmp_path), fractions=(0.5, 1.0))
    half = _row(rows, "direct", "galaxy", 0.5)
    assert half.target == pytest.approx(0.675)
    assert half.baseline_labels == pytest.approx(27.5)
    assert half.labels == pytest.approx(20 + 0.025 / 0.075 * 10)
    assert half.saving == pytest.approx(1 - (20 + 0.025 / 0.075 * 10) / 27.5)
    slower = _row(rows, "random", "galaxy", 0.5)
    assert slower.labels == pytest.approx(45.0)
    assert slower.saving == pytest.approx(1 - 45 / 27.5)  # random needs more labels: negative
    assert not any(r.method.strategy == r.baseline.strategy for r in rows)


def test_never_reaches_is_said_plainly(tmp_path):
    rows = savings_table(_groups(tmp_path), fractions=(1.0,))
    never = _row(rows, "confidence", "random", 1.0)
    assert not never.reached and math.isnan(never.saving) and never.per_seed.n == 0
    assert never.best == pytest.approx(0.58)
    direct_vs_galaxy = _row(rows, "direct", "galaxy", 1.0)  # galaxy's 0.85 is above direct's best 0.79
    assert not direct_vs_galaxy.reached
    text = savings_markdown(rows, 1.0)
    assert "never reaches (best 0.580)" in text
    assert "no seed reaches (0 of 2)" in text
    assert "46.7%" in text


def test_one_seed_has_no_uncertainty(tmp_path):
    rows = savings_table(_groups(tmp_path, seeds=(0,)), fractions=(1.0,))
    row = _row(rows, "direct", "random", 1.0)
    assert row.saving == pytest.approx(0.5)  # target .66: 25 labels vs 50
    assert row.per_seed.n == 1 and math.isnan(row.per_seed.se)
    assert "one seed: no uncertainty" in savings_markdown(rows, 1.0)


def test_baseline_without_improvement_gives_no_targets(tmp_path):
    write_trial(tmp_path, strategy="random", seed=0, n_labeled=[10, 20], balanced_accuracy=[0.6, 0.5])
    write_trial(tmp_path, strategy="direct", seed=0, n_labeled=[10, 20], balanced_accuracy=[0.6, 0.9])
    assert savings_table(group_curves(trial_curves(read_table(tmp_path)))) == []


# --- fixed budget and grouping -------------------------------------------------------------------

def test_budget_summaries_and_robustness_series(tmp_path):
    for rate, acc in ((0.0, [0.5, 0.7, 0.9]), (0.2, [0.5, 0.6, 0.7])):
        write_trial(tmp_path, strategy="galaxy", seed=0, n_labeled=[10, 20, 30], balanced_accuracy=acc,
                    b_parallel=5, effective_b_parallel=1, noise_model="none" if rate == 0 else "uniform",
                    noise_rate=rate, minority=[2, 6, 12])
    write_trial(tmp_path, strategy="galaxy", seed=1, n_labeled=[10, 20], balanced_accuracy=[0.5, 0.8],
                b_parallel=5, effective_b_parallel=1)  # unfinished: budget is 20 for the dataset
    summaries = budget_summaries(group_curves(trial_curves(read_table(tmp_path))))
    clean = next(s for s in summaries if s.setting.noise_model == "none")
    assert (clean.budget.low, clean.budget.high) == (10, 20)
    assert clean.accuracy.mean == pytest.approx(0.75) and clean.accuracy.n == 2
    assert clean.auc.mean == pytest.approx((0.6 + 0.65) / 2)
    assert clean.minority_labels.mean == pytest.approx((6 + 5) / 2)  # seed 1: default n // 4 = 5
    assert clean.effective_b_parallel == 1
    ((key, methods),) = robustness_series(summaries).items()
    assert key == ("toy-k2", "uniform")
    assert [s.setting.noise_rate for s in methods[Method("galaxy", 5)]] == [0.0, 0.2]


def test_minority_falls_back_to_observed_labels(tmp_path):
    import pyarrow.parquet as pq

    path = write_trial(tmp_path, strategy="random", seed=0, n_labeled=[10, 20], balanced_accuracy=[0.5, 0.6],
                       minority=[3, 7])
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["n_minority_labels"]), path)
    (curve,) = trial_curves(read_table(tmp_path))
    assert curve.minority_from_observed
    assert curve.values["n_minority_labels"].tolist() == [3, 7]  # class 0 of n_labeled_per_class


def test_duplicate_seed_is_an_error(tmp_path):
    write_trial(tmp_path, strategy="random", seed=0, n_labeled=[10, 20], balanced_accuracy=[0.5, 0.6])
    curves = trial_curves(read_table(tmp_path))
    with pytest.raises(ResultsError, match="both toy-k2, no noise, random, b_parallel=1, seed 0"):
        group_curves(curves + [curves[0].__class__(**{**curves[0].__dict__, "trial_id": "copy"})])
