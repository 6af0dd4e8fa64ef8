"""Label-noise models: empirical rates, persistence, determinism and config validation.

Statistical checks use n = 200,000 draws and a tolerance of 5 binomial standard errors,
sqrt(p (1 - p) / n) (about 0.0045 at p = 0.2): a correct model fails with probability
below 1e-6, and the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from direct_ray.noise import NOISE_MODELS, NoiseConfig, NoiseModel

N_DRAWS = 200_000


def within_5se(observed_fraction: float, p: float, n: int) -> bool:
    return abs(observed_fraction - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12


def draw(config: NoiseConfig, k: int, *, n: int = N_DRAWS, annotator: int = 0, seed: int = 0, rng_seed: int = 1):
    """True labels (uniform over classes), their pool indices and one round of observations."""
    truth = np.random.default_rng(123).integers(0, k, n)
    indices = np.arange(n)
    model = NoiseModel(config, k, annotator=annotator, seed=seed)
    return truth, indices, model.observe(truth, indices, np.random.default_rng(rng_seed))


# --- the models -------------------------------------------------------------------------


@pytest.mark.parametrize("persistent", [False, True])
def test_uniform_flip_rate_and_spread(persistent):
    k, p = 4, 0.2
    truth, _, obs = draw(NoiseConfig("uniform", rate=p, persistent=persistent), k)
    assert obs.dtype == np.int64
    flipped = obs != truth
    assert within_5se(flipped.mean(), p, N_DRAWS)
    # Among flips, the observed class is uniform over the K-1 other classes.
    shift = (obs - truth)[flipped] % k
    for s in range(1, k):
        assert within_5se((shift == s).mean(), 1 / (k - 1), flipped.sum())


def test_uniform_never_returns_the_true_class_when_flipping():
    # If a "flip" could land on the true class, the change rate would be 0.99 (K-1)/K = 0.7425.
    truth, _, obs = draw(NoiseConfig("uniform", rate=0.99), 4)
    assert within_5se((obs != truth).mean(), 0.99, N_DRAWS)


def test_uniform_with_two_classes_always_returns_the_other_class():
    truth, _, obs = draw(NoiseConfig("uniform", rate=0.5), 2)
    flipped = obs != truth
    assert np.array_equal(obs[flipped], 1 - truth[flipped])


@pytest.mark.parametrize("persistent", [False, True])
def test_minority_to_majority(persistent):
    k, p = 3, 0.25
    truth, _, obs = draw(NoiseConfig("minority_to_majority", rate=p, persistent=persistent), k)
    majority = truth == k - 1
    assert np.array_equal(obs[majority], truth[majority]), "majority labels never flip"
    changed = obs != truth
    assert np.all(obs[changed] == k - 1), "minority labels only flip to the majority class"
    assert within_5se(changed[~majority].mean(), p, int((~majority).sum()))


@pytest.mark.parametrize("persistent", [False, True])
def test_class_conditional_matches_matrix_rows(persistent):
    matrix = ((0.7, 0.2, 0.1), (0.0, 1.0, 0.0), (0.05, 0.0, 0.95))
    truth, _, obs = draw(NoiseConfig("class_conditional", matrix=matrix, persistent=persistent), 3)
    for i, row in enumerate(matrix):
        seen = obs[truth == i]
        for j, pij in enumerate(row):
            freq = (seen == j).mean()
            if pij == 0.0:
                assert freq == 0.0, f"class {j} has probability 0 for true class {i}"
            else:
                assert within_5se(freq, pij, seen.size)


class _LargestUniforms:
    """A stand-in generator whose uniforms are all 1 - 2**-53, the largest ``random()`` returns."""

    def random(self, size):
        return np.full(size, 1 - 2**-53)


def test_class_conditional_never_draws_a_zero_probability_class():
    # Row 0's cumulative sum rounds to 1 - 2**-53 before the trailing zero: a uniform at
    # the very top of [0, 1) must still land on class 2, not the impossible class 3.
    w = (9 / 28, 18 / 28, 1 / 28)
    matrix = (w + (0.0,), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    model = NoiseModel(NoiseConfig("class_conditional", matrix=matrix), 4)
    assert model.observe(np.array([0, 1]), np.array([0, 1]), _LargestUniforms()).tolist() == [2, 1]


def test_per_annotator_rates():
    config = NoiseConfig("uniform", rates=(0.1, 0.3))
    assert [config.rate_for(a) for a in range(4)] == [0.1, 0.3, 0.1, 0.3]
    for annotator, p in [(0, 0.1), (1, 0.3), (2, 0.1)]:
        truth, _, obs = draw(config, 5, annotator=annotator, rng_seed=annotator)
        assert within_5se((obs != truth).mean(), p, N_DRAWS)


@pytest.mark.parametrize("persistent", [False, True])
def test_zero_rate_and_none_are_the_identity(persistent):
    for config in (NoiseConfig("uniform", rate=0.0, persistent=persistent), NoiseConfig("none", persistent=persistent)):
        truth, _, obs = draw(config, 3, n=1000)
        assert np.array_equal(obs, truth)


def test_none_draws_nothing_from_the_generator():
    rng = np.random.default_rng(5)
    NoiseModel(NoiseConfig(), 3).observe(np.array([0, 1, 2]), np.arange(3), rng)
    assert rng.random() == np.random.default_rng(5).random()


# --- persistence and determinism ---------------------------------------------------------


def test_persistent_noise_repeats_across_calls_orders_rng_and_restarts():
    config = NoiseConfig("uniform", rate=0.3, persistent=True)
    k, n = 5, 5000
    truth = np.random.default_rng(0).integers(0, k, n)
    idx = np.arange(n)
    first = NoiseModel(config, k, annotator=0, seed=7).observe(truth, idx, np.random.default_rng(1))
    assert (first != truth).any()

    model = NoiseModel(config, k, annotator=0, seed=7)
    again = model.observe(truth, idx, np.random.default_rng(99))
    assert np.array_equal(first, again)
    # A different query order and subset: each example still gets its own label.
    perm = np.random.default_rng(2).permutation(n)[:1000]
    assert np.array_equal(model.observe(truth[perm], perm, np.random.default_rng(3)), first[perm])
    # Another annotator with the same rate (or the same one restarted) agrees.
    other = NoiseModel(config, k, annotator=3, seed=7)
    assert np.array_equal(other.observe(truth, idx, np.random.default_rng(4)), first)
    # Another seed mislabels different examples.
    reseeded = NoiseModel(config, k, seed=8).observe(truth, idx, np.random.default_rng(1))
    assert not np.array_equal(reseeded, first)


def test_persistent_rates_mislabel_nested_sets_with_the_same_wrong_label():
    config = NoiseConfig("uniform", rates=(0.1, 0.3), persistent=True)
    k, n = 4, 20_000
    truth = np.random.default_rng(0).integers(0, k, n)
    idx = np.arange(n)
    low = NoiseModel(config, k, annotator=0, seed=1).observe(truth, idx, np.random.default_rng(0))
    high = NoiseModel(config, k, annotator=1, seed=1).observe(truth, idx, np.random.default_rng(0))
    low_wrong = low != truth
    assert np.all((high != truth)[low_wrong])
    assert np.array_equal(high[low_wrong], low[low_wrong])


def test_fresh_noise_differs_between_draws_and_repeats_under_a_seed():
    config = NoiseConfig("uniform", rate=0.3)
    truth = np.zeros(5000, dtype=np.int64)
    idx = np.arange(5000)
    model = NoiseModel(config, 3)
    rng = np.random.default_rng(11)
    a, b = model.observe(truth, idx, rng), model.observe(truth, idx, rng)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, model.observe(truth, idx, np.random.default_rng(11)))


def test_fresh_rates_on_the_same_generator_flip_nested_sets():
    truth = np.random.default_rng(0).integers(0, 3, 10_000)
    idx = np.arange(truth.size)
    low = NoiseModel(NoiseConfig("minority_to_majority", rate=0.1), 3).observe(truth, idx, np.random.default_rng(4))
    high = NoiseModel(NoiseConfig("minority_to_majority", rate=0.4), 3).observe(truth, idx, np.random.default_rng(4))
    assert np.all((high != truth)[low != truth])


def test_empty_query():
    model = NoiseModel(NoiseConfig("uniform", rate=0.2, persistent=True), 3)
    out = model.observe(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.random.default_rng())
    assert out.shape == (0,) and out.dtype == np.int64


@pytest.mark.parametrize(
    "truth, indices, match",
    [
        ([0, 3], [0, 1], "true_labels must lie in 0..2"),
        ([0, -1], [0, 1], "true_labels must lie in 0..2"),
        ([0, 1], [0], "same length"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([0.0, 1.0], [0, 1], "true_labels must be integers"),
        ([0, 1], [0, -4], "indices must be pool indices >= 0"),
    ],
)
def test_observe_rejects_bad_input(truth, indices, match):
    model = NoiseModel(NoiseConfig("uniform", rate=0.2), 3)
    with pytest.raises(ValueError, match=match):
        model.observe(np.array(truth), np.array(indices), np.random.default_rng())


# --- the config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d, match",
    [
        ({"model": "uniform", "rate": 1.0}, r"^noise\.rate: input should be less than 1, got 1\.0$"),
        ({"model": "uniform", "rate": -0.1}, r"noise\.rate: input should be greater than or equal to 0"),
        ({"model": "uniform", "rate": float("nan")}, r"noise\.rate: input should be a finite number"),
        ({"model": "uniform", "rate": "0.1"}, "rate: input should be a valid number"),
        ({"model": "uniform", "rate": True}, "rate: input should be a valid number, got True"),
        ({"model": "uniform", "rates": [0.1, 1.5]}, r"^noise\.rates\[1\]: input should be less than 1, got 1\.5$"),
        ({"model": "uniform", "rates": []}, "rates: tuple should have at least 1 item"),
        ({"model": "uniform", "rates": 0.1}, "rates: input should be a valid tuple"),
        ({"model": "uniform", "rate": 0.1, "rates": [0.2]}, "either rate or rates"),
        ({"model": "gaussian"}, "model: input should be 'none', 'uniform', 'class_conditional' or 'minority_to_majority'"),
        ({"model": 3}, "model: input should be 'none'"),
        ({"model": "uniform", "rtae": 0.1}, r"noise: unknown key.*rtae.*allowed: \['model', 'rate', 'rates', 'matrix', 'persistent'\]"),
        ({"model": "none", "rate": 0.2}, "rate and rates apply only to models uniform and minority_to_majority"),
        ({"model": "class_conditional"}, "class_conditional needs matrix"),
        ({"model": "class_conditional", "matrix": [[1, 0], [0.5, 0.4]]}, r"matrix\[1\] must sum to 1"),
        ({"model": "class_conditional", "matrix": [[1.2, -0.2], [0, 1]]}, r"matrix\[0\]\[1\]: input should be greater than or equal to 0"),
        ({"model": "class_conditional", "matrix": [[1, 0, 0], [0, 1, 0]]}, "matrix must be square"),
        ({"model": "class_conditional", "matrix": [[1.0]]}, "matrix must be square K x K with K >= 2"),
        ({"model": "class_conditional", "matrix": [[float("nan"), 1], [0, 1]]}, r"matrix\[0\]\[0\]: input should be a finite number"),
        ({"model": "class_conditional", "matrix": [["a", 1], [0, 1]]}, r"matrix\[0\]\[0\]: input should be a valid number"),
        ({"model": "uniform", "rate": 0.1, "matrix": [[1, 0], [0, 1]]}, "matrix applies only to model class_conditional"),
        ({"model": "uniform", "rate": 0.1, "persistent": "yes"}, "persistent: input should be a valid boolean"),
    ],
)
def test_config_validation_names_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        NoiseConfig.from_dict(d)


def test_model_names_are_the_public_contract():
    assert NOISE_MODELS == ("none", "uniform", "class_conditional", "minority_to_majority")


def test_from_dict_rejects_a_non_mapping():
    with pytest.raises(ValueError, match="noise: must be a mapping"):
        NoiseConfig.from_dict(["uniform", 0.1])


def test_validate_for_checks_the_number_of_classes():
    config = NoiseConfig("class_conditional", matrix=((0.9, 0.1), (0.2, 0.8)))
    config.validate_for(2)
    with pytest.raises(ValueError, match="matrix is 2 x 2 but the dataset has 3 classes"):
        config.validate_for(3)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        NoiseConfig("uniform", rate=0.1).validate_for(1)
    with pytest.raises(ValueError, match="matrix is 2 x 2"):
        NoiseModel(config, 3)


def test_nominal_rate():
    assert NoiseConfig().nominal_rate == 0.0
    assert NoiseConfig("uniform", rate=0.2).nominal_rate == 0.2
    assert NoiseConfig("minority_to_majority", rates=(0.1, 0.3)).nominal_rate == pytest.approx(0.2)
    cc = NoiseConfig("class_conditional", matrix=((0.9, 0.1), (0.3, 0.7)))
    assert cc.nominal_rate == pytest.approx(0.2)
    assert cc.rate_for(5) == pytest.approx(0.2)


def test_rate_for_rejects_a_negative_annotator():
    with pytest.raises(ValueError, match="annotator must be an integer >= 0"):
        NoiseConfig("uniform", rate=0.1).rate_for(-1)


_configs = st.one_of(
    st.builds(NoiseConfig, st.just("none"), persistent=st.booleans()),
    st.builds(
        NoiseConfig,
        st.sampled_from(["uniform", "minority_to_majority"]),
        rate=st.floats(0, 0.999),
        persistent=st.booleans(),
    ),
    st.builds(
        lambda model, rates, persistent: NoiseConfig(model, rates=tuple(rates), persistent=persistent),
        st.sampled_from(["uniform", "minority_to_majority"]),
        st.lists(st.floats(0, 0.999), min_size=1, max_size=4),
        st.booleans(),
    ),
    st.integers(2, 4).flatmap(
        lambda k: st.lists(
            st.lists(st.integers(1, 9), min_size=k, max_size=k).map(lambda w: tuple(x / sum(w) for x in w)),
            min_size=k,
            max_size=k,
        ).map(lambda rows: NoiseConfig("class_conditional", matrix=tuple(rows)))
    ),
)


@given(_configs)
def test_to_dict_round_trips_through_json(config):
    assert NoiseConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
