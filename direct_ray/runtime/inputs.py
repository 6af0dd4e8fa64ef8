"""A dataset in Ray's object store: put once, read zero-copy by every task and actor of every trial.

:func:`put_dataset` stores the pool's inputs, the pool's true labels and the test inputs as
separate objects and keeps only what the round loop reads itself (the test labels, a few
numbers). A sweep does this once per dataset in its driver and hands the references to
every trial, so a worker never needs the dataset's files and no trial reloads them; a trial
run on its own puts its dataset itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


def load_datasets(study, specs: Sequence) -> dict:
    """Load the datasets ``specs`` of ``study`` and check that every trial's budget fits: name -> Dataset."""
    from direct_ray.data import load_dataset
    from direct_ray.trial import check_trial

    loaded = {}
    for spec in specs:
        loaded[spec.name] = load_dataset(spec)
        for trial in study.trials():
            if trial.dataset == spec:
                check_trial(trial, len(loaded[spec.name].y_train), spec.name)
    return loaded


def put_datasets(study, loaded: dict) -> dict:
    """Put every dataset of the study in the object store once (loading those not in ``loaded``): name -> refs.

    ``loaded`` is emptied: afterwards the arrays are held once, in the object store.
    """
    loaded.update(load_datasets(study, [spec for spec in study.datasets if spec.name not in loaded]))
    refs = {}
    while loaded:
        name, dataset = loaded.popitem()
        refs[name] = put_dataset(dataset)
    return refs
