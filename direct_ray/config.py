"""Typed study and trial configuration, parsed from YAML and validated before Ray starts.

A *study* (a YAML file, see ``sweeps/default.yaml``) names the shared settings (rounds,
budgets, model, resources) and a ``grid``; every combination of the grid's values is one
*trial*. The key names are a contract (outside studies rely on them): keys may be added,
never renamed. The format is one pydantic schema, :class:`StudyFile`, exported as JSON
Schema for editors (``python -m direct_ray.config --json-schema > docs/study.schema.json``).
Every error names the offending field, e.g. ``grid.noise[1].rate``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import itertools
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Sequence, Union

import yaml
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    create_model,
    field_validator,
    model_validator,
)

from direct_ray.annotation import AnnotationConfig
from direct_ray.data import DatasetSpec
from direct_ray.model_config import ModelConfig
from direct_ray.noise import NoiseConfig
from direct_ray.strategies import STRATEGY_NAMES, strategy_class
from direct_ray.validated import ConfigError, Frozen, Int, Number, Text, one_of, parse, union_tag

__all__ = [
    "Budget",
    "ConfigError",
    "Resources",
    "StrategySpec",
    "StudyConfig",
    "StudyFile",
    "TrialConfig",
    "apply_overrides",
    "study_json_schema",
]


class Resources(Frozen):
    """Ray resources reserved for one trial (its training task runs inside them)."""

    cpus_per_trial: Number(ge=0.0) = 1.0
    gpus_per_trial: Number(ge=0.0) = 0.0

    @model_validator(mode="after")
    def _usable(self) -> "Resources":
        if self.cpus_per_trial == 0 and self.gpus_per_trial == 0:
            raise ValueError("a trial needs cpus_per_trial > 0 or gpus_per_trial > 0")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise ValueError(f"gpus_per_trial above 1 must be a whole number, got {self.gpus_per_trial}")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "resources") -> "Resources":
        return parse(cls, data, where)

    def to_dict(self) -> dict:
        return {"cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial}


# --- strategies ---------------------------------------------------------------------------

# A label names a strategy's results directory (a hive partition value).
_Label = Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9._+-]+$"), one_of("letters, digits, . _ + - only")]


class StrategySpec(Frozen):
    """One ``grid.strategy`` entry: a registered strategy, its results label and its options.

    Written in a study as the plain name (``direct``) or as a mapping
    ``{name: badge, label: badge-20k, max_candidates: 20000}``; the options are the keyword
    parameters of the strategy class's constructor (other than ``b_parallel``), checked
    against their annotations. ``str(spec)`` is the label, which defaults to the name.
    Each strategy has its own subclass (its options are fields); :func:`StrategySpec.from_dict`
    picks it.
    """

    name: str
    # None only in the input: the label defaults to the name (filled in before validation).
    label: _Label = Field(None, description="results label (letters, digits, . _ + -); defaults to the name")

    @model_validator(mode="before")
    @classmethod
    def _label_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("label") is None and "name" in data:
            return {**data, "label": data["name"]}
        return data

    @model_validator(mode="after")
    def _options_accepted(self) -> "StrategySpec":
        if self.label in (".", ".."):
            raise ValueError(f"label {self.label!r} cannot name a directory")
        strategy_class(self.name)(b_parallel=1, **self.options)  # the constructor's own range checks
        return self

    @property
    def options(self) -> dict[str, Any]:
        """The options that differ from the constructor's defaults (what the study set)."""
        return {
            key: getattr(self, key)
            for key, info in type(self).model_fields.items()
            if key not in ("name", "label") and getattr(self, key) != info.default
        }

    def __str__(self) -> str:
        return self.label

    def to_dict(self) -> str | dict:
        """The plain name when nothing but the name is set, else ``{name, [label,] **options}``."""
        if self.label == self.name and not self.options:
            return self.name
        label = {} if self.label == self.name else {"label": self.label}
        return {"name": self.name, **label, **self.options}

    @classmethod
    def from_dict(cls, entry: str | Mapping[str, Any], where: str = "strategy") -> "StrategySpec":
        """Parse one ``grid.strategy`` entry (a name or a mapping); errors name the option."""
        return parse(_STRATEGY_ENTRY, entry, where)


class _StrategyOptions(StrategySpec):
    """The base of each strategy's spec: options must already have their annotated type."""

    model_config = ConfigDict(strict=True)


def _option_fields(cls: type) -> dict[str, tuple[Any, Any]]:
    """The constructor's keyword parameters, but ``b_parallel``, as pydantic fields."""
    hints = typing.get_type_hints(cls.__init__)
    fields = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "b_parallel") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    return fields


def _spec_class(name: str) -> type[StrategySpec]:
    cls = strategy_class(name)
    return create_model(
        f"{cls.__name__}Strategy",
        __base__=_StrategyOptions,
        __doc__=f"Strategy {name!r} and the options of {cls.__name__}.",
        name=(Literal[name], ...),
        **_option_fields(cls),
    )


_SPEC_CLASSES = tuple(_spec_class(name) for name in STRATEGY_NAMES)
# Importable by name (direct_ray.config.BadgeStrategy), so that specs pickle by reference.
globals().update({cls.__name__: cls for cls in _SPEC_CLASSES})


def _strategy_tag(entry: Any) -> str | None:
    name = entry.get("name") if isinstance(entry, Mapping) else getattr(entry, "name", None)
    return union_tag(name) if isinstance(name, str) else None


# One strategy entry: a name, or a mapping whose name picks the StrategySpec subclass.
StrategyEntry = Annotated[
    Union[tuple(Annotated[spec, Tag(union_tag(name))] for name, spec in zip(STRATEGY_NAMES, _SPEC_CLASSES))],
    Discriminator(
        _strategy_tag,
        custom_error_type="unknown_strategy",
        custom_error_message=f"unknown strategy name; choose one of: {', '.join(STRATEGY_NAMES)}",
    ),
    BeforeValidator(
        lambda value: {"name": value} if isinstance(value, str) else value,
        json_schema_input_type=Union[Literal[STRATEGY_NAMES], Union[_SPEC_CLASSES]],
    ),
]
_STRATEGY_ENTRY = TypeAdapter(StrategyEntry)


# --- trials -------------------------------------------------------------------------------


class TrialConfig(Frozen):
    """Everything one active-learning trial needs; built from a study grid point.

    ``strategy`` is a :class:`StrategySpec`; a strategy name or a study's mapping entry is
    accepted in its place. ``to_dict`` (which ``trial_id`` hashes) writes the plain name for
    a strategy without label or options, as before strategies took options.
    """

    study: Text
    dataset: DatasetSpec
    strategy: StrategyEntry
    seed: Int(0)
    b_parallel: Int(1)
    noise: NoiseConfig
    rounds: Int(0)
    b_train: Int(1)
    initial_size: Int(1)
    model: ModelConfig
    resources: Resources = Resources()
    annotation: AnnotationConfig = AnnotationConfig()
    # The rounds its id hashes, when they differ from ``rounds``: those its study was first run
    # with, kept when a resumed sweep raised the rounds (direct_ray.growth) so results keep their paths.
    id_rounds: Optional[Int(0)] = None

    @field_validator("dataset")
    @classmethod
    def _dataset_resolved(cls, spec: DatasetSpec) -> DatasetSpec:
        """A features file without ``num_classes`` takes its own number of classes (the id hashes K)."""
        return spec.resolved()

    @model_validator(mode="after")
    def _noise_fits_the_dataset(self) -> "TrialConfig":
        try:
            self.noise.validate_for(self.dataset.num_classes)
        except ValueError as err:
            raise ValueError(f"noise: {err}") from None
        return self

    @model_validator(mode="after")
    def _id_rounds_below_rounds(self) -> "TrialConfig":
        if self.id_rounds is not None and self.id_rounds >= self.rounds:
            raise ValueError(f"id_rounds ({self.id_rounds}) must be below rounds ({self.rounds}): rounds only grow")
        return self

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
        """Readable and unique: the grid point's values plus a short hash of the full config.

        The hash takes ``id_rounds`` for ``rounds`` when set, so a trial keeps its id when its
        study's rounds are raised.
        """
        identity = self.to_dict()
        identity["rounds"] = identity.pop("id_rounds", self.rounds)
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
        timed = "" if self.annotation.is_default else f"_{self.annotation.label}"
        return f"{self.dataset.name}_{self.strategy}_bp{self.b_parallel}_{self.noise_label}{timed}_s{self.seed}_{digest}"

    def to_dict(self) -> dict:
        """The trial as JSON; ``annotation`` and ``id_rounds`` only when set, so earlier trials keep their ids."""
        out = {
            "study": self.study,
            "dataset": self.dataset.to_dict(),
            "strategy": self.strategy.to_dict(),
            "seed": self.seed,
            "b_parallel": self.b_parallel,
            "noise": self.noise.to_dict(),
            "rounds": self.rounds,
            "b_train": self.b_train,
            "initial_size": self.initial_size,
            "model": self.model.to_dict(),
            "resources": self.resources.to_dict(),
        }
        if not self.annotation.is_default:
            out["annotation"] = self.annotation.to_dict()
        if self.id_rounds is not None:
            out["id_rounds"] = self.id_rounds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialConfig":
        return parse(cls, data, "trial")


# --- the study file -----------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if not isinstance(value, list):
        return [value]
    if not value:
        raise ValueError("must list at least one value")
    return value


def _listed(item: Any) -> Any:
    """A grid value: a non-empty list, or one value standing for a list of it."""
    listed = Union[Annotated[list[item], Field(min_length=1)], item]
    return Annotated[tuple[item, ...], BeforeValidator(_as_list, json_schema_input_type=listed)]


class Grid(Frozen):
    """The grid: every combination of these values is one trial."""

    dataset: _listed(DatasetSpec) = Field(description="datasets, each {kind, num_classes, ...}")
    strategy: _listed(StrategyEntry) = Field(
        description="strategies: a name, or {name, label, <constructor options>}"
    )
    seed: _listed(Int(0)) = Field((0,), description="random seeds")
    b_parallel: _listed(Int(1)) = Field((1,), description="parallel annotators (B_parallel)")
    noise: _listed(NoiseConfig) = Field((NoiseConfig(),), description="annotator noise settings")
    annotation: _listed(AnnotationConfig) = Field(
        (AnnotationConfig(),), description="annotation time: {mode: sync|async, latency, speeds, straggler}; default instant"
    )

    @field_validator("dataset", "strategy", "seed", "b_parallel", "noise", "annotation")
    @classmethod
    def _distinct(cls, values: tuple) -> tuple:
        if len(set(values)) != len(values):
            raise ValueError("lists the same value twice")
        return values

    @field_validator("strategy")
    @classmethod
    def _distinct_labels(cls, specs: tuple[StrategySpec, ...]) -> tuple[StrategySpec, ...]:
        labels = [spec.label for spec in specs]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"two entries have the label {label!r}; give each its own `label:`")
        return specs

    @model_validator(mode="after")
    def _noise_fits_every_dataset(self) -> "Grid":
        for i, noise in enumerate(self.noise):
            for j, ds in enumerate(self.dataset):
                if ds.num_classes is None:  # read from the file, then checked with each trial
                    continue
                try:
                    noise.validate_for(ds.num_classes)
                except ValueError as err:
                    raise ValueError(f"noise[{i}] with dataset[{j}]: {err}") from None
        return self


class BudgetOverride(Frozen):
    """Rounds and labels per round of one dataset kind; what is left out comes from the top level."""

    rounds: Optional[Int(0)] = None
    b_train: Optional[Int(1)] = None
    initial_size: Optional[Int(1)] = None


class StudyFile(Frozen):
    """A study as written in YAML (see ``sweeps/default.yaml`` for each key's meaning)."""

    model_config = ConfigDict(title="Study")

    name: Annotated[
        str, Field(strict=True, pattern=r"^[^/\\ ]+$"), one_of("a non-empty string without spaces or slashes")
    ] = Field(description="study name (no spaces or slashes); results go to results/<name>/")
    description: Annotated[str, Field(strict=True)] = Field("", description="free text: what the study is for")
    rounds: Int(0) = Field(description="active-learning rounds after the initial batch")
    b_train: Int(1) = Field(description="labels bought per round")
    initial_size: Optional[Int(1)] = Field(None, description="labels of the initial random batch (default b_train)")
    model: ModelConfig = Field(ModelConfig(), description="the classifier retrained every round")
    resources: Resources = Field(Resources(), description="Ray resources reserved for each trial")
    grid: Grid = Field(description="every combination of these values is one trial")
    max_concurrent_trials: Optional[Int(1)] = Field(None, description="cap on trials running at once")
    max_failures: Int(0) = Field(2, description="retries of a failed trial (resumed from its last round)")
    budgets: dict[str, BudgetOverride] = Field(
        {}, description="per dataset kind: rounds, b_train, initial_size overriding the top level"
    )

    @model_validator(mode="after")
    def _budgets_name_grid_kinds(self) -> "StudyFile":
        kinds = {d.kind for d in self.grid.dataset}
        for kind in self.budgets:
            if kind not in kinds:
                raise ValueError(f"budgets.{kind}: no dataset of kind {kind!r} in grid.dataset")
        return self


def study_json_schema() -> dict:
    """The JSON Schema of a study file, for editors and for checking files without Python."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **StudyFile.model_json_schema()}


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
    strategies: tuple[StrategySpec, ...]
    seeds: tuple[int, ...]
    b_parallels: tuple[int, ...]
    noises: tuple[NoiseConfig, ...]
    description: str = ""
    max_concurrent_trials: int | None = None
    max_failures: int = 2
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    annotations: tuple[AnnotationConfig, ...] = (AnnotationConfig(),)
    # The rounds of the study's first run, as :meth:`rounds_by_kind` gives them, when a resumed
    # sweep has raised them since: trial ids hash these (see direct_ray.growth). None: its own.
    first_rounds: Optional[Mapping[str, Any]] = None

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
        study: StudyFile = parse(StudyFile, data)
        initial_size = study.b_train if study.initial_size is None else study.initial_size
        budgets = {}
        for kind, budget in study.budgets.items():
            b_train = study.b_train if budget.b_train is None else budget.b_train
            budgets[kind] = Budget(
                rounds=study.rounds if budget.rounds is None else budget.rounds,
                b_train=b_train,
                initial_size=b_train if budget.initial_size is None else budget.initial_size,
            )
        config = cls(
            name=study.name,
            rounds=study.rounds,
            b_train=study.b_train,
            initial_size=initial_size,
            model=study.model,
            resources=study.resources,
            datasets=_resolved_datasets(study.grid.dataset),
            strategies=study.grid.strategy,
            seeds=study.grid.seed,
            b_parallels=study.grid.b_parallel,
            noises=study.grid.noise,
            description=study.description,
            max_concurrent_trials=study.max_concurrent_trials,
            max_failures=study.max_failures,
            budgets=budgets,
            raw=copy.deepcopy(dict(data)),
            annotations=study.grid.annotation,
        )
        config.trials()  # every combination must be a valid trial
        return config

    def budget(self, kind: str) -> Budget:
        """Rounds and labels per round of the datasets of ``kind`` (its ``budgets`` entry, else the top level)."""
        return self.budgets.get(kind, Budget(self.rounds, self.b_train, self.initial_size))

    def rounds_by_kind(self) -> dict[str, Any]:
        """The study's rounds as ``sweep.json`` keeps them for ids: ``{"rounds": R, "budgets": {kind: R_kind}}``."""
        return {"rounds": self.rounds, "budgets": {kind: budget.rounds for kind, budget in self.budgets.items()}}

    def _id_rounds(self, kind: str) -> int | None:
        """The rounds the ids of ``kind``'s trials hash when these are not their rounds (see ``first_rounds``)."""
        if self.first_rounds is None:
            return None
        rounds = self.first_rounds.get("budgets", {}).get(kind, self.first_rounds["rounds"])
        return None if rounds == self.budget(kind).rounds else rounds

    def trials(self) -> list[TrialConfig]:
        """One trial per grid combination, in a stable order (dataset, strategy, noise, annotation, b_parallel, seed)."""
        return [
            TrialConfig(
                study=self.name,
                dataset=ds,
                strategy=strategy,
                seed=seed,
                b_parallel=bp,
                noise=noise,
                rounds=self.budget(ds.kind).rounds,
                b_train=self.budget(ds.kind).b_train,
                initial_size=self.budget(ds.kind).initial_size,
                model=self.model,
                resources=self.resources,
                annotation=annotation,
                id_rounds=self._id_rounds(ds.kind),
            )
            for ds, strategy, noise, annotation, bp, seed in itertools.product(
                self.datasets, self.strategies, self.noises, self.annotations, self.b_parallels, self.seeds
            )
        ]


def _resolved_datasets(specs: Sequence[DatasetSpec]) -> tuple[DatasetSpec, ...]:
    """The grid's datasets with every ``num_classes`` known (a features file's own classes when left out).

    Done once when the study is parsed, so dataset names and trial ids are fixed before
    anything runs; a spec that gives ``num_classes`` is kept as it is, without reading a file.
    """
    resolved: list[DatasetSpec] = []
    for i, spec in enumerate(specs):
        try:
            spec = spec.resolved()
        except (ValueError, OSError) as err:
            raise ConfigError(f"grid.dataset[{i}]: {err}") from None
        if spec in resolved:
            raise ConfigError(f"grid.dataset[{i}]: the same dataset as grid.dataset[{resolved.index(spec)}] "
                              f"once num_classes is read from the file ({spec.num_classes})")
        resolved.append(spec)
    return tuple(resolved)


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m direct_ray.config", description=__doc__.split("\n")[0])
    parser.add_argument("--json-schema", action="store_true", help="print the study format's JSON Schema")
    args = parser.parse_args(argv)
    if not args.json_schema:
        parser.error("nothing to do; pass --json-schema")
    print(json.dumps(study_json_schema(), indent=2))


if __name__ == "__main__":
    main()
