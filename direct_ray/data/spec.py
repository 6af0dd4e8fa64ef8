"""What a study names (:class:`DatasetSpec`) and what loading it gives (:class:`Dataset`).

A spec is the ``dataset:`` mapping of a study, e.g. ``{kind: cifar10, num_classes: 3}``. It
is validated when parsed, so a bad dataset (an unknown kind, K larger than the dataset's
classes, a features file without ``path``) is an error before anything starts. A features
file's ``num_classes`` defaults to the file's own number of classes, which
:meth:`DatasetSpec.resolved` reads when a study is parsed, so that dataset names and trial
ids are known before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

import numpy as np
from pydantic import Field, model_validator

from direct_ray.data.imbalance import imbalance_ratio
from direct_ray.validated import Flag, Frozen, Int, Text, parse

DATASET_KINDS = ("digits", "features", "cifar10", "cifar100", "svhn")
TORCHVISION_KINDS = ("cifar10", "cifar100", "svhn")

# Original classes of the built-in datasets (a features file's classes are known on load).
KNOWN_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}

# num_classes of a built-in dataset that the study leaves out: one class against the rest.
DEFAULT_NUM_CLASSES = 2

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")



class DatasetUnavailableError(RuntimeError):
    """The dataset's files are not on disk (or are corrupted) and could not be downloaded."""

class DatasetSpec(Frozen):
    """Which dataset, with how many classes after the imbalance construction.

    ``path`` is the ``.npz`` file of kind ``features`` (and only of it); ``root`` and
    ``download`` are passed to torchvision for ``cifar10``, ``cifar100`` and ``svhn`` (and only
    for them). Giving a field the kind does not use is an error, so typos surface early.
    ``num_classes`` left out is 2 for the built-in kinds; for a features file it stays None
    until :meth:`resolved` reads the file's own number of classes.
    """

    kind: Literal[DATASET_KINDS]
    num_classes: Optional[Int(2)] = Field(
        None, description="classes after the imbalance construction (default: 2; a features file's own classes)"
    )
    path: Optional[Text] = None
    root: Text = "~/data"
    download: Flag = True

    @model_validator(mode="before")
    @classmethod
    def _builtin_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") in KNOWN_CLASSES and data.get("num_classes") is None:
            return {**data, "num_classes": DEFAULT_NUM_CLASSES}
        return data

    @model_validator(mode="after")
    def _fits_the_kind(self) -> "DatasetSpec":
        known = KNOWN_CLASSES.get(self.kind)
        if known is not None and self.num_classes > known:
            raise ValueError(f"num_classes={self.num_classes} exceeds the {known} classes of {self.kind}")
        if self.kind == "features" and self.path is None:
            raise ValueError("path: kind 'features' needs path, the .npz file (x_train, y_train, x_test, y_test)")
        if self.kind != "features" and self.path is not None:
            raise ValueError(f"path: only kind 'features' reads a file; {self.kind!r} takes no path")
        if self.kind not in TORCHVISION_KINDS:
            for key in sorted({"root", "download"} & self.model_fields_set):
                raise ValueError(f"{key}: only the torchvision kinds {list(TORCHVISION_KINDS)} use it")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DatasetSpec":
        """Parse a study's ``dataset:`` mapping; unknown or unused keys are errors naming the key."""
        return parse(cls, data, "dataset")

    def to_dict(self) -> dict:
        """The fields this kind uses (what ``from_dict`` accepts back)."""
        out: dict[str, Any] = {"kind": self.kind, "num_classes": self.num_classes}
        if self.kind == "features":
            out["path"] = self.path
        if self.kind in TORCHVISION_KINDS:
            out["root"] = self.root
            out["download"] = self.download
        return out

    def resolved(self) -> "DatasetSpec":
        """This spec with ``num_classes`` known: a features file without one gets its own number of classes.

        Reads only the file's ``y_train`` (see :func:`direct_ray.data.features.features_classes`);
        a spec that has ``num_classes`` is returned as it is, without touching any file.
        """
        if self.num_classes is not None:
            return self
        from direct_ray.data.features import features_classes

        return self.model_copy(update={"num_classes": features_classes(self.path)})

    @property
    def name(self) -> str:
        """A short filesystem-safe label, e.g. ``digits-k2`` or ``features-my_emb-k3``."""
        if self.num_classes is None:
            raise ValueError(f"dataset {self.path!r}: num_classes is not known yet; use DatasetSpec.resolved()")
        base = self.kind
        if self.kind == "features":
            base = f"features-{_UNSAFE.sub('_', Path(self.path).stem) or 'file'}"
        return f"{base}-k{self.num_classes}"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test splits with labels already imbalanced to 0..K-1 (class K-1 the majority).

    ``kind`` is ``"features"`` (x is N x D float32) or ``"images"`` (x is N x 3 x H x W uint8,
    normalised only inside training). The training split is the active-learning pool.
    ``classes`` is the study label of each original class (index: original label), as
    :func:`direct_ray.data.imbalance.class_map` gives it; the results record it.
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    classes: tuple[int, ...]

    def __post_init__(self) -> None:
        ndim = {"features": 2, "images": 4}.get(self.kind)
        if ndim is None:
            raise ValueError(f"kind must be 'features' or 'images', got {self.kind!r}")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != ndim or y.shape != (len(x),) or y.dtype != np.int64:
                raise ValueError(f"{split} split: x must be {ndim}-D with one int64 label per row")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"{split} split: labels must lie in 0..{self.num_classes - 1}")
        if sorted(set(self.classes)) != list(range(self.num_classes)):
            raise ValueError(f"classes must map the original classes onto every class 0..{self.num_classes - 1}")

    def class_counts(self) -> np.ndarray:
        """Examples per class in the training split (length K)."""
        return np.bincount(self.y_train, minlength=self.num_classes)

    @property
    def imbalance_ratio(self) -> float:
        """Largest minority class over the majority class, training split (Table 1's gamma)."""
        return imbalance_ratio(self.y_train, self.num_classes)
