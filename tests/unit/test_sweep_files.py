"""Every study in sweeps/ follows the study format, and each says what its documentation says.

The format is a contract (issue 4): top-level keys name, description, rounds, b_train,
initial_size, model, resources, grid, max_concurrent_trials, max_failures; grid keys
dataset, strategy, seed, b_parallel, noise. These checks are structural, on the YAML alone,
so they hold whatever the loader does; the loader's own test parses the same files.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from tests.paths import ROOT as REPO
SWEEPS = REPO / "sweeps"
STUDY_FILES = sorted(SWEEPS.glob("*.yaml"))

TOP_KEYS = {"name", "description", "rounds", "b_train", "initial_size", "model", "resources",
            "grid", "max_concurrent_trials", "max_failures", "budgets"}
REQUIRED_TOP_KEYS = {"name", "rounds", "b_train", "grid"}
GRID_KEYS = ("dataset", "strategy", "seed", "b_parallel", "noise")
STRATEGIES = {"direct", "galaxy", "random", "confidence", "margin", "entropy", "mlp", "badge",
              "cluster_margin", "base", "bait", "similar"}
MODEL_KEYS = {"kind", "pretrained", "hidden", "epochs", "lr", "weight_decay", "batch_size",
              "class_weighted"}
MODEL_KINDS = {"mlp", "linear", "resnet18"}
DATASET_KEYS = {"kind", "num_classes", "path", "root", "download"}
TORCHVISION_KINDS = {"cifar10", "cifar100", "svhn"}
# Original classes of each dataset (num_classes may not exceed them) and training-pool sizes
# (the embedded digits use a fixed split with 1,257 training examples).
ORIGINAL_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}
POOL_SIZE = {"digits": 1257, "cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257}
NOISE_MODELS = {"none", "uniform", "minority_to_majority", "class_conditional"}
NOISE_KEYS = {"model", "rate", "rates", "matrix", "persistent"}
PAPER_STRATEGIES = {"direct", "galaxy", "similar", "badge", "base", "bait", "cluster_margin",
                    "confidence", "mlp", "random"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_rate(where: str, rate) -> list[str]:
    return [] if _is_number(rate) and 0 <= rate < 1 else [f"{where}: rate must be in [0, 1), got {rate!r}"]


def _check_model(model) -> list[str]:
    if not isinstance(model, dict):
        return ["model must be a mapping"]
    errors = [f"model: unknown key {k!r}" for k in sorted(set(model) - MODEL_KEYS)]
    if model.get("kind") not in MODEL_KINDS:
        errors.append(f"model.kind must be one of {sorted(MODEL_KINDS)}, got {model.get('kind')!r}")
    if "class_weighted" in model and not isinstance(model["class_weighted"], bool):
        errors.append("model.class_weighted must be true or false")
    pretrained = model.get("pretrained", False)
    if not (isinstance(pretrained, bool) or (isinstance(pretrained, str) and pretrained.endswith(".pth"))):
        errors.append("model.pretrained must be true, false or the path of a .pth state_dict")
    if model.get("pretrained") and model.get("kind") != "resnet18":
        errors.append("model.pretrained applies to resnet18 only")
    for key in ("epochs", "batch_size"):
        if key in model and not (_is_int(model[key]) and model[key] >= 1):
            errors.append(f"model.{key} must be an integer >= 1")
    if "lr" in model and not (_is_number(model["lr"]) and model["lr"] > 0):
        errors.append("model.lr must be a number > 0")
    if "weight_decay" in model and not (_is_number(model["weight_decay"]) and model["weight_decay"] >= 0):
        errors.append("model.weight_decay must be a number >= 0")
    if "hidden" in model and not (_is_int(model["hidden"]) and model["hidden"] >= 1):
        errors.append("model.hidden must be an integer width >= 1")
    return errors


def _check_resources(res) -> list[str]:
    if not isinstance(res, dict):
        return ["resources must be a mapping"]
    errors = [f"resources: unknown key {k!r}" for k in sorted(set(res) - {"cpus_per_trial", "gpus_per_trial"})]
    cpus, gpus = res.get("cpus_per_trial", 1), res.get("gpus_per_trial", 0)
    if not (_is_number(cpus) and cpus >= 0 and _is_number(gpus) and gpus >= 0):
        return errors + ["resources: cpus_per_trial and gpus_per_trial must be numbers >= 0"]
    if cpus == 0 and gpus == 0:
        errors.append("resources: a trial needs some CPU or GPU")
    if gpus > 1 and gpus != int(gpus):
        errors.append("resources.gpus_per_trial above 1 must be whole")
    return errors


def _check_dataset(where: str, ds) -> list[str]:
    if not isinstance(ds, dict):
        return [f"{where} must be a mapping"]
    errors = [f"{where}: unknown key {k!r}" for k in sorted(set(ds) - DATASET_KEYS)]
    kind, k = ds.get("kind"), ds.get("num_classes")
    if kind not in ORIGINAL_CLASSES and kind != "features":
        return errors + [f"{where}.kind: unknown {kind!r}"]
    if not (_is_int(k) and k >= 2):
        errors.append(f"{where}.num_classes must be an integer >= 2, got {k!r}")
    elif kind in ORIGINAL_CLASSES and k > ORIGINAL_CLASSES[kind]:
        errors.append(f"{where}.num_classes exceeds {kind}'s {ORIGINAL_CLASSES[kind]} classes")
    if kind == "features":
        if not (isinstance(ds.get("path"), str) and ds["path"].endswith(".npz")):
            errors.append(f"{where}.path: a features dataset needs a .npz path")
    elif "path" in ds:
        errors.append(f"{where}.path applies to features datasets only")
    if kind not in TORCHVISION_KINDS:
        errors += [f"{where}.{key} applies to torchvision datasets only" for key in ("root", "download") if key in ds]
    if "root" in ds and not isinstance(ds["root"], str):
        errors.append(f"{where}.root must be a path")
    if "download" in ds and not isinstance(ds["download"], bool):
        errors.append(f"{where}.download must be true or false")
    return errors


def _check_noise(where: str, noise, class_counts: set[int]) -> list[str]:
    if not isinstance(noise, dict):
        return [f"{where} must be a mapping"]
    errors = [f"{where}: unknown key {k!r}" for k in sorted(set(noise) - NOISE_KEYS)]
    model = noise.get("model")
    if model not in NOISE_MODELS:
        return errors + [f"{where}.model: unknown {model!r}"]
    if "persistent" in noise and not isinstance(noise["persistent"], bool):
        errors.append(f"{where}.persistent must be true or false")
    given = {k for k in ("rate", "rates", "matrix") if k in noise}
    if model == "none":
        return errors + ([f"{where}: model none takes no {sorted(given)}"] if given else [])
    if model == "class_conditional":
        if given != {"matrix"}:
            return errors + [f"{where}: class_conditional takes a matrix (only)"]
        matrix = noise["matrix"]
        for k in class_counts:
            if not (isinstance(matrix, list) and len(matrix) == k
                    and all(isinstance(row, list) and len(row) == k for row in matrix)):
                errors.append(f"{where}.matrix must be {k} x {k} for a dataset with K={k}")
        rows = matrix if isinstance(matrix, list) else []
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and all(_is_number(p) and 0 <= p <= 1 for p in row)
                    and math.isclose(sum(row), 1.0, abs_tol=1e-9)):
                errors.append(f"{where}.matrix row {i} must be probabilities summing to 1")
        return errors
    if len(given) != 1 or "matrix" in given:
        return errors + [f"{where}: {model} takes exactly one of rate, rates"]
    if "rate" in noise:
        return errors + _check_rate(where, noise["rate"])
    rates = noise["rates"]
    if not (isinstance(rates, list) and rates):
        return errors + [f"{where}.rates must be a non-empty list"]
    return errors + [e for i, r in enumerate(rates) for e in _check_rate(f"{where}.rates[{i}]", r)]


def check_study(data, stem: str) -> list[str]:
    """Every way ``data`` (a loaded study file named ``stem``.yaml) breaks the format."""
    if not isinstance(data, dict):
        return ["a study must be a mapping"]
    errors = [f"unknown top-level key {k!r}" for k in sorted(set(data) - TOP_KEYS)]
    errors += [f"missing required key {k!r}" for k in sorted(REQUIRED_TOP_KEYS - set(data))]
    if errors:
        return errors
    if data["name"] != stem:
        errors.append(f"name {data['name']!r} should match the file name {stem!r}")
    if not (_is_int(data["rounds"]) and data["rounds"] >= 0):
        errors.append("rounds must be an integer >= 0")
    for key in ("b_train", "initial_size"):
        if key in data and not (_is_int(data[key]) and data[key] >= 1):
            errors.append(f"{key} must be an integer >= 1")
    if "description" in data and not isinstance(data["description"], str):
        errors.append("description must be text")
    if "max_concurrent_trials" in data and not (_is_int(data["max_concurrent_trials"])
                                                 and data["max_concurrent_trials"] >= 1):
        errors.append("max_concurrent_trials must be an integer >= 1")
    if "max_failures" in data and not (_is_int(data["max_failures"]) and data["max_failures"] >= 0):
        errors.append("max_failures must be an integer >= 0")
    errors += _check_model(data.get("model", {"kind": "mlp"}))
    errors += _check_resources(data.get("resources", {}))

    grid = data["grid"]
    if not isinstance(grid, dict):
        return errors + ["grid must be a mapping"]
    errors += [f"grid: unknown key {k!r}" for k in sorted(set(grid) - set(GRID_KEYS))]
    errors += [f"grid: missing {k!r}" for k in ("dataset", "strategy") if k not in grid]
    for key, values in grid.items():
        if not (isinstance(values, list) and values):
            errors.append(f"grid.{key} must be a non-empty list")
        elif len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            errors.append(f"grid.{key} lists the same value twice")
    if errors:
        return errors

    datasets = grid["dataset"]
    for i, ds in enumerate(datasets):
        errors += _check_dataset(f"grid.dataset[{i}]", ds)
    errors += [f"grid.strategy: unknown {s!r}" for s in grid["strategy"] if s not in STRATEGIES]
    errors += [f"grid.seed: {s!r} is not an integer >= 0" for s in grid.get("seed", [0])
               if not (_is_int(s) and s >= 0)]
    errors += [f"grid.b_parallel: {b!r} is not an integer >= 1" for b in grid.get("b_parallel", [1])
               if not (_is_int(b) and b >= 1)]
    class_counts = {ds["num_classes"] for ds in datasets if isinstance(ds, dict) and _is_int(ds.get("num_classes"))}
    for i, noise in enumerate(grid.get("noise", [{"model": "none"}])):
        errors += _check_noise(f"grid.noise[{i}]", noise, class_counts)

    total = data.get("initial_size", data["b_train"]) + data["rounds"] * data["b_train"]
    for ds in datasets:
        if isinstance(ds, dict) and ds.get("kind") in POOL_SIZE and total > POOL_SIZE[ds["kind"]]:
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
        (lambda s: s.update(rounds_per_trial=3), "unknown top-level key"),
        (lambda s: s.pop("grid"), "missing required key 'grid'"),
        (lambda s: s.update(name="other"), "should match the file name"),
        (lambda s: s.update(b_train=0), "b_train must be"),
        (lambda s: s["model"].update(kind="vit"), "model.kind"),
        (lambda s: s["model"].update(pretrained=True), "resnet18 only"),
        (lambda s: s["model"].update(pretrained="yes"), "model.pretrained must be"),
        (lambda s: s["model"].update(hidden=[64, 64]), "model.hidden"),
        (lambda s: s["resources"].update(gpus_per_trial=1.5), "must be whole"),
        (lambda s: s["grid"].update(strategies=["direct"]), "grid: unknown key"),
        (lambda s: s["grid"]["strategy"].append("uncertainty"), "unknown 'uncertainty'"),
        (lambda s: s["grid"]["strategy"].append("direct"), "same value twice"),
        (lambda s: s["grid"].update(seed=[]), "non-empty list"),
        (lambda s: s["grid"].update(b_parallel=[0]), "grid.b_parallel"),
        (lambda s: s["grid"]["dataset"][0].update(num_classes=11), "exceeds digits"),
        (lambda s: s["grid"]["dataset"][0].update(root="~/data"), "torchvision datasets only"),
        (lambda s: s["grid"]["dataset"].append({"kind": "features", "num_classes": 2}), "needs a .npz path"),
        (lambda s: s["grid"]["noise"].append({"model": "uniform", "rate": 1.0}), "rate must be in [0, 1)"),
        (lambda s: s["grid"]["noise"].append({"model": "uniform"}), "exactly one of rate, rates"),
        (lambda s: s["grid"]["noise"].append({"model": "none", "rate": 0.1}), "model none takes no"),
        (lambda s: s["grid"]["noise"].append({"model": "class_conditional", "matrix": [[0.9, 0.1], [0.2, 0.7]]}),
         "summing to 1"),
        (lambda s: s["grid"]["noise"].append({"model": "class_conditional", "matrix": [[1.0]]}), "must be 2 x 2"),
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


def test_default_documents_every_key():
    """default.yaml doubles as the format's reference: each block key carries a comment."""
    text = (SWEEPS / "default.yaml").read_text()
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
