"""Class K-1 is the majority whatever order a features file's classes come in; num_classes defaults to the file's.

Each file here has a known rare class (first, in the middle, last); after loading, the study
labels, the recorded mapping, the imbalance ratio and the count of minority labels bought
must all name the truly rare classes as the minority.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification

from direct_ray.config import ConfigError, StudyConfig
from direct_ray.data import DatasetSpec, class_map, load_dataset, majority_last
from direct_ray.pool_state import PoolState
from tests.studies import grid, study


def labels_with_counts(counts: list[int], seed: int = 0) -> np.ndarray:
    """Shuffled labels: ``counts[c]`` examples of class ``c``."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))


def write_file(tmp_path, y_train: np.ndarray, y_test: np.ndarray, name: str = "emb.npz") -> str:
    rng = np.random.default_rng(1)
    path = tmp_path / name
    np.savez(path, x_train=rng.normal(size=(len(y_train), 4)), y_train=y_train,
             x_test=rng.normal(size=(len(y_test), 4)), y_test=y_test)
    return str(path)


def minority_labels_bought(dataset) -> int:
    """PoolState.n_minority after buying the whole pool with its true labels."""
    pool = PoolState.empty(len(dataset.y_train), dataset.num_classes)
    everything = np.arange(len(dataset.y_train))
    pool.record(0, everything, dataset.y_train, dataset.y_train, np.zeros_like(everything))
    return pool.n_minority()


# (training counts per original class, K, study class of each original class)
CASES = {
    "K=2, rare class first": ([20, 180], 2, [0, 1]),
    "K=2, rare class last": ([180, 20], 2, [1, 0]),
    "K=3, rare class first": ([10, 30, 160], 3, [0, 1, 2]),
    "K=3, rare class in the middle": ([160, 10, 30], 3, [2, 0, 1]),
    "K=3, rare class last": ([160, 30, 10], 3, [2, 0, 1]),
    "K=3, majority in the middle": ([30, 160, 10], 3, [0, 2, 1]),
    "K=2 of 3 classes, merged class not the largest": ([140, 40, 20], 2, [1, 0, 0]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_majority_becomes_class_k_minus_1(tmp_path, case):
    counts, k, expected = CASES[case]
    y_train = labels_with_counts(counts)
    y_test = labels_with_counts([max(c // 10, 1) for c in counts], seed=2)
    ds = load_dataset(DatasetSpec("features", num_classes=k, path=write_file(tmp_path, y_train, y_test)))
    mapping = np.array(expected)
    assert ds.classes == tuple(expected)
    assert np.array_equal(ds.y_train, mapping[y_train])
    assert np.array_equal(ds.y_test, mapping[y_test])
    study_counts = ds.class_counts()
    assert study_counts[k - 1] == study_counts.max()
    merged = np.bincount(mapping, weights=counts, minlength=k)
    assert ds.imbalance_ratio == pytest.approx(np.sort(merged)[-2] / merged.max())
    # the minority labels are those of the original classes that did not become the majority
    rare = sum(c for c, study_class in zip(counts, expected) if study_class < k - 1)
    assert minority_labels_bought(ds) == rare == len(y_train) - max(merged)


def test_make_classification_rare_class_one_is_the_minority(tmp_path):
    x, y = make_classification(n_samples=400, n_features=4, weights=[0.9, 0.1], flip_y=0, random_state=0)
    assert np.bincount(y)[0] > np.bincount(y)[1]  # scikit-learn makes class 0 the common one
    path = tmp_path / "skl.npz"
    np.savez(path, x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    ds = load_dataset(DatasetSpec("features", path=str(path)))
    assert ds.num_classes == 2 and ds.classes == (1, 0)
    assert np.array_equal(ds.y_train, 1 - y[:300]) and np.array_equal(ds.y_test, 1 - y[300:])
    assert minority_labels_bought(ds) == np.count_nonzero(y[:300] == 1)
    assert ds.imbalance_ratio == pytest.approx(np.count_nonzero(y[:300] == 1) / np.count_nonzero(y[:300] == 0))


@pytest.mark.parametrize(
    ("counts", "perm"),
    [
        ([5, 1], [1, 0]),
        ([1, 5], [0, 1]),
        ([1, 5, 2], [0, 2, 1]),
        ([9, 1, 3], [2, 0, 1]),
        ([3, 3], [0, 1]),  # class K-1 ties for the largest: kept
        ([4, 4, 1], [2, 0, 1]),  # the first of tied largest classes becomes K-1
        ([1, 2, 9, 3, 4], [0, 1, 4, 2, 3]),
    ],
)
def test_majority_last(counts, perm):
    assert majority_last(np.array(counts)).tolist() == perm


def test_class_map_needs_every_original_class():
    with pytest.raises(ValueError, match="num_original"):
        class_map(np.array([0, 1, 2]), 2, 2)


# --- num_classes defaults to the file's own classes -----------------------------------------


def three_class_file(tmp_path, name: str = "three.npz") -> str:
    return write_file(tmp_path, labels_with_counts([10, 20, 70]), labels_with_counts([2, 3, 5]), name)


def test_default_num_classes_is_the_files(tmp_path):
    spec = DatasetSpec("features", path=three_class_file(tmp_path))
    assert spec.num_classes is None
    assert spec.resolved().num_classes == 3 and spec.resolved().name == "features-three-k3"
    ds = load_dataset(spec)
    assert ds.num_classes == 3 and ds.name == "features-three-k3"
    assert ds.class_counts().tolist() == [10, 20, 70]


def test_a_study_reads_num_classes_when_parsed(tmp_path):
    path = three_class_file(tmp_path)
    left_out = StudyConfig.from_dict(study(grid=grid(dataset=[{"kind": "features", "path": path}])))
    given = StudyConfig.from_dict(study(grid=grid(dataset=[{"kind": "features", "path": path, "num_classes": 3}])))
    assert [d.name for d in left_out.datasets] == ["features-three-k3"]
    assert [t.trial_id for t in left_out.trials()] == [t.trial_id for t in given.trials()]
    assert all(t.dataset.num_classes == 3 and t.trial_id.startswith("features-three-k3_") for t in left_out.trials())


def test_a_two_class_file_keeps_the_former_default_ids(tmp_path):
    path = write_file(tmp_path, labels_with_counts([20, 80]), labels_with_counts([2, 8]))
    left_out = StudyConfig.from_dict(study(grid=grid(dataset=[{"kind": "features", "path": path}])))
    given = StudyConfig.from_dict(study(grid=grid(dataset=[{"kind": "features", "path": path, "num_classes": 2}])))
    assert [t.trial_id for t in left_out.trials()] == [t.trial_id for t in given.trials()]


def test_a_given_num_classes_reads_no_file(tmp_path):
    data = study(grid=grid(dataset=[{"kind": "features", "path": str(tmp_path / "absent.npz"), "num_classes": 2}]))
    assert StudyConfig.from_dict(data).datasets[0].name == "features-absent-k2"


@pytest.mark.parametrize(
    ("y_train", "message"),
    [
        (None, r"grid.dataset\[0\]: features file .*absent.npz' not found"),
        (np.zeros(10, dtype=int), r"grid.dataset\[0\]: .*y_train has a single class"),
        (np.linspace(0, 1, 10), r"grid.dataset\[0\]: .*y_train must be a non-empty 1-D integer array"),
    ],
)
def test_a_file_whose_classes_cannot_be_read_is_a_config_error(tmp_path, y_train, message):
    path = str(tmp_path / "absent.npz") if y_train is None else write_file(tmp_path, y_train, y_train[:2], "absent.npz")
    with pytest.raises(ConfigError, match=message):
        StudyConfig.from_dict(study(grid=grid(dataset=[{"kind": "features", "path": path}])))


def test_the_same_dataset_twice_once_resolved_is_an_error(tmp_path):
    path = three_class_file(tmp_path)
    datasets = [{"kind": "features", "path": path}, {"kind": "features", "path": path, "num_classes": 3}]
    with pytest.raises(ConfigError, match=r"grid.dataset\[1\]: the same dataset as grid.dataset\[0\]"):
        StudyConfig.from_dict(study(grid=grid(dataset=datasets)))


def test_noise_is_checked_against_the_files_classes(tmp_path):
    matrix = [[0.9, 0.1], [0.1, 0.9]]  # a 2-class matrix for a 3-class file
    data = study(grid=grid(dataset=[{"kind": "features", "path": three_class_file(tmp_path)}],
                           noise=[{"model": "class_conditional", "matrix": matrix}]))
    with pytest.raises(ConfigError, match="noise: matrix is 2 x 2 but the dataset has 3 classes"):
        StudyConfig.from_dict(data)
