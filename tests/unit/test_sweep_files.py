"""Every study in sweeps/ follows the study format, and each says what its documentation says.

The format is the JSON Schema in ``docs/study.schema.json`` (exported from the parser's own
models, see :mod:`direct_ray.config`): each file must validate against it, which an editor
checks too. The schema cannot say everything (K against a dataset's classes, matrix rows
summing to 1, a features file's path), so :func:`check_study` also runs the parser, plus the
checks only the files need (the name matches the file, the budget fits the pool).
"""

from __future__ import annotations

import json
import math
import re

import jsonschema
import pytest
import yaml

from direct_ray.config import ConfigError, StudyConfig
from tests.paths import ROOT as REPO

SWEEPS = REPO / "sweeps"
STUDY_FILES = sorted(SWEEPS.glob("*.yaml"))
SCHEMA = json.loads((REPO / "docs" / "study.schema.json").read_text())
GRID_KEYS = tuple(SCHEMA["$defs"]["Grid"]["properties"])
# Training-pool sizes (the embedded digits use a fixed split with 1,257 training examples).
POOL_SIZE = {"digits": 1257, "cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257}
PAPER_STRATEGIES = {"direct", "galaxy", "similar", "badge", "base", "bait", "cluster_margin",
                    "confidence", "mlp", "random"}
SCHEMA_LINE = "# yaml-language-server: $schema=../docs/study.schema.json"


def check_study(data, stem: str) -> list[str]:
    """Every way ``data`` (a loaded study file named ``stem``.yaml) breaks the format."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
    try:
        StudyConfig.from_dict(data)
    except ConfigError as err:
        errors.append(str(err))
    if errors:
        return errors
    if data["name"] != stem:
        errors.append(f"name {data['name']!r} should match the file name {stem!r}")
    total = data.get("initial_size", data["b_train"]) + data["rounds"] * data["b_train"]
    for ds in data["grid"]["dataset"]:
        if ds["kind"] in POOL_SIZE and total > POOL_SIZE[ds["kind"]]:
            errors.append(f"total budget {total} exceeds the {ds['kind']} pool ({POOL_SIZE[ds['kind']]})")
    return errors


def load(stem: str) -> dict:
    return yaml.safe_load((SWEEPS / f"{stem}.yaml").read_text())


def n_trials(study: dict) -> int:
    grid = study["grid"]
    return math.prod(len(grid.get(k, [None])) for k in GRID_KEYS)


def test_the_expected_studies_exist():
    assert {p.stem for p in STUDY_FILES} >= {"default", "paper_table1", "noise_robustness", "features_example"}


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.name)
def test_every_study_follows_the_format(path):
    assert check_study(yaml.safe_load(path.read_text()), path.stem) == []


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.name)
def test_stated_trial_count_matches_the_grid(path):
    """Each file's comment 'N x ... = M trials' is kept true as the grid changes."""
    stated = {int(m.replace(",", "")) for m in re.findall(r"= ([\d,]+) trials", path.read_text())}
    assert stated == {n_trials(yaml.safe_load(path.read_text()))}


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda s: s.update(rounds_per_trial=3), "'rounds_per_trial' was unexpected"),
        (lambda s: s.pop("grid"), "'grid' is a required property"),
        (lambda s: s.update(name="other"), "should match the file name"),
        (lambda s: s.update(b_train=0), "b_train: 0 is less than the minimum of 1"),
        (lambda s: s["model"].update(kind="vit"), "model.kind: 'vit' is not one of"),
        (lambda s: s["model"].update(pretrained=True), "pretrained applies to kind 'resnet18' only"),
        (lambda s: s["model"].update(pretrained=""), "model.pretrained: '' is not valid"),
        (lambda s: s["model"].update(hidden=[64, 64]), "model.hidden: [64, 64] is not of type 'integer'"),
        (lambda s: s["resources"].update(gpus_per_trial=1.5), "must be a whole number"),
        (lambda s: s["grid"].update(strategies=["direct"]), "'strategies' was unexpected"),
        (lambda s: s["grid"]["strategy"].append("uncertainty"), "grid.strategy[4]: unknown strategy name; choose one of"),
        (lambda s: s["grid"]["strategy"].append({"name": "badge", "max_candidates": "many"}),
         "grid.strategy[4].max_candidates: input should be a valid integer"),
        (lambda s: s["grid"]["strategy"].append({"name": "badge", "candidates": 9}),
         "grid.strategy[4]: unknown key(s) ['candidates']; allowed: ['name', 'label', 'max_candidates']"),
        (lambda s: s["grid"]["strategy"].append({"name": "direct", "label": "direct"}), "same value twice"),
        (lambda s: s["grid"]["strategy"].append({"name": "galaxy", "label": "direct"}),
         "two entries have the label 'direct'"),
        (lambda s: s["grid"].update(seed=[]), "grid.seed: must list at least one value"),
        (lambda s: s["grid"].update(b_parallel=[0]), "grid.b_parallel[0]: input should be greater than or equal to 1"),
        (lambda s: s["grid"]["dataset"][0].update(num_classes=11), "exceeds the 10 classes of digits"),
        (lambda s: s["grid"]["dataset"][0].update(root="~/data"), "root: only the torchvision kinds"),
        (lambda s: s["grid"]["dataset"].append({"kind": "features", "num_classes": 2}), "kind 'features' needs path"),
        (lambda s: s["grid"]["noise"].append({"model": "uniform", "rate": 1.0}),
         "grid.noise[2].rate: input should be less than 1"),
        (lambda s: s["grid"]["noise"].append({"model": "uniform", "rate": 0.1, "rates": [0.2]}), "either rate or rates"),
        (lambda s: s["grid"]["noise"].append({"model": "none", "rate": 0.1}), "rate and rates apply only"),
        (lambda s: s["grid"]["noise"].append({"model": "class_conditional", "matrix": [[0.9, 0.1], [0.2, 0.7]]}),
         "matrix[1] must sum to 1"),
        (lambda s: s["grid"]["noise"].append({"model": "class_conditional", "matrix": [[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]]}),
         "matrix is 3 x 3 but the dataset has 2 classes"),
        (lambda s: s.update(budgets={"svhn": {"rounds": 2}}), "budgets.svhn: no dataset of kind 'svhn'"),
        (lambda s: s.update(rounds=100), "exceeds the digits pool"),
    ],
)
def test_the_checker_catches_each_kind_of_mistake(corrupt, expected):
    study = load("default")
    assert check_study(study, "default") == []
    corrupt(study)
    errors = check_study(study, "default")
    assert any(expected in e for e in errors), errors


def test_default_is_the_issues_default():
    study = load("default")
    grid = study["grid"]
    assert study["name"] == "default"
    assert grid["dataset"] == [{"kind": "digits", "num_classes": 2}]
    assert grid["strategy"] == ["direct", "galaxy", "random", "confidence"]
    assert grid["b_parallel"] == [1, 5]
    assert len(grid["seed"]) == 2
    assert [n["model"] for n in grid["noise"]] == ["none", "uniform"]
    assert grid["noise"][1]["rate"] == 0.2
    assert study["model"]["kind"] == "mlp"
    assert study["resources"]["gpus_per_trial"] == 0
    assert n_trials(study) == 32


def _format_keys() -> set[str]:
    """Every key of the format, from the schema; of a strategy entry only its own (name, label)."""
    keys = set(SCHEMA["properties"])
    for definition in SCHEMA["$defs"].values():
        properties = definition.get("properties", {})
        is_strategy = "const" in properties.get("name", {})
        keys |= {"name", "label"} if is_strategy else set(properties)
    return keys


def test_default_documents_every_key():
    """default.yaml doubles as the format's reference: it names every key of the schema, and
    each block key it sets carries a comment."""
    text = (SWEEPS / "default.yaml").read_text()
    unnamed = sorted(key for key in _format_keys() if not re.search(rf"\b{key}\b", text))
    assert unnamed == []
    lines = text.splitlines()
    undocumented = []

    def walk(node):
        if isinstance(node, yaml.MappingNode) and not node.flow_style:
            for key, value in node.value:
                line = key.start_mark.line
                above = lines[line - 1] if line > 0 else ""
                if "#" not in lines[line] and not above.lstrip().startswith("#"):
                    undocumented.append(key.value)
                walk(value)

    walk(yaml.compose(text))
    assert undocumented == []


def test_the_committed_schema_is_current():
    """docs/study.schema.json is what ``python -m direct_ray.config --json-schema`` prints."""
    from direct_ray.config import study_json_schema

    assert SCHEMA == study_json_schema(), "regenerate: python -m direct_ray.config --json-schema > docs/study.schema.json"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.name)
def test_every_study_points_editors_at_the_schema(path):
    assert path.read_text().splitlines()[0] == SCHEMA_LINE


def test_paper_table1_covers_the_six_settings_with_galaxys_budgets():
    study = load("paper_table1")
    grid = study["grid"]
    assert (study["b_train"], study["rounds"], study["initial_size"]) == (100, 50, 100)
    assert study["budgets"] == {"cifar100": {"rounds": 40, "b_train": 1000}}
    assert set(grid["strategy"]) == PAPER_STRATEGIES
    assert grid["seed"] == [0, 1, 2, 3]
    assert grid["b_parallel"] == [1, 5]
    assert grid["noise"] == [{"model": "none"}]
    model = study["model"]
    assert (model["kind"], model["pretrained"], model["lr"], model["weight_decay"]) == ("resnet18", True, 0.01, 5e-5)
    assert study["resources"]["gpus_per_trial"] > 0
    assert all(ds["root"] == "~/data" for ds in grid["dataset"])
    settings = {(ds["kind"], ds["num_classes"]) for ds in grid["dataset"]}
    assert settings == {(kind, k) for kind in ("cifar10", "cifar100", "svhn") for k in (2, 3)}


def test_noise_robustness_sweeps_every_model_from_0_to_0_4():
    study = load("noise_robustness")
    grid = study["grid"]
    assert grid["dataset"][0]["kind"] == "digits"
    assert grid["strategy"] == ["direct", "galaxy", "random", "confidence"]
    assert grid["b_parallel"] == [1, 5]
    assert len(grid["seed"]) == 3
    rates: dict[str, set[float]] = {}
    for noise in grid["noise"]:
        if noise["model"] == "class_conditional":
            # Majority-to-minority flips: the rate is the majority row's off-diagonal mass.
            (stay_min, flip_min), (flip_maj, stay_maj) = noise["matrix"]
            assert (stay_min, flip_min) == (1.0, 0.0)
            rate = flip_maj
        else:
            rate = noise.get("rate", 0.0)
        rates.setdefault(noise["model"], set()).add(rate)
    assert rates.pop("none") == {0.0}
    assert rates == {m: {0.1, 0.2, 0.3, 0.4} for m in ("uniform", "minority_to_majority", "class_conditional")}


def test_features_example_reads_a_users_embeddings():
    study = load("features_example")
    assert study["grid"]["dataset"] == [{"kind": "features", "path": "data/embeddings.npz", "num_classes": 2}]
    assert study["model"]["kind"] == "mlp"
    text = (SWEEPS / "features_example.yaml").read_text()
    for array in ("x_train", "y_train", "x_test", "y_test"):
        assert array in text


def test_readme_describes_every_study():
    readme = (SWEEPS / "README.md").read_text()
    missing = [p.name for p in STUDY_FILES if f"`{p.name}`" not in readme]
    assert missing == []
