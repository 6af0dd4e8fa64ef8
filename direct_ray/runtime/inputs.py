"""A dataset in Ray's object store: put once, read zero-copy by every task and actor of every trial.

:func:`put_dataset` stores the pool's inputs, the pool's true labels and the test inputs as
separate objects and keeps only what the round loop reads itself (the test labels, a few
numbers). A sweep does this once per dataset in its driver and hands the references to
every trial, so a worker never needs the dataset's files and no trial reloads them; a trial
run on its own puts its dataset itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ray

from direct_ray.data import Dataset


@dataclass(frozen=True)
class DatasetRefs:
    """Object-store references to one dataset's arrays, plus what the round loop needs in hand."""

    name: str
    num_classes: int
    classes: tuple[int, ...]  # study class of each original class (Dataset.classes)
    imbalance_ratio: float
    pool_size: int
    x_pool: ray.ObjectRef
    x_test: ray.ObjectRef
    truth: ray.ObjectRef  # the pool's true labels: only the annotators read them
    y_test: np.ndarray


def put_dataset(dataset: Dataset) -> DatasetRefs:
    """Put ``dataset``'s arrays into the object store (the caller may drop its own copy after)."""
    return DatasetRefs(
        name=dataset.name,
        num_classes=dataset.num_classes,
        classes=dataset.classes,
        imbalance_ratio=float(dataset.imbalance_ratio),
        pool_size=len(dataset.y_train),
        x_pool=ray.put(dataset.x_train),
        x_test=ray.put(dataset.x_test),
        truth=ray.put(dataset.y_train),
        y_test=dataset.y_test,
    )
