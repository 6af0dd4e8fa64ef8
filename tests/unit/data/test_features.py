"""A user's features file: a good file loads and is imbalanced; every malformed file is a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from direct_ray.data import DatasetSpec, load_dataset


def good_arrays(classes: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y_train = np.arange(40) % classes
    return {
        "x_train": rng.normal(size=(40, 5)),  # float64 on disk: loaded as float32
        "y_train": y_train.astype(np.int32),
        "x_test": rng.normal(size=(12, 5)).astype(np.float32),
        "y_test": (np.arange(12) % 2).astype(np.int64),  # a test split may lack classes
    }


def write(tmp_path, arrays, name="emb.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def test_good_file_loads_and_is_imbalanced(tmp_path):
    arrays = good_arrays()
    ds = load_dataset(DatasetSpec("features", num_classes=3, path=write(tmp_path, arrays)))
    assert ds.name == "features-emb-k3" and ds.kind == "features"
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (40, 5)
    assert np.allclose(ds.x_train, arrays["x_train"])
    assert ds.y_train.dtype == np.int64
    assert ds.class_counts().tolist() == [10, 10, 20]
    assert ds.imbalance_ratio == 0.5
    assert ds.y_test.tolist() == arrays["y_test"].tolist()


def test_num_classes_equal_to_the_files_classes_keeps_labels(tmp_path):
    ds = load_dataset(DatasetSpec("features", num_classes=4, path=write(tmp_path, good_arrays())))
    assert ds.class_counts().tolist() == [10, 10, 10, 10]


def test_path_with_user_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, good_arrays())
    assert load_dataset(DatasetSpec("features", path="~/emb.npz")).x_train.shape == (40, 5)


def _with(**changes):
    arrays = good_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


def _nan_train():
    x = good_arrays()["x_train"]
    x[3, 1] = np.nan
    return x


def _inf_test():
    x = good_arrays()["x_test"]
    x[0, 0] = -np.inf
    return x


BAD = {
    "missing key": (_with(y_test=None), r"missing key\(s\) \['y_test'\]"),
    "x not 2-D": (_with(x_train=np.zeros((40, 5, 1))), r"x_train must be a non-empty N x D array, got shape \(40, 5, 1\)"),
    "x empty": (_with(x_test=np.zeros((0, 5)), y_test=np.zeros(0, dtype=int)), "x_test must be a non-empty"),
    "y not 1-D": (_with(y_train=np.zeros((40, 1), dtype=int)), r"y_train must be a 1-D array"),
    "lengths differ": (_with(y_test=np.zeros(11, dtype=int)), "x_test has 12 rows but y_test has 11 labels"),
    "widths differ": (_with(x_test=np.zeros((12, 4))), "x_train has 5 features but x_test has 4"),
    "integer features": (_with(x_train=np.zeros((40, 5), dtype=np.int64)), "x_train must hold floats, got dtype int64"),
    "float labels": (_with(y_test=np.zeros(12)), "y_test must hold integers, got dtype float64"),
    "NaN": (_with(x_train=_nan_train()), "x_train contains NaN or infinite"),
    "inf": (_with(x_test=_inf_test()), "x_test contains NaN or infinite"),
    "negative label": (_with(y_train=np.r_[-1, np.arange(39) % 4]), r"y_train has label -1 outside 0..3"),
    "test label too big": (_with(y_test=np.r_[7, np.zeros(11, dtype=int)]), r"y_test has label 7 outside 0..3"),
    "class absent": (_with(y_train=np.where(np.arange(40) % 4 == 1, 0, np.arange(40) % 4)), r"class\(es\) \[1\] absent from y_train"),
    "object array": (_with(y_test=np.array([1, "a"] * 6, dtype=object)), "holds Python objects"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_a_clear_error_naming_file_and_key(tmp_path, case):
    arrays, message = BAD[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load_dataset(DatasetSpec("features", path=str(path)))
    assert "bad.npz" in str(info.value)


def test_more_classes_than_the_file_has(tmp_path):
    path = write(tmp_path, good_arrays())
    with pytest.raises(ValueError, match=r"num_classes=5 exceeds the 4 classes in .*emb.npz"):
        load_dataset(DatasetSpec("features", num_classes=5, path=path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz.*not found"):
        load_dataset(DatasetSpec("features", path=str(tmp_path / "nope.npz")))


def test_not_an_npz(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.npz.* is not a readable .npz file"):
        load_dataset(DatasetSpec("features", path=str(text)))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load_dataset(DatasetSpec("features", path=str(single)))
