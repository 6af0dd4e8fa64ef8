"""The annotation-time benchmark's command line and arithmetic (its runs train models: not here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from direct_ray.benchmarks.annotation_time import Trial, arms, labels_to_reach, main, paired_ratio


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "--b-parallel" in capsys.readouterr().out


def test_labels_to_reach_interpolates_between_rounds():
    labels, accuracy = np.array([10, 20, 30]), np.array([0.5, 0.7, 0.9])
    assert labels_to_reach(labels, accuracy, 0.6) == pytest.approx(15.0)
    assert labels_to_reach(labels, accuracy, 0.4) == 10.0
    assert math.isnan(labels_to_reach(labels, accuracy, 0.95))


def test_utilisation_is_busy_over_team_wall():
    assert Trial(np.array([10]), np.array([0.5]), busy=300.0, wall=100.0, b_parallel=5).utilisation == pytest.approx(0.6)


def curve(labels_to_target: float) -> Trial:
    """A two-round curve that crosses accuracy 0.5 at ``labels_to_target`` labels (never, for NaN)."""
    if math.isnan(labels_to_target):
        return Trial(np.array([0, 100]), np.array([0.0, 0.4]), busy=1.0, wall=1.0, b_parallel=1)
    return Trial(np.array([0, 2 * labels_to_target]), np.array([0.0, 1.0]), busy=1.0, wall=1.0, b_parallel=1)


def test_paired_ratio_is_the_ratio_of_means_with_the_paired_standard_error():
    runs = [curve(40), curve(70), curve(math.nan)]
    baseline = [curve(50), curve(100), curve(50)]
    ratio, se, seeds = paired_ratio(runs, baseline, 0.5)
    # the seed that never reaches the target is left out; differences -10 and -30 over a mean of
    # 75: 1 - 20/75 (a mean of the per-seed ratios would say 0.75)
    assert seeds == 2 and ratio == pytest.approx(1 - 20 / 75)
    assert se == pytest.approx(np.std([-10, -30], ddof=1) / 2**0.5 / 75)
    assert paired_ratio([curve(75)], [curve(50)], 0.5)[0] == pytest.approx(1.5)


def test_the_arms_compare_sync_the_default_async_each_overlap_and_galaxy():
    assert [(a.label, a.mode, a.overlap) for a in arms([0, 2, 9])] == [  # 2 is the default
        ("DIRECT sync", "sync", None), ("DIRECT async", "async", None), ("DIRECT async, overlap 0", "async", 0),
        ("DIRECT async, overlap 9", "async", 9), ("GALAXY", "sync", None)]
    assert arms([0])[2].annotation({"model": "fixed", "seconds": 1.0}).round_overlap == 0
