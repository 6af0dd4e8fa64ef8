"""The ``model:`` block of a study: which network and its optimiser settings (no torch here).

:mod:`direct_ray.models` (the torch side) and :mod:`direct_ray.training` both read it, so it
lives apart from them. Per-kind defaults (any of them can be set in the study):

========= ====== ===== ============ ========== ==========================================
kind      epochs lr    weight_decay batch_size why
========= ====== ===== ============ ========== ==========================================
mlp       50     0.01  5e-5         128        fast on one CPU core (digits, 300 labels,
                                               1,257-example pool: about 0.1 s) and as
                                               accurate there as longer schedules
linear    50     0.01  5e-5         128        softmax regression on the given features
resnet18  20     0.01  5e-5         128        the paper's Adam and lr 0.01, GALAXY's weight
                                               decay; the paper trains 500 epochs per round
                                               (set ``epochs: 500`` to reproduce it exactly)
========= ====== ===== ============ ========== ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictFloat, StrictInt, model_validator

from direct_ray.validated import Flag, Frozen, Int, Text, one_of, parse

MODEL_KINDS = ("mlp", "linear", "resnet18")

DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"epochs": 50, "lr": 1e-2, "weight_decay": 5e-5, "batch_size": 128},
    "linear": {"epochs": 50, "lr": 1e-2, "weight_decay": 5e-5, "batch_size": 128},
    "resnet18": {"epochs": 20, "lr": 1e-2, "weight_decay": 5e-5, "batch_size": 128},
}

# Fields only one kind uses: giving them to another kind is an error.
_KIND_ONLY = {"hidden": "mlp", "pretrained": "resnet18"}

# lr and weight_decay keep the type they were given (1 stays 1): trial ids hash them.
_Positive = Annotated[Union[StrictInt, StrictFloat], Field(gt=0, allow_inf_nan=False), one_of("a positive number")]
_NonNegative = Annotated[
    Union[StrictInt, StrictFloat], Field(ge=0, allow_inf_nan=False), one_of("a non-negative number")
]
_Pretrained = Annotated[Union[StrictBool, Text], one_of("true, false or a path to a .pth state_dict")]


class ModelConfig(Frozen):
    """The network and its optimiser settings; ``None`` means the kind's default (see module doc).

    ``pretrained`` (resnet18 only): ``False`` for random initialisation, ``True`` for
    torchvision's ImageNet weights (downloaded when online, read from torch's hub cache
    otherwise), or a path to a ``.pth`` state_dict of a torchvision ResNet-18 (its ``fc``
    is ignored). ``hidden`` (mlp only): the hidden layer's width. ``class_weighted``:
    cross-entropy weights each labeled example by the inverse frequency of its class among
    the labeled set (GALAXY's training code).
    """

    kind: Literal[MODEL_KINDS] = "mlp"
    pretrained: _Pretrained = False
    hidden: Int(1) = 128
    epochs: Optional[Int(1)] = None
    lr: Optional[_Positive] = None
    weight_decay: Optional[_NonNegative] = None
    batch_size: Optional[Int(1)] = None
    class_weighted: Flag = True

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        """Refuse fields of another kind; fill the settings left out (or null) from DEFAULTS."""
        if not isinstance(data, Mapping) or data.get("kind", "mlp") not in MODEL_KINDS:
            return data
        kind = data.get("kind", "mlp")
        for key, only in _KIND_ONLY.items():
            if key in data and kind != only:
                raise ValueError(f"{key} applies to kind {only!r} only, not {kind!r}")
        return {**data, **{k: v for k, v in DEFAULTS[kind].items() if data.get(k) is None}}

    @model_validator(mode="after")
    def _batch_norm(self) -> "ModelConfig":
        # The ResNet's batch norm needs at least two examples per training batch.
        if self.kind == "resnet18" and self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for kind 'resnet18' (batch norm), got {self.batch_size}")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Parse a study's ``model:`` mapping: ``kind`` plus hyperparameters overriding the defaults."""
        return parse(cls, data, "model")

    def to_dict(self) -> dict:
        """Every setting this kind uses, defaults resolved (what ``from_dict`` accepts back)."""
        return {
            name: getattr(self, name)
            for name in type(self).model_fields
            if _KIND_ONLY.get(name, self.kind) == self.kind
        }
