"""The annotation-time benchmark's command line and arithmetic (its runs train models: not here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from direct_ray.benchmarks.annotation_time import Trial, labels_to_reach, main


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
