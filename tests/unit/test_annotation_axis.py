"""The study's ``annotation`` axis: parsing, trial expansion, and ids that stay put when it is unused."""

from __future__ import annotations

import pytest

from direct_ray.annotation import AnnotationConfig
from direct_ray.config import ConfigError, StudyConfig, TrialConfig
from tests.studies import grid, study

TIMED = [
    {"mode": "sync"},
    {"mode": "sync", "latency": {"model": "lognormal", "median": 30, "sigma": 1.0}},
    {"mode": "async", "latency": {"model": "lognormal", "median": 30, "sigma": 1.0}, "speeds": [1, 1, 2, 0.5, 1]},
]


def test_the_axis_multiplies_the_trials_and_reaches_each_trial():
    plain = StudyConfig.from_dict(study())
    timed = StudyConfig.from_dict(study(grid=grid(annotation=TIMED)))
    assert len(timed.trials()) == 3 * len(plain.trials())
    modes = {(t.annotation.mode, t.annotation.latency is not None) for t in timed.trials()}
    assert modes == {("sync", False), ("sync", True), ("async", True)}
    trial = next(t for t in timed.trials() if t.annotation.mode == "async")
    assert trial.annotation.speeds == (1.0, 1.0, 2.0, 0.5, 1.0)
    assert "async-lognormal" in trial.trial_id
    assert TrialConfig.from_dict(trial.to_dict()) == trial  # a trial round-trips with its annotation


def test_the_default_entry_keeps_trial_ids_and_configs():
    plain = StudyConfig.from_dict(study()).trials()
    explicit = StudyConfig.from_dict(study(grid=grid(annotation=[{"mode": "sync"}]))).trials()
    assert [t.trial_id for t in plain] == [t.trial_id for t in explicit]
    assert all("annotation" not in t.to_dict() for t in explicit)
    assert all(t.annotation == AnnotationConfig() for t in plain)


@pytest.mark.parametrize(
    "annotation, message",
    [
        ([{"mode": "later"}], "grid.annotation[0].mode"),
        ([{"mode": "async", "latency": {"model": "lognormal", "median": 30}}], "grid.annotation[0].latency"),
        ([{"mode": "sync"}, {"mode": "sync"}], "grid.annotation: lists the same value twice"),
        ([{"mode": "async", "speeds": [1, 2]}], "need a latency model"),
    ],
)
def test_errors_name_the_entry(annotation, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        StudyConfig.from_dict(study(grid=grid(annotation=annotation)))
