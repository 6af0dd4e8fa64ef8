"""A features file brought by the user: ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Features are float arrays (N x D, any float dtype, loaded as float32); labels are integers
0..M-1 and every class must occur in ``y_train``. Each check raises a ``ValueError`` naming
the file and the key, so a malformed file fails before a study starts. A study that does not
give ``num_classes`` gets the file's own M, read by :func:`features_classes` from ``y_train``
alone when the study is parsed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path, keys: tuple[str, ...] = KEYS) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the file (an .npz reads only those), or a ValueError naming the file."""
    where = f"features file {str(path)!r}"
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where} is not a readable .npz file: {err}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} is a single .npy array; save an .npz with keys {list(KEYS)} (numpy.savez)")
    with npz:
        missing = [key for key in KEYS if key not in npz.files]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}; it has {sorted(npz.files)}")
        try:
            return {key: npz[key] for key in keys}
        except ValueError as err:  # object arrays need pickle, which is never allowed here
            raise ValueError(f"{where} holds Python objects ({err}); store numeric arrays") from None


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"features file {str(path)!r} not found (expected an .npz with keys {list(KEYS)})")
    return path


def features_classes(path: str | Path) -> int:
    """M = max(y_train) + 1, the file's number of classes, reading only ``y_train``.

    The full checks of every array happen when the file is loaded (:func:`features_splits`);
    here only what M needs: integer labels, at least two classes.
    """
    path = _existing(path)
    y = _read_npz(path, ("y_train",))["y_train"]
    where = f"features file {str(path)!r}"
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: y_train must be a non-empty 1-D integer array, got {y.dtype} of shape {y.shape}")
    classes = int(y.max()) + 1
    if classes < 2:
        raise ValueError(f"{where}: y_train has a single class; active learning under imbalance needs at least 2")
    return classes


def features_splits(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(x_train, y_train, x_test, y_test, M): validated arrays and the number of classes in the file."""
    path = _existing(path)
    arrays = _read_npz(path)
    where = f"features file {str(path)!r}"
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{where}: x_{split} must be a non-empty N x D array, got shape {x.shape}")
        if y.ndim != 1:
            raise ValueError(f"{where}: y_{split} must be a 1-D array, got shape {y.shape}")
        if len(y) != len(x):
            raise ValueError(f"{where}: x_{split} has {len(x)} rows but y_{split} has {len(y)} labels")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{where}: x_{split} must hold floats, got dtype {x.dtype}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{where}: y_{split} must hold integers, got dtype {y.dtype}")
        if not np.isfinite(x).all():
            raise ValueError(f"{where}: x_{split} contains NaN or infinite values")
    if arrays["x_train"].shape[1] != arrays["x_test"].shape[1]:
        raise ValueError(
            f"{where}: x_train has {arrays['x_train'].shape[1]} features but x_test has {arrays['x_test'].shape[1]}"
        )
    y_train, y_test = arrays["y_train"], arrays["y_test"]
    classes = int(y_train.max()) + 1
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        bad = (y < 0) | (y >= classes)
        if bad.any():
            raise ValueError(
                f"{where}: {key} has label {y[bad][0]} outside 0..{classes - 1} "
                f"(the classes are 0..max(y_train))"
            )
    absent = np.flatnonzero(np.bincount(y_train, minlength=classes) == 0)
    if absent.size:
        raise ValueError(f"{where}: class(es) {absent.tolist()} absent from y_train; labels must be 0..M-1, all present")
    return (
        arrays["x_train"].astype(np.float32, copy=False),
        y_train.astype(np.int64, copy=False),
        arrays["x_test"].astype(np.float32, copy=False),
        y_test.astype(np.int64, copy=False),
        classes,
    )
