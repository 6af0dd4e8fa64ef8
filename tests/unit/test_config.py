"""Study parsing and validation: every error names its field; every shipped study parses."""

from pathlib import Path

import pytest

from direct_ray.config import ConfigError, StudyConfig, TrialConfig, apply_overrides
from tests.studies import study

from tests.paths import ROOT


def test_grid_expands_to_every_combination_with_unique_ids():
    trials = StudyConfig.from_dict(study()).trials()
    assert len(trials) == 2 * 2 * 2 * 2
    assert len({t.trial_id for t in trials}) == len(trials)
    assert {str(t.strategy) for t in trials} == {"direct", "random"}


def test_initial_size_defaults_to_b_train():
    data = study()
    del data["initial_size"]
    assert StudyConfig.from_dict(data).initial_size == 10


def test_trial_config_round_trips_through_a_dict():
    for trial in StudyConfig.from_dict(study()).trials():
        again = TrialConfig.from_dict(trial.to_dict())
        assert again == trial and again.trial_id == trial.trial_id


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"rounds": -1}, "rounds"),
        ({"b_train": 0}, "b_train"),
        ({"bogus": 1}, "bogus"),
        ({"resources": {"cpus_per_trial": 0, "gpus_per_trial": 0}}, "resources"),
        ({"model": {"kind": "transformer"}}, "model"),
    ],
)
def test_top_level_errors_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        StudyConfig.from_dict(study(**changes))


@pytest.mark.parametrize(
    "grid_changes, field",
    [
        ({"strategy": ["direct", "nope"]}, r"grid\.strategy\[1\]"),
        ({"b_parallel": [0]}, r"grid\.b_parallel\[0\]"),
        ({"noise": [{"model": "uniform", "rate": 1.0}]}, r"grid\.noise\[0\]"),
        ({"noise": [{"model": "laplace"}]}, r"grid\.noise\[0\]"),
        ({"dataset": [{"kind": "mnist"}]}, r"grid\.dataset\[0\]"),
        ({"seed": [-1]}, r"grid\.seed\[0\]"),
        ({"seed": [1, 1]}, r"grid\.seed"),
        ({"colour": ["red"]}, "colour"),
    ],
)
def test_grid_errors_name_the_field(grid_changes, field):
    data = study()
    data["grid"] = {**data["grid"], **grid_changes}
    with pytest.raises(ConfigError, match=field):
        StudyConfig.from_dict(data)


def test_overrides_are_parsed_as_yaml_and_dotted():
    data = apply_overrides(study(), ["rounds=7", "grid.seed=[3, 4]", "model.hidden=32", "resources.gpus_per_trial=0.5"])
    assert data["rounds"] == 7
    assert data["grid"]["seed"] == [3, 4]
    assert data["model"]["hidden"] == 32
    parsed = StudyConfig.from_dict(data)
    assert parsed.seeds == (3, 4) and parsed.resources.gpus_per_trial == 0.5
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(study(), ["rounds"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides(study(), ["rounds.x=1"])


def test_missing_study_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        StudyConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        StudyConfig.from_yaml(bad)


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_study_parses(path):
    parsed = StudyConfig.from_yaml(path)
    assert parsed.trials()


def test_default_study_is_the_documented_one():
    parsed = StudyConfig.from_yaml(ROOT / "sweeps" / "default.yaml")
    assert [s.label for s in parsed.strategies] == ["direct", "galaxy", "random", "confidence"]
    assert parsed.b_parallels == (1, 5)
    assert [n.model for n in parsed.noises] == ["none", "uniform"]
    assert len(parsed.seeds) == 2 and len(parsed.trials()) == 32
    assert parsed.datasets[0].kind == "digits"


def test_per_dataset_budgets_override_the_top_level():
    data = study(budgets={"cifar100": {"rounds": 40, "b_train": 1000}})
    data["grid"]["dataset"] = [{"kind": "digits"}, {"kind": "cifar100", "num_classes": 2}]
    trials = StudyConfig.from_dict(data).trials()
    digits = {(t.rounds, t.b_train, t.initial_size) for t in trials if t.dataset.kind == "digits"}
    cifar = {(t.rounds, t.b_train, t.initial_size) for t in trials if t.dataset.kind == "cifar100"}
    assert digits == {(2, 10, 10)} and cifar == {(40, 1000, 1000)}
    with pytest.raises(ConfigError, match="budgets.svhn: no dataset"):
        StudyConfig.from_dict(study(budgets={"svhn": {"rounds": 1}}))
    with pytest.raises(ConfigError, match=r"budgets\.digits\.b_train"):
        StudyConfig.from_dict(study(budgets={"digits": {"b_train": 0}}))
    with pytest.raises(ConfigError, match="budgets.digits: unknown key"):
        StudyConfig.from_dict(study(budgets={"digits": {"epochs": 3}}))
