"""Study parsing and validation: every error names its field; every shipped study parses."""

import json
import pickle
import re

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from direct_ray.config import ConfigError, Resources, StrategySpec, StudyConfig, TrialConfig, apply_overrides
from direct_ray.data import DatasetSpec
from direct_ray.model_config import ModelConfig
from direct_ray.noise import NoiseConfig
from direct_ray.training import ModelConfig as TrainingModelConfig
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


# --- strategy entries ------------------------------------------------------------------


def _strategies(*entries) -> StudyConfig:
    data = study()
    data["grid"] = {**data["grid"], "strategy": list(entries)}
    return StudyConfig.from_dict(data)


def test_strategy_entries_carry_options_and_labels():
    parsed = _strategies("direct", {"name": "badge", "max_candidates": 20000}, {"name": "badge", "label": "badge-default"})
    plain, options, labeled = parsed.strategies
    assert (plain.name, plain.label, plain.options, str(plain)) == ("direct", "direct", {}, "direct")
    assert (options.name, options.label, options.options) == ("badge", "badge", {"max_candidates": 20000})
    assert (str(labeled), labeled.options) == ("badge-default", {})
    assert [s.to_dict() for s in parsed.strategies] == [
        "direct",
        {"name": "badge", "max_candidates": 20000},
        {"name": "badge", "label": "badge-default"},
    ]
    trials = parsed.trials()
    assert {t.trial_id.split("_")[1] for t in trials} == {"direct", "badge", "badge-default"}
    assert len({t.trial_id for t in trials}) == len(trials) == len(set(trials))
    for trial in trials:
        assert TrialConfig.from_dict(json.loads(json.dumps(trial.to_dict()))) == trial


def test_an_option_equal_to_the_default_is_the_plain_strategy():
    spec = StrategySpec.from_dict({"name": "badge", "max_candidates": 50_000})
    assert spec == StrategySpec.from_dict("badge") and spec.to_dict() == "badge"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "badge", "max_candidates": "many"}, r"^grid\.strategy\[1\]\.max_candidates: input should be a valid integer"),
        ({"name": "badge", "max_candidates": True}, r"^grid\.strategy\[1\]\.max_candidates: input should be a valid integer"),
        ({"name": "badge", "max_candidates": 0}, r"^grid\.strategy\[1\]: max_candidates must be a positive integer"),
        ({"name": "badge", "candidates": 5}, r"unknown key\(s\) \['candidates'\]; allowed: \['name', 'label', 'max_candidates'\]"),
        ({"name": "random", "max_candidates": 5}, r"grid\.strategy\[1\]: unknown key\(s\) \['max_candidates'\]; allowed: \['name', 'label'\]"),
        ({"name": "badge", "label": "my badge"}, r"^grid\.strategy\[1\]\.label: must be letters, digits"),
        ({"name": "badge", "label": ".."}, r"cannot name a directory"),
        ({"label": "x"}, r"^grid\.strategy\[1\]: unknown strategy name; choose one of: direct, galaxy"),
        ({"name": "direct"}, r"^grid\.strategy: lists the same value twice"),
        ({"name": "galaxy", "label": "direct"}, r"two entries have the label 'direct'; give each its own `label:`"),
    ],
)
def test_bad_strategy_entries_name_the_field(entry, message):
    with pytest.raises(ConfigError, match=message):
        _strategies("direct", entry)


def test_trial_config_takes_a_strategy_name_or_spec():
    trial = StudyConfig.from_dict(study()).trials()[0]
    fields = {**dict(trial), "strategy": "badge"}
    by_name = TrialConfig(**fields)
    assert by_name.strategy == StrategySpec.from_dict("badge") and by_name.to_dict()["strategy"] == "badge"
    assert TrialConfig(**{**fields, "strategy": by_name.strategy}) == by_name
    with pytest.raises(ConfigError, match=r"^strategy: unknown strategy name"):
        TrialConfig(**{**fields, "strategy": "nope"})
    with pytest.raises(ConfigError, match=r"^seed: input should be greater than or equal to 0, got -1$"):
        TrialConfig(**{**fields, "seed": -1})


# --- the other blocks --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": "my study"}, r"^name: must be a non-empty string without spaces or slashes, got 'my study'$"),
        ({"rounds": True}, r"^rounds: input should be a valid integer, got True$"),
        ({"rounds": 2.0}, r"^rounds: input should be a valid integer"),
        ({"description": 3}, r"^description: input should be a valid string"),
        ({"max_concurrent_trials": 0}, r"^max_concurrent_trials: input should be greater than or equal to 1"),
        ({"resources": {"cpus_per_trial": True}}, r"^resources\.cpus_per_trial: input should be a valid number"),
        ({"resources": {"gpus_per_trial": 1.5}}, r"^resources: gpus_per_trial above 1 must be a whole number"),
        ({"model": {"kind": "linear", "hidden": 8}}, r"^model: hidden applies to kind 'mlp' only, not 'linear'$"),
        ({"model": {"kind": "mlp", "pretrained": True}}, r"^model: pretrained applies to kind 'resnet18' only"),
        ({"model": {"kind": "resnet18", "pretrained": ""}}, r"^model\.pretrained: must be true, false or a path"),
        ({"model": {"kind": "resnet18", "batch_size": 1}}, r"^model: batch_size must be >= 2 for kind 'resnet18'"),
        ({"model": {"kind": "mlp", "lr": 0}}, r"^model\.lr: must be a positive number, got 0$"),
        ({"model": {"kind": "mlp", "epochs": 2.5}}, r"^model\.epochs: input should be a valid integer"),
        ({"model": {"kind": "mlp", "class_weighted": "yes"}}, r"^model\.class_weighted: input should be a valid boolean"),
        ({"faults": {"trial_raise_at_round": 1}}, r"^unknown key\(s\) \['faults'\]; allowed: \['name', "),
    ],
)
def test_typed_fields_are_strict_and_errors_read_as_paths(changes, message):
    with pytest.raises(ConfigError, match=message):
        StudyConfig.from_dict(study(**changes))


def test_model_defaults_are_resolved_per_kind_and_numbers_keep_their_type():
    model = StudyConfig.from_dict(study(model={"kind": "resnet18", "lr": 1, "epochs": None})).model
    assert model.to_dict() == {
        "kind": "resnet18", "pretrained": False, "epochs": 20, "lr": 1, "weight_decay": 5e-5,
        "batch_size": 128, "class_weighted": True,
    }
    assert ModelConfig() == ModelConfig(kind="mlp", epochs=50) and ModelConfig().to_dict()["hidden"] == 128
    assert TrainingModelConfig is ModelConfig


def test_configs_are_frozen_hashable_and_positional():
    assert DatasetSpec("digits", 3) == DatasetSpec(kind="digits", num_classes=3)
    assert NoiseConfig("uniform", 0.1) == NoiseConfig.from_dict({"model": "uniform", "rate": 0.1})
    assert Resources(2, 0) == Resources(cpus_per_trial=2.0) and Resources(2).to_dict()["cpus_per_trial"] == 2.0
    assert len({DatasetSpec("digits"), DatasetSpec("digits"), ModelConfig(), NoiseConfig(), Resources()}) == 4
    with pytest.raises(ValidationError):
        DatasetSpec("digits").num_classes = 3
    with pytest.raises(ConfigError, match=r"^kind: input should be 'digits'"):
        DatasetSpec("mnist")


def test_fault_plans_are_not_part_of_a_trial():
    trial = StudyConfig.from_dict(study()).trials()[0]
    assert "faults" not in trial.to_dict() and "faults" not in TrialConfig.model_fields


def test_the_readme_study_parses(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    text = re.search(r"## Write a study\n\n```yaml\n(.*?)```", readme, re.S).group(1)
    # its features file leaves num_classes out, so parsing reads the file's labels
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    y = np.arange(30) % 3
    np.savez(tmp_path / "data" / "embeddings.npz", x_train=np.ones((30, 2)), y_train=y, x_test=np.ones((3, 2)),
             y_test=y[:3])
    study = StudyConfig.from_dict(yaml.safe_load(text))
    assert len(study.trials()) == 3 * 4 * 2 * 2 * 3
    assert "features-embeddings-k3" in {d.name for d in study.datasets}


def test_trials_pickle_with_their_strategy_options():
    trial = _strategies("direct", {"name": "badge", "label": "b", "max_candidates": 7}).trials()[-1]
    again = pickle.loads(pickle.dumps(trial))
    assert again == trial and again.strategy.options == {"max_candidates": 7} and hash(again) == hash(trial)
