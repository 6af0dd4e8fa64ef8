"""The building blocks of the study schema: a frozen pydantic base, strict field types, errors.

Every typed config (dataset, noise, model, resources, trial, study) derives from
:class:`Frozen`: immutable and hashable (configs are set members and dict keys), unknown keys
refused with the list of allowed ones, and constructible positionally in field order as
the dataclasses it replaces were. Validation failures become one :class:`ConfigError` whose
lines each name the field, e.g. ``grid.noise[1].rate: input should be less than 1, got 1.5``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WrapValidator, model_validator


class ConfigError(ValueError):
    """An invalid study or trial configuration; the message names the field."""


class Frozen(BaseModel):
    """An immutable, hashable config that refuses unknown keys (naming the allowed ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, *args: Any, **data: Any) -> None:
        names = list(type(self).model_fields)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments")
        doubled = sorted(set(names[: len(args)]) & set(data))
        if doubled:
            raise TypeError(f"{type(self).__name__} got {doubled} both by position and by name")
        try:
            super().__init__(**dict(zip(names, args)), **data)
        except ValidationError as err:
            raise config_error(err) from None

    # Only forwards to BaseModel.__init__: nested validation may skip it (pydantic's own marker).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown key(s) {unknown}; allowed: {list(cls.model_fields)}")
        return data


def Int(minimum: int) -> Any:
    """An integer (never a bool, never a float or text) of at least ``minimum``."""
    return Annotated[int, Field(strict=True, ge=minimum)]


def Number(**bounds: float) -> Any:
    """A finite number, never a bool; an integer becomes a float. ``bounds``: ge, gt, lt, le."""
    return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]


Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, Field(strict=True, min_length=1)]


def one_of(what: str) -> WrapValidator:
    """One error ``must be <what>`` for a union type (pydantic would report one per member)."""

    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"must be {what}, got {value!r}") from None

    return WrapValidator(check)


# A discriminated union's tag shows in error locations; marked, it is left out of them.
_TAG_MARK = ":"


def union_tag(value: str) -> str:
    """The tag of a discriminated union's member (see :func:`config_error`)."""
    return _TAG_MARK + value


def _line(error: dict, where: str) -> str:
    path = where
    for part in error["loc"]:
        if isinstance(part, str) and part.startswith(_TAG_MARK):
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = error["type"]
    if kind == "value_error":
        message = str(error["ctx"]["error"])
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"must be a mapping, got {type(error['input']).__name__}"
    elif kind == "missing":
        message = "is required"
    else:
        message = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"
    return f"{path}: {message}" if path else message


def config_error(err: ValidationError, where: str = "") -> ConfigError:
    """``err`` as a :class:`ConfigError`, one line per error; locations are prefixed by ``where``."""
    return ConfigError("\n".join(_line(e, where) for e in err.errors()))


def parse(schema: type[BaseModel] | TypeAdapter, data: Any, where: str = "") -> Any:
    """Validate ``data`` against a model or adapter; a failure is a :class:`ConfigError` (see :func:`config_error`)."""
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(data)
        return schema.model_validate(data)
    except ValidationError as err:
        raise config_error(err, where) from None
