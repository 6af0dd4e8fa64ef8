"""Datasets: the embedded digits, a user's features file, and CIFAR-10/100 and SVHN via torchvision.

``load_dataset(spec)`` returns a :class:`Dataset` whose labels are already made imbalanced
the paper's way (:func:`imbalanced_labels`: the first K-1 classes kept, the rest merged into
class K-1), on both splits, with the largest class of the training split as class K-1, the
majority (:func:`class_map`). torchvision is imported only when an image dataset is loaded,
so parsing a study (and the pure tests) never loads torch.
"""

from __future__ import annotations

from direct_ray.data.imbalance import class_map, imbalance_ratio, imbalanced_labels, majority_last
from direct_ray.data.spec import DATASET_KINDS, KNOWN_CLASSES, TORCHVISION_KINDS, Dataset, DatasetSpec

__all__ = [
    "DATASET_KINDS",
    "KNOWN_CLASSES",
    "TORCHVISION_KINDS",
    "Dataset",
    "DatasetSpec",
    "class_map",
    "imbalance_ratio",
    "imbalanced_labels",
    "load_dataset",
    "majority_last",
]


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Read the dataset ``spec`` names and apply the imbalance construction with ``spec.num_classes``.

    The labels of both splits are ``class_map(...)[original]``: the paper's construction,
    then the training split's largest class moved to K-1. A features spec without
    ``num_classes`` takes the file's own number of classes.

    Raises ``ValueError`` for a malformed features file or a K larger than its classes,
    ``FileNotFoundError`` for a missing features file, and
    ``direct_ray.data.spec.DatasetUnavailableError`` for image datasets that are
    neither on disk nor downloadable.
    """
    if spec.kind == "digits":
        from direct_ray.data.digits import digits_splits

        x_train, y_train, x_test, y_test = digits_splits()
        kind, original = "features", KNOWN_CLASSES["digits"]
    elif spec.kind == "features":
        from direct_ray.data.features import features_splits

        x_train, y_train, x_test, y_test, original = features_splits(spec.path)
        spec = spec.resolved()
        if spec.num_classes > original:
            raise ValueError(f"num_classes={spec.num_classes} exceeds the {original} classes in {spec.path!r}")
        kind = "features"
    else:
        from direct_ray.data.torchvision_sets import torchvision_splits

        x_train, y_train, x_test, y_test = torchvision_splits(spec.kind, spec.root, spec.download)
        kind, original = "images", KNOWN_CLASSES[spec.kind]
    mapping = class_map(y_train, spec.num_classes, original)
    return Dataset(
        name=spec.name,
        kind=kind,
        x_train=x_train,
        y_train=mapping[y_train],
        x_test=x_test,
        y_test=mapping[y_test],
        num_classes=spec.num_classes,
        classes=tuple(int(c) for c in mapping),
    )
