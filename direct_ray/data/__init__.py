"""Datasets: the embedded digits, a user's features file, and CIFAR-10/100 and SVHN via torchvision.

``load_dataset(spec)`` returns a :class:`Dataset` whose labels are already made imbalanced
the paper's way (:func:`imbalanced_labels`: the first K-1 classes kept, the rest merged into
class K-1, the majority), on both splits. torchvision is imported only when an image
dataset is loaded, so parsing a study (and the pure tests) never loads torch.
"""

from __future__ import annotations

from direct_ray.data.imbalance import imbalance_ratio, imbalanced_labels
from direct_ray.data.spec import DATASET_KINDS, KNOWN_CLASSES, TORCHVISION_KINDS, Dataset, DatasetSpec

__all__ = [
    "DATASET_KINDS",
    "KNOWN_CLASSES",
    "TORCHVISION_KINDS",
    "Dataset",
    "DatasetSpec",
    "imbalance_ratio",
    "imbalanced_labels",
    "load_dataset",
]


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Read the dataset ``spec`` names and apply the imbalance construction with ``spec.num_classes``.

    Raises ``ValueError`` for a malformed features file or a K larger than its classes,
    ``FileNotFoundError`` for a missing features file, and
    ``direct_ray.data.spec.DatasetUnavailableError`` for image datasets that are
    neither on disk nor downloadable.
    """
    if spec.kind == "digits":
        from direct_ray.data.digits import digits_splits

        x_train, y_train, x_test, y_test = digits_splits()
        kind = "features"
    elif spec.kind == "features":
        from direct_ray.data.features import features_splits

        x_train, y_train, x_test, y_test, classes = features_splits(spec.path)
        if spec.num_classes > classes:
            raise ValueError(f"num_classes={spec.num_classes} exceeds the {classes} classes in {spec.path!r}")
        kind = "features"
    else:
        from direct_ray.data.torchvision_sets import torchvision_splits

        x_train, y_train, x_test, y_test = torchvision_splits(spec.kind, spec.root, spec.download)
        kind = "images"
    return Dataset(
        name=spec.name,
        kind=kind,
        x_train=x_train,
        y_train=imbalanced_labels(y_train, spec.num_classes),
        x_test=x_test,
        y_test=imbalanced_labels(y_test, spec.num_classes),
        num_classes=spec.num_classes,
    )
