"""Typed study and trial configuration, parsed from YAML and validated before Ray starts.

A *study* (a YAML file, see ``sweeps/default.yaml``) names the shared settings (rounds,
budgets, model, resources) and a ``grid``; every combination of the grid's values is one
*trial*. The key names are a contract (outside studies rely on them): keys may be added,
never renamed. Every error names the offending field, e.g. ``grid.noise[1].rate``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from direct_ray.data import DatasetSpec
from direct_ray.noise import NoiseConfig
from direct_ray.strategies import STRATEGY_NAMES
from direct_ray.training import ModelConfig
from direct_ray.validation import check_keys


class ConfigError(ValueError):
    """An invalid study or trial configuration; the message names the field."""


def _check_keys(where: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    check_keys(data, allowed, what=where, error=ConfigError)


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(where: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _wrap(where: str, parse, value):
    """Run a sub-config parser and prefix its ValueError with the field path."""
    try:
        return parse(value)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None


@dataclass(frozen=True)
class Resources:
    """Ray resources reserved for one trial (its training task runs inside them)."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "resources") -> "Resources":
        _check_keys(where, data, [f.name for f in fields(cls)])
        cpus = _number(f"{where}.cpus_per_trial", data.get("cpus_per_trial", 1), 0)
        gpus = _number(f"{where}.gpus_per_trial", data.get("gpus_per_trial", 0), 0)
        if cpus == 0 and gpus == 0:
            raise ConfigError(f"{where}: a trial needs cpus_per_trial > 0 or gpus_per_trial > 0")
        if gpus > 1 and gpus != int(gpus):
            raise ConfigError(f"{where}.gpus_per_trial above 1 must be a whole number, got {gpus}")
        return cls(cpus, gpus)

    def to_dict(self) -> dict:
        return {"cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial}


@dataclass(frozen=True)
class FaultPlan:
    """Faults injected on purpose, to test recovery (each fires once, remembered by a marker file).

    Not part of the study contract: tests and chaos drills set it through ``--set faults.X=...``.
    ``marker_dir`` must be shared by all processes of the trial (a local or shared path).
    """

    annotator_exit_on_query: int | None = None  # an annotator process exits on its n-th query
    trial_raise_at_round: int | None = None  # the trial raises an exception in this round
    trial_exit_at_round: int | None = None  # the trial process dies (os._exit) mid-round
    marker_dir: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "faults") -> "FaultPlan":
        _check_keys(where, data, [f.name for f in fields(cls)])
        plan = cls(**dict(data))
        for f in fields(cls)[:3]:
            value = getattr(plan, f.name)
            if value is not None:
                _int(f"{where}.{f.name}", value, 0)
        if plan.active and not plan.marker_dir:
            raise ConfigError(f"{where}.marker_dir is required when a fault is set")
        return plan

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self)[:3])

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class TrialConfig:
    """Everything one active-learning trial needs; built from a study grid point."""

    study: str
    dataset: DatasetSpec
    strategy: str
    seed: int
    b_parallel: int
    noise: NoiseConfig
    rounds: int
    b_train: int
    initial_size: int
    model: ModelConfig
    resources: Resources = field(default_factory=Resources)
    faults: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_NAMES:
            raise ConfigError(f"strategy: unknown {self.strategy!r}; choose one of {list(STRATEGY_NAMES)}")
        _int("seed", self.seed, 0)
        _int("b_parallel", self.b_parallel, 1)
        _int("rounds", self.rounds, 0)
        _int("b_train", self.b_train, 1)
        _int("initial_size", self.initial_size, 1)
        _wrap("noise", self.noise.validate_for, self.dataset.num_classes)

    @property
    def total_budget(self) -> int:
        """Labels bought over the whole trial (initial batch plus every round)."""
        return self.initial_size + self.rounds * self.b_train

    @property
    def noise_label(self) -> str:
        rate = f"{self.noise.nominal_rate:g}"
        return "clean" if self.noise.model == "none" else f"{self.noise.model}{rate}"

    @property
    def trial_id(self) -> str:
        """Readable and unique: the grid point's values plus a short hash of the full config."""
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.dataset.name}_{self.strategy}_bp{self.b_parallel}_{self.noise_label}_s{self.seed}_{digest}"

    def to_dict(self) -> dict:
        out = {
            "study": self.study,
            "dataset": self.dataset.to_dict(),
            "strategy": self.strategy,
            "seed": self.seed,
            "b_parallel": self.b_parallel,
            "noise": self.noise.to_dict(),
            "rounds": self.rounds,
            "b_train": self.b_train,
            "initial_size": self.initial_size,
            "model": self.model.to_dict(),
            "resources": self.resources.to_dict(),
        }
        if self.faults.active:
            out["faults"] = self.faults.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialConfig":
        allowed = [f.name for f in fields(cls)]
        _check_keys("trial", data, allowed)
        missing = sorted(set(allowed) - set(data) - {"resources", "faults"})
        if missing:
            raise ConfigError(f"trial: missing key(s) {missing}")
        return cls(
            study=str(data["study"]),
            dataset=_wrap("dataset", DatasetSpec.from_dict, data["dataset"]),
            strategy=data["strategy"],
            seed=data["seed"],
            b_parallel=data["b_parallel"],
            noise=_wrap("noise", NoiseConfig.from_dict, data["noise"]),
            rounds=data["rounds"],
            b_train=data["b_train"],
            initial_size=data["initial_size"],
            model=_wrap("model", ModelConfig.from_dict, data["model"]),
            resources=Resources.from_dict(data.get("resources", {})),
            faults=FaultPlan.from_dict(data.get("faults", {})),
        )


GRID_KEYS = ("dataset", "strategy", "seed", "b_parallel", "noise")
STUDY_KEYS = (
    "name",
    "description",
    "rounds",
    "b_train",
    "initial_size",
    "model",
    "resources",
    "grid",
    "max_concurrent_trials",
    "max_failures",
    "faults",
    "budgets",
)
BUDGET_KEYS = ("rounds", "b_train", "initial_size")


@dataclass(frozen=True)
class Budget:
    """Rounds and labels per round of one dataset kind (the study's top level is the default)."""

    rounds: int
    b_train: int
    initial_size: int


@dataclass(frozen=True)
class StudyConfig:
    """A whole study: shared settings plus the grid whose every combination is one trial."""

    name: str
    rounds: int
    b_train: int
    initial_size: int
    model: ModelConfig
    resources: Resources
    datasets: tuple[DatasetSpec, ...]
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    b_parallels: tuple[int, ...]
    noises: tuple[NoiseConfig, ...]
    description: str = ""
    max_concurrent_trials: int | None = None
    max_failures: int = 2
    faults: FaultPlan = field(default_factory=FaultPlan)
    # optional per-dataset-kind budgets, e.g. GALAXY's 1,000 x 40 for CIFAR-100 beside 100 x 50
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> "StudyConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"study file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        return cls.from_dict(apply_overrides(data or {}, overrides))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StudyConfig":
        _check_keys("study", data, STUDY_KEYS)
        for key in ("name", "rounds", "b_train", "grid"):
            if key not in data:
                raise ConfigError(f"study: missing required key {key!r}")
        name = data["name"]
        if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
            raise ConfigError(f"name must be a non-empty string without spaces or slashes, got {name!r}")
        rounds = _int("rounds", data["rounds"], 0)
        b_train = _int("b_train", data["b_train"], 1)
        initial_size = _int("initial_size", data.get("initial_size", b_train), 1)
        model = _wrap("model", ModelConfig.from_dict, data.get("model", {"kind": "mlp"}))
        resources = Resources.from_dict(data.get("resources", {}))
        grid = data["grid"]
        _check_keys("grid", grid, GRID_KEYS)
        missing = [k for k in ("dataset", "strategy") if k not in grid]
        if missing:
            raise ConfigError(f"grid: missing required key(s) {missing}")

        def values(key: str, default: list) -> list:
            value = grid.get(key, default)
            value = value if isinstance(value, list) else [value]
            if not value:
                raise ConfigError(f"grid.{key} must list at least one value")
            return value

        datasets = tuple(
            _wrap(f"grid.dataset[{i}]", DatasetSpec.from_dict, d) for i, d in enumerate(values("dataset", []))
        )
        strategies = tuple(values("strategy", []))
        for i, s in enumerate(strategies):
            if s not in STRATEGY_NAMES:
                raise ConfigError(f"grid.strategy[{i}]: unknown strategy {s!r}; choose one of {list(STRATEGY_NAMES)}")
        seeds = tuple(_int(f"grid.seed[{i}]", s, 0) for i, s in enumerate(values("seed", [0])))
        b_parallels = tuple(_int(f"grid.b_parallel[{i}]", b, 1) for i, b in enumerate(values("b_parallel", [1])))
        noises = tuple(
            _wrap(f"grid.noise[{i}]", NoiseConfig.from_dict, n) for i, n in enumerate(values("noise", [{"model": "none"}]))
        )
        for i, noise in enumerate(noises):
            for j, ds in enumerate(datasets):
                _wrap(f"grid.noise[{i}] (with grid.dataset[{j}])", noise.validate_for, ds.num_classes)
        for key, vals in (("dataset", datasets), ("strategy", strategies), ("seed", seeds),
                          ("b_parallel", b_parallels), ("noise", noises)):
            if len(set(vals)) != len(vals):
                raise ConfigError(f"grid.{key} lists the same value twice")
        budgets = {}
        for kind, budget in (data.get("budgets") or {}).items():
            where = f"budgets.{kind}"
            if kind not in {d.kind for d in datasets}:
                raise ConfigError(f"{where}: no dataset of kind {kind!r} in grid.dataset")
            _check_keys(where, budget, BUDGET_KEYS)
            kind_b_train = _int(f"{where}.b_train", budget.get("b_train", b_train), 1)
            budgets[kind] = Budget(
                rounds=_int(f"{where}.rounds", budget.get("rounds", rounds), 0),
                b_train=kind_b_train,
                initial_size=_int(f"{where}.initial_size", budget.get("initial_size", kind_b_train), 1),
            )
        max_concurrent = data.get("max_concurrent_trials")
        if max_concurrent is not None:
            _int("max_concurrent_trials", max_concurrent, 1)
        study = cls(
            name=name,
            rounds=rounds,
            b_train=b_train,
            initial_size=initial_size,
            model=model,
            resources=resources,
            datasets=datasets,
            strategies=strategies,
            seeds=seeds,
            b_parallels=b_parallels,
            noises=noises,
            description=str(data.get("description", "")),
            max_concurrent_trials=max_concurrent,
            max_failures=_int("max_failures", data.get("max_failures", 2), 0),
            faults=FaultPlan.from_dict(data.get("faults", {})),
            budgets=budgets,
            raw=copy.deepcopy(dict(data)),
        )
        study.trials()  # every combination must be a valid trial
        return study

    def trials(self) -> list[TrialConfig]:
        """One trial per grid combination, in a stable order (dataset, strategy, noise, b_parallel, seed)."""
        default = Budget(self.rounds, self.b_train, self.initial_size)
        return [
            TrialConfig(
                study=self.name,
                dataset=ds,
                strategy=strategy,
                seed=seed,
                b_parallel=bp,
                noise=noise,
                rounds=self.budgets.get(ds.kind, default).rounds,
                b_train=self.budgets.get(ds.kind, default).b_train,
                initial_size=self.budgets.get(ds.kind, default).initial_size,
                model=self.model,
                resources=self.resources,
                faults=self.faults,
            )
            for ds, strategy, noise, bp, seed in itertools.product(
                self.datasets, self.strategies, self.noises, self.b_parallels, self.seeds
            )
        ]


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """Apply ``--set key.sub=value`` overrides; values are parsed as YAML (``5``, ``[1, 2]``, ``{model: none}``)."""
    out = copy.deepcopy(dict(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set: bad key {key!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: value is not valid YAML: {err}") from None
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out
