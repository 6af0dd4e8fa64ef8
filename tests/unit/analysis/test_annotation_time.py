"""The annotation-time views: clocks, time to target, team utilisation, the report section."""

from __future__ import annotations

import math

import pytest

from analysis.annotation_time import time_to_target, trial_clocks, utilisation
from analysis.curves import annotation_label, group_curves, trial_curves
from analysis.report import build_report
from direct_ray.results.read import read_table
from direct_ray.results.schema import CURVES
from tests.unit.analysis.synthetic import write_trial

N_LABELED = [10, 20, 30, 40]


@pytest.fixture()
def timed_study(tmp_path):
    """DIRECT with sync and async annotators, b_parallel 5, two seeds; GALAXY sequential."""
    for seed in (0, 1):
        write_trial(tmp_path, strategy="direct", seed=seed, b_parallel=5, n_labeled=N_LABELED,
                    balanced_accuracy=[0.5, 0.7, 0.8, 0.9], annotation_mode="sync",
                    annotation_seconds=[100, 300, 300, 300], busy_seconds=[200, 600, 600, 600])
        write_trial(tmp_path, strategy="direct", seed=seed, b_parallel=5, n_labeled=N_LABELED,
                    balanced_accuracy=[0.5, 0.7, 0.8, 0.9], annotation_mode="async",
                    annotation_seconds=[50, 150, 150, 150], busy_seconds=[200, 600, 600, 600])
        write_trial(tmp_path, strategy="galaxy", seed=seed, b_parallel=5, effective_b_parallel=1, n_labeled=N_LABELED,
                    balanced_accuracy=[0.5, 0.6, 0.7, 0.8], annotation_mode="async",
                    annotation_seconds=[200, 600, 600, 600], busy_seconds=[200, 600, 600, 600])
    return tmp_path


def test_annotation_labels_name_non_default_settings():
    assert annotation_label(None) == "" and annotation_label('{"mode": "sync"}') == ""
    assert annotation_label('{"mode": "async"}') == "async"
    assert annotation_label('{"mode": "async", "overlap": 0}') == "async overlap 0"
    assert annotation_label('{"latency": {"median": 30, "model": "lognormal", "sigma": 1.0}, "mode": "async", '
                            '"speeds": [1, 2], "straggler": {"factor": 5, "probability": 0.1}}') == \
        "async lognormal(30 s, sigma 1) speeds 1/2 stragglers 0.1x5"


def test_utilisation_and_clocks_hand_worked(timed_study):
    table = read_table(timed_study, CURVES)
    clocks = trial_clocks(table)
    groups = group_curves(trial_curves(table))
    sync = clocks["toy-k2_direct_bp5_none0_s0"]
    assert sync.hours.tolist() == pytest.approx([100 / 3600, 400 / 3600, 700 / 3600, 1000 / 3600])
    rows = {(r.method.strategy, r.method.annotation): r for r in utilisation(groups, clocks)}
    assert rows[("direct", "")].pooled == pytest.approx(2000 / (5 * 1000))  # 0.4
    assert rows[("direct", "async")].pooled == pytest.approx(2000 / (5 * 500))  # 0.8
    assert rows[("galaxy", "async")].pooled == pytest.approx(0.2)  # one annotator of five
    assert rows[("direct", "async")].per_seed.n == 2


def test_time_to_target_interpolates_labels_and_hours(timed_study):
    table = read_table(timed_study, CURVES)
    rows = time_to_target(group_curves(trial_curves(table)), trial_clocks(table), fractions=(0.5, 1.0))
    # first-round accuracy 0.5, lowest final mean 0.8 (GALAXY): targets 0.65 and 0.8
    half = {(r.method.strategy, r.method.annotation): r for r in rows if r.fraction == 0.5}
    assert half[("direct", "")].target == pytest.approx(0.65)
    assert half[("direct", "")].labels.mean == pytest.approx(17.5)  # 3/4 of the way from 10 to 20 labels
    assert half[("direct", "")].hours.mean == pytest.approx((100 + 0.75 * 300) / 3600)
    assert half[("direct", "async")].hours.mean == pytest.approx((50 + 0.75 * 150) / 3600)
    assert half[("galaxy", "async")].labels.mean == pytest.approx(25.0)
    full = {(r.method.strategy, r.method.annotation): r for r in rows if r.fraction == 1.0}
    assert full[("galaxy", "async")].hours.mean == pytest.approx(2000 / 3600)
    assert not math.isnan(full[("direct", "")].labels.mean)


def test_report_has_the_section_only_with_annotation_time(timed_study, tmp_path):
    text = build_report(timed_study, tmp_path / "r").read_text()
    assert "## Annotation time" in text and "### Team utilisation" in text and "annotation hours" in text
    assert "(annotation_time.png)" in text and (tmp_path / "r" / "annotation_time.png").is_file()
    plain = tmp_path / "plain"
    for seed in (0, 1):
        write_trial(plain, strategy="direct", seed=seed, n_labeled=N_LABELED, balanced_accuracy=[0.5, 0.7, 0.8, 0.9])
    assert "## Annotation time" not in build_report(plain, tmp_path / "p", figures=False).read_text()
