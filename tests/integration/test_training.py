"""Training and scoring: config parsing, determinism, shapes, speed, learning, ResNet-18, bad input."""

from __future__ import annotations

import urllib.error
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from direct_ray import models  # noqa: E402
from direct_ray.data import DatasetSpec, load_dataset  # noqa: E402
from direct_ray.metrics import classification_metrics  # noqa: E402
from direct_ray.training import ModelConfig, fit_and_score  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DatasetSpec("digits", num_classes=2))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as in a Ray task with num_cpus=1 (Ray sets OMP_NUM_THREADS to it).

    Tiny matmuls gain nothing from more threads, and on a shared, loaded machine extra
    threads slow the MLP down tenfold; the speed bound is stated for one core.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_labeled(ds, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    labeled = np.random.default_rng(seed).choice(len(ds.y_train), n, replace=False)
    return labeled, ds.y_train[labeled]


# --- features models -----------------------------------------------------------------------


def test_shapes_dtypes_and_probabilities(digits):
    labeled, labels = random_labeled(digits, 60, 0)
    result = fit_and_score(ModelConfig(epochs=2), digits.x_train, labeled, labels, digits.x_test, 2, seed=0, device="cpu")
    n = len(digits.x_train)
    assert result.probs.shape == (n, 2) and result.probs.dtype == np.float32
    assert np.allclose(result.probs.sum(axis=1), 1.0, atol=1e-5)
    assert result.embeddings.shape == (n, 128) and result.embeddings.dtype == np.float32
    assert (result.embeddings >= 0).all()  # the hidden layer after its ReLU
    assert result.test_pred.shape == (len(digits.x_test),) and result.test_pred.dtype == np.int64
    assert result.device == "cpu" and result.train_seconds > 0 and result.score_seconds > 0


def test_linear_embeddings_are_the_inputs(digits):
    labeled, labels = random_labeled(digits, 30, 1)
    config = ModelConfig(kind="linear", epochs=1)
    result = fit_and_score(config, digits.x_train, labeled, labels, digits.x_test, 2, seed=0, device="cpu")
    assert np.array_equal(result.embeddings, digits.x_train)


def test_float64_features_train_like_float32(digits):
    labeled, labels = random_labeled(digits, 30, 1)
    args = (labeled, labels)
    as32 = fit_and_score(ModelConfig(epochs=2), digits.x_train, *args, digits.x_test, 2, seed=0, device="cpu")
    as64 = fit_and_score(
        ModelConfig(epochs=2), digits.x_train.astype(np.float64), *args, digits.x_test.astype(np.float64), 2, seed=0, device="cpu"
    )
    assert np.array_equal(as32.probs, as64.probs)


def test_without_embeddings(digits):
    labeled, labels = random_labeled(digits, 30, 1)
    result = fit_and_score(
        ModelConfig(epochs=1), digits.x_train, labeled, labels, digits.x_test, 2, seed=0, device="cpu", with_embeddings=False
    )
    assert result.embeddings is None and result.probs.shape == (len(digits.x_train), 2)


def test_bitwise_deterministic_on_cpu_and_seed_dependent(digits):
    labeled, labels = random_labeled(digits, 150, 2)
    args = (ModelConfig(), digits.x_train, labeled, labels, digits.x_test, 2)
    first = fit_and_score(*args, seed=7, device="cpu")
    second = fit_and_score(*args, seed=7, device="cpu")
    assert np.array_equal(first.probs, second.probs)
    assert np.array_equal(first.embeddings, second.embeddings)
    assert np.array_equal(first.test_pred, second.test_pred)
    other = fit_and_score(*args, seed=8, device="cpu")
    assert not np.array_equal(first.probs, other.probs)


def test_global_torch_generator_is_left_alone(digits):
    labeled, labels = random_labeled(digits, 30, 3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit_and_score(ModelConfig(epochs=1), digits.x_train, labeled, labels, digits.x_test, 2, seed=0, device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_default_mlp_learns_digits_from_100_random_labels(digits):
    accuracies = []
    for seed in range(2):
        labeled, labels = random_labeled(digits, 100, seed)
        result = fit_and_score(ModelConfig(), digits.x_train, labeled, labels, digits.x_test, 2, seed=seed, device="cpu")
        accuracies.append(classification_metrics(digits.y_test, result.test_pred, 2)["balanced_accuracy"])
    assert min(accuracies) > 0.85, accuracies  # chance is 0.5; measured ~0.98


def test_read_only_pool_is_not_written_and_raises_no_warning(digits):
    x_pool = digits.x_train.copy()
    x_test = digits.x_test.copy()
    x_pool.flags.writeable = False
    x_test.flags.writeable = False
    labeled, labels = random_labeled(digits, 40, 5)
    labeled.flags.writeable = False
    labels.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit_and_score(ModelConfig(epochs=2), x_pool, labeled, labels, x_test, 2, seed=0, device="cpu")
    assert np.array_equal(x_pool, digits.x_train)
    assert result.probs.flags.writeable


def test_classes_missing_from_the_labeled_set_do_not_break_training(digits):
    ten = load_dataset(DatasetSpec("digits", num_classes=10))
    labeled = np.flatnonzero(ten.y_train == 4)[:20]  # only one class of ten labeled
    result = fit_and_score(ModelConfig(epochs=3), ten.x_train, labeled, ten.y_train[labeled], ten.x_test, 10, seed=0, device="cpu")
    assert np.isfinite(result.probs).all() and np.isfinite(result.embeddings).all()
    assert (result.test_pred == 4).mean() > 0.9
    several = np.concatenate([np.flatnonzero(ten.y_train == k)[:15] for k in (0, 3, 9)])
    result = fit_and_score(ModelConfig(epochs=5), ten.x_train, several, ten.y_train[several], ten.x_test, 10, seed=0, device="cpu")
    assert set(np.unique(result.test_pred)) <= {0, 3, 9}


def test_class_weights_cover_present_classes_only():
    weights = models.class_weights(np.array([0, 0, 0, 2]), 4)
    assert weights.tolist() == pytest.approx([4 / 6, 0.0, 2.0, 0.0])  # n / (K_present * n_k); absent classes 0
    assert models.class_weights(np.array([1, 1]), 2).tolist() == [0.0, 1.0]


def test_class_weighting_changes_the_fit(digits):
    labeled, labels = random_labeled(digits, 80, 6)
    args = (digits.x_train, labeled, labels, digits.x_test, 2)
    weighted = fit_and_score(ModelConfig(epochs=3), *args, seed=0, device="cpu")
    plain = fit_and_score(ModelConfig(epochs=3, class_weighted=False), *args, seed=0, device="cpu")
    assert not np.array_equal(weighted.probs, plain.probs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_pool": np.zeros((10, 3, 32, 32), dtype=np.uint8)}, "needs float features N x D.*use kind 'resnet18'"),
        ({"x_pool": np.zeros((10, 4), dtype=np.int64)}, "needs float features"),
        ({"x_test": np.zeros((5, 3), dtype=np.float32)}, "x_test .* must match x_pool"),
        ({"labeled": np.array([0, 10])}, r"labeled indices must lie in 0..9"),
        ({"labeled": np.array([], dtype=np.int64), "labels": np.array([], dtype=np.int64)}, "non-empty"),
        ({"labels": np.array([0])}, "one per labeled index"),
        ({"labels": np.array([0, 2])}, r"labels must lie in 0..1"),
        ({"labels": np.array([0.0, 1.0])}, "labels must be integers"),
        ({"num_classes": 1}, "num_classes must be an integer >= 2"),
    ],
)
def test_bad_inputs_are_clear_errors(change, message):
    args = {
        "x_pool": np.zeros((10, 4), dtype=np.float32),
        "labeled": np.array([0, 1]),
        "labels": np.array([0, 1]),
        "x_test": np.zeros((5, 4), dtype=np.float32),
        "num_classes": 2,
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        fit_and_score(ModelConfig(epochs=1), seed=0, device="cpu", **args)


# --- ResNet-18 -----------------------------------------------------------------------------


def tiny_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def test_resnet18_one_epoch_on_tiny_images():
    x_pool, x_test = tiny_images(12, 0), tiny_images(5, 1)
    x_pool.flags.writeable = False
    labeled, labels = np.arange(6), np.array([0, 1, 2, 0, 1, 2])
    config = ModelConfig(kind="resnet18", epochs=1, batch_size=4)
    first = fit_and_score(config, x_pool, labeled, labels, x_test, 3, seed=0, device="cpu")
    assert first.probs.shape == (12, 3) and first.probs.dtype == np.float32
    assert np.allclose(first.probs.sum(axis=1), 1.0, atol=1e-5)
    assert first.embeddings.shape == (12, 512) and first.test_pred.shape == (5,)
    again = fit_and_score(config, x_pool, labeled, labels, x_test, 3, seed=0, device="cpu")
    assert np.array_equal(first.probs, again.probs)


def test_resnet18_rejects_features_and_a_single_label():
    config = ModelConfig(kind="resnet18", epochs=1)
    with pytest.raises(ValueError, match="needs uint8 images N x 3 x H x W"):
        fit_and_score(config, np.zeros((4, 8), np.float32), np.array([0, 1]), np.array([0, 1]), np.zeros((2, 8), np.float32), 2, 0)
    with pytest.raises(ValueError, match="at least 2 labeled examples"):
        fit_and_score(config, tiny_images(4, 0), np.array([0]), np.array([1]), tiny_images(2, 1), 2, 0)


@pytest.fixture(scope="module")
def saved_resnet(tmp_path_factory):
    """A state_dict file of a randomly initialised torchvision resnet18 (1000-class fc)."""
    from torchvision.models import resnet18

    torch.manual_seed(42)
    state = resnet18(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_pretrained_path_loads_the_backbone(saved_resnet):
    path, state = saved_resnet
    net = models.build(ModelConfig(kind="resnet18", pretrained=str(path)), (3, 32, 32), 2)
    loaded = net.embed.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items() if not key.startswith("fc."))
    assert net.head.out_features == 2
    fresh = models.build(ModelConfig(kind="resnet18"), (3, 32, 32), 2)
    assert not torch.equal(fresh.embed.conv1.weight, state["conv1.weight"])


def test_pretrained_path_in_fit_and_score(saved_resnet):
    path, _ = saved_resnet
    config = ModelConfig.from_dict({"kind": "resnet18", "pretrained": str(path), "epochs": 1, "batch_size": 2})
    result = fit_and_score(config, tiny_images(6, 2), np.arange(4), np.array([0, 1, 0, 1]), tiny_images(2, 3), 2, 0, "cpu")
    assert result.probs.shape == (6, 2)


def test_pretrained_file_errors(tmp_path, saved_resnet):
    _, state = saved_resnet
    with pytest.raises(FileNotFoundError, match="pretrained: state_dict file .*missing.pth"):
        models.build(ModelConfig(kind="resnet18", pretrained=str(tmp_path / "missing.pth")), (3, 32, 32), 2)
    wrong = dict(state)
    wrong["conv1.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="do not fit torchvision's resnet18"):
        models.build(ModelConfig(kind="resnet18", pretrained=str(tmp_path / "wrong.pth")), (3, 32, 32), 2)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        models.build(ModelConfig(kind="resnet18", pretrained=str(tmp_path / "text.pth")), (3, 32, 32), 2)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="must hold a state_dict"):
        models.build(ModelConfig(kind="resnet18", pretrained=str(tmp_path / "list.pth")), (3, 32, 32), 2)


def test_pretrained_true_uses_torchvision_weights_and_explains_offline_failure(monkeypatch, saved_resnet):
    import torchvision.models._api as api

    _, state = saved_resnet
    requested = []

    def fake_hub(url, *args, **kwargs):
        requested.append(url)
        return state

    monkeypatch.setattr(api, "load_state_dict_from_url", fake_hub)
    net = models.build(ModelConfig(kind="resnet18", pretrained=True), (3, 32, 32), 2)
    assert requested and requested[0].endswith(".pth")
    assert torch.equal(net.embed.conv1.weight, state["conv1.weight"])

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="could not get torchvision's ImageNet ResNet-18 weights.*set model.pretrained"):
        models.build(ModelConfig(kind="resnet18", pretrained=True), (3, 32, 32), 2)


def test_a_trial_that_asked_for_a_gpu_fails_clearly_without_cuda(digits):
    """Never a silent CPU run: the training task refuses, naming the fix (this machine has no CUDA)."""
    from direct_ray.runtime.tasks import NoGPUError, _train_and_score

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    labeled, labels = random_labeled(digits, 20, 0)
    with pytest.raises(NoGPUError, match="gpus_per_trial: 0"):
        _train_and_score(ModelConfig().to_dict(), digits.x_train, labeled, labels, digits.x_test, 2, 0, False,
                         needs_gpu=True)
    *_, info = _train_and_score(ModelConfig().to_dict(), digits.x_train, labeled, labels, digits.x_test, 2, 0, False)
    assert info["device"] == "cpu" and info["torch"] == torch.__version__
