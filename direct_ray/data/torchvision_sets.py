"""The paper's image datasets through ``torchvision.datasets``: CIFAR-10, CIFAR-100, SVHN.

Images come back as uint8 N x 3 x 32 x 32 (normalisation is the model's job) with the
original labels (SVHN's digit '0' is label 0, as torchvision maps it). ``download=True``
fetches missing files when online; when the files are neither on disk nor reachable, the
error says where they were expected and where to get them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torchvision import datasets

from direct_ray.data.spec import DatasetUnavailableError


def expected_files(kind: str, root: Path) -> tuple[list[Path], str]:
    """The files torchvision reads for ``kind`` under ``root`` and the URL(s) they come from."""
    if kind == "svhn":
        entries = [datasets.SVHN.split_list[split] for split in ("train", "test")]
        return [root / filename for _, filename, _ in entries], " and ".join(url for url, _, _ in entries)
    cls = datasets.CIFAR10 if kind == "cifar10" else datasets.CIFAR100
    names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return [root / cls.base_folder / name for name in names], f"{cls.url} (extract it into {root})"


def _open(kind: str, root: Path, train: bool, download: bool):
    if kind == "svhn":
        return datasets.SVHN(str(root), split="train" if train else "test", download=download)
    cls = datasets.CIFAR10 if kind == "cifar10" else datasets.CIFAR100
    return cls(str(root), train=train, download=download)


def _arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(dataset, datasets.SVHN):  # already N x 3 x H x W
        images, labels = dataset.data, dataset.labels
    else:  # CIFAR keeps N x H x W x 3
        images, labels = dataset.data.transpose(0, 3, 1, 2), dataset.targets
    return np.ascontiguousarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64)


def torchvision_splits(kind: str, root: str, download: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of ``kind`` in ``cifar10``, ``cifar100``, ``svhn``."""
    root_path = Path(os.path.expanduser(root))
    try:
        train, test = (_open(kind, root_path, flag, download) for flag in (True, False))
        x_train, y_train = _arrays(train)
        x_test, y_test = _arrays(test)
    except (RuntimeError, OSError) as err:  # torchvision: "not found or corrupted"; offline: URLError
        files, source = expected_files(kind, root_path)
        listing = "\n  ".join(str(f) for f in files)
        how = "it could not be downloaded" if download else "download is off (dataset.download: false)"
        raise DatasetUnavailableError(
            f"{kind}: the dataset files are missing or corrupted under root {str(root_path)!r} and {how} "
            f"({type(err).__name__}: {err}).\nExpected:\n  {listing}\nGet them from {source}, "
            f"or run once with dataset.download: true on a machine that is online."
        ) from err
    return x_train, y_train, x_test, y_test
