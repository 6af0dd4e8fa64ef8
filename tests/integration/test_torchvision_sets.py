"""CIFAR-10, CIFAR-100 and SVHN through the real torchvision loaders, on tiny files in the real formats.

Nothing is downloaded: the files are written into ``tmp_path`` exactly as the official
archives lay them out (CIFAR pickles, SVHN MATLAB files), and only torchvision's md5 check
is replaced by a file-exists check (the tiny files cannot match the official checksums).
"""

from __future__ import annotations

import os
import pickle
import urllib.error

import numpy as np
import pytest
import scipy.io

pytest.importorskip("torchvision")

import torchvision.datasets.cifar  # noqa: E402
import torchvision.datasets.svhn  # noqa: E402

from direct_ray.data import DatasetSpec, load_dataset  # noqa: E402
from direct_ray.data.torchvision_sets import DatasetUnavailableError  # noqa: E402


@pytest.fixture(autouse=True)
def files_exist_is_enough(monkeypatch):
    """Replace only the md5 comparison: a file must still exist to pass the check."""

    def exists(fpath, md5=None):
        return os.path.isfile(fpath)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", exists)


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _pickle(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar10(root, per_batch: int = 20) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}; rows are R, G, B planes."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for b in range(1, 6):
        x = _images(per_batch, b)
        y = [(i + b) % 10 for i in range(per_batch)]
        _pickle(folder / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "labels": y,
                                             "data": x.reshape(per_batch, 3072), "filenames": ["f.png"] * per_batch})
        train_x.append(x)
        train_y += y
    test_x, test_y = _images(per_batch, 9), [i % 10 for i in range(per_batch)]
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": test_y,
                                    "data": test_x.reshape(per_batch, 3072), "filenames": ["f.png"] * per_batch})
    _pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": per_batch,
                                      "num_vis": 3072})
    return {"x_train": np.concatenate(train_x), "y_train": np.array(train_y), "x_test": test_x, "y_test": np.array(test_y)}


def write_cifar100(root, n_train: int = 200, n_test: int = 100) -> dict[str, np.ndarray]:
    """cifar-100-python/{train, test, meta} with fine and coarse labels."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        x = _images(n, seed)
        fine = [i % 100 for i in range(n)]
        _pickle(folder / split, {"filenames": ["f.png"] * n, "batch_label": split, "fine_labels": fine,
                                 "coarse_labels": [f // 5 for f in fine], "data": x.reshape(n, 3072)})
        out[f"x_{split}"], out[f"y_{split}"] = x, np.array(fine)
    _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                              "coarse_label_names": [f"c{i}" for i in range(20)]})
    return out


def write_svhn(root, n_train: int = 30, n_test: int = 20) -> dict[str, np.ndarray]:
    """{train,test}_32x32.mat: X is 32 x 32 x 3 x N (H, W, C, N), y is N x 1 with 10 for digit 0."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 3), ("test", n_test, 4)):
        x = _images(n, seed)  # N x 3 x H x W
        digits = np.arange(n) % 10
        mat_y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": mat_y})
        out[f"x_{split}"], out[f"y_{split}"] = x, digits
    return out


WRITERS = {"cifar10": write_cifar10, "cifar100": write_cifar100, "svhn": write_svhn}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_real_format_loads_as_uint8_nchw_with_original_pixels(tmp_path, kind):
    truth = WRITERS[kind](tmp_path)
    ds = load_dataset(DatasetSpec(kind, num_classes=3, root=str(tmp_path), download=False))
    assert ds.name == f"{kind}-k3" and ds.kind == "images"
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.dtype == np.uint8 and x.flags.c_contiguous
        assert np.array_equal(x, truth[f"x_{split}"])  # same pixels, same channel order
        assert y.dtype == np.int64
        assert np.array_equal(y, np.minimum(truth[f"y_{split}"], 2))  # first 2 classes kept, rest merged


def test_svhn_digit_zero_is_label_zero(tmp_path):
    write_svhn(tmp_path)
    ds = load_dataset(DatasetSpec("svhn", num_classes=10, root=str(tmp_path), download=False))
    assert ds.y_train[:3].tolist() == [0, 1, 2]
    assert ds.class_counts().tolist() == [3] * 10


def test_cifar10_imbalance_ratio_k2(tmp_path):
    write_cifar10(tmp_path)  # 100 training images, 10 per class
    ds = load_dataset(DatasetSpec("cifar10", num_classes=2, root=str(tmp_path), download=False))
    assert ds.class_counts().tolist() == [10, 90]
    assert ds.imbalance_ratio == pytest.approx(10 / 90)
    assert ds.classes == (0,) + (1,) * 9


def test_the_largest_class_becomes_the_last(tmp_path):
    """SVHN without merging, digit 0 the most frequent (4 of 31): it becomes class 9, the others move down."""
    truth = write_svhn(tmp_path, n_train=31)
    ds = load_dataset(DatasetSpec("svhn", num_classes=10, root=str(tmp_path), download=False))
    assert ds.classes == (9, 0, 1, 2, 3, 4, 5, 6, 7, 8)
    assert np.array_equal(ds.y_train, np.array(ds.classes)[truth["y_train"]])
    assert np.array_equal(ds.y_test, np.array(ds.classes)[truth["y_test"]])
    assert ds.class_counts().tolist() == [3] * 9 + [4]
    # with two classes the merged digits are the largest: the construction's labels
    assert load_dataset(DatasetSpec("svhn", num_classes=2, root=str(tmp_path), download=False)).classes == (0,) + (1,) * 9


def test_download_true_with_files_present_does_not_fetch(tmp_path, monkeypatch):
    write_cifar10(tmp_path)

    def no_network(*args, **kwargs):
        raise AssertionError("must not download when the files are present")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    ds = load_dataset(DatasetSpec("cifar10", root=str(tmp_path), download=True))
    assert len(ds.x_train) == 100


def test_root_expands_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_svhn(tmp_path / "data")
    assert len(load_dataset(DatasetSpec("svhn", root="~/data", download=False)).x_test) == 20


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("cifar10", ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/batches.meta", "cifar-10-python.tar.gz"]),
        ("cifar100", ["cifar-100-python/train", "cifar-100-python/meta", "cifar-100-python.tar.gz"]),
        ("svhn", ["train_32x32.mat", "test_32x32.mat", "ufldl.stanford.edu/housenumbers"]),
    ],
)
def test_missing_files_without_download_say_where_and_how(tmp_path, kind, expected):
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset(DatasetSpec(kind, root=str(tmp_path), download=False))
    message = str(info.value)
    assert str(tmp_path) in message and "download is off" in message
    for piece in expected:
        assert piece in message


def test_a_missing_test_file_is_reported_too(tmp_path):
    write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DatasetUnavailableError, match="test_32x32.mat"):
        load_dataset(DatasetSpec("svhn", root=str(tmp_path), download=False))


@pytest.mark.parametrize(("kind", "module", "fetch"), [
    ("cifar10", torchvision.datasets.cifar, "download_and_extract_archive"),
    ("svhn", torchvision.datasets.svhn, "download_url"),
])
def test_offline_download_is_a_clear_error(tmp_path, monkeypatch, kind, module, fetch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(module, fetch, offline)
    with pytest.raises(DatasetUnavailableError, match="could not be downloaded") as info:
        load_dataset(DatasetSpec(kind, root=str(tmp_path), download=True))
    assert "URLError" in str(info.value) and "Get them from" in str(info.value)
