"""Trial ids are a contract: results on disk are keyed by them, so a change to the study
format or its parser must never change the id of an existing study's trial.

The ids below were computed before the study schema was rewritten; a failure here means
``TrialConfig.to_dict()`` no longer matches what earlier versions wrote.
"""

from __future__ import annotations

import hashlib

import pytest

from direct_ray.config import StudyConfig
from direct_ray.growth import grow
from tests.paths import ROOT
from tests.studies import grid, study

DEFAULT_TRIAL_IDS = [
    'digits-k2_direct_bp1_clean_s0_f28660d7',
    'digits-k2_direct_bp1_clean_s1_9588b2d4',
    'digits-k2_direct_bp5_clean_s0_5142c622',
    'digits-k2_direct_bp5_clean_s1_5b64a695',
    'digits-k2_direct_bp1_uniform0.2_s0_a257a594',
    'digits-k2_direct_bp1_uniform0.2_s1_7c37a6e7',
    'digits-k2_direct_bp5_uniform0.2_s0_5a7d5274',
    'digits-k2_direct_bp5_uniform0.2_s1_fd5b60e3',
    'digits-k2_galaxy_bp1_clean_s0_7a888486',
    'digits-k2_galaxy_bp1_clean_s1_88d5bedc',
    'digits-k2_galaxy_bp5_clean_s0_d1f506bd',
    'digits-k2_galaxy_bp5_clean_s1_4477ec6c',
    'digits-k2_galaxy_bp1_uniform0.2_s0_06dd7f68',
    'digits-k2_galaxy_bp1_uniform0.2_s1_723eee1f',
    'digits-k2_galaxy_bp5_uniform0.2_s0_db357eb4',
    'digits-k2_galaxy_bp5_uniform0.2_s1_3087af5b',
    'digits-k2_random_bp1_clean_s0_25a042ae',
    'digits-k2_random_bp1_clean_s1_d9921afe',
    'digits-k2_random_bp5_clean_s0_92f49494',
    'digits-k2_random_bp5_clean_s1_a59be474',
    'digits-k2_random_bp1_uniform0.2_s0_62c7600f',
    'digits-k2_random_bp1_uniform0.2_s1_e9ec8a69',
    'digits-k2_random_bp5_uniform0.2_s0_beedef82',
    'digits-k2_random_bp5_uniform0.2_s1_2862aeba',
    'digits-k2_confidence_bp1_clean_s0_d20a81f1',
    'digits-k2_confidence_bp1_clean_s1_c07adab3',
    'digits-k2_confidence_bp5_clean_s0_f1a7f87d',
    'digits-k2_confidence_bp5_clean_s1_a1f05a8d',
    'digits-k2_confidence_bp1_uniform0.2_s0_1279f8f4',
    'digits-k2_confidence_bp1_uniform0.2_s1_880777b5',
    'digits-k2_confidence_bp5_uniform0.2_s0_466a2157',
    'digits-k2_confidence_bp5_uniform0.2_s1_89f953c2',
]

# sha1 of every trial id of each shipped study, one per line, in trials() order.
STUDY_ID_DIGESTS = {
    'default.yaml': 'b4de9e8520feffdaa6a640af84d6a2616f60fcec',
    'features_example.yaml': 'd96b09dee032c3400fe1e15ce215650dfe9aaaff',
    'noise_robustness.yaml': 'fef1b93aa6bfc83216b8c57f78e3552f323892a5',
    'paper_table1.yaml': 'ede412ee9a6f3a6335aae533b8ab829345c3731b',
}


def test_default_study_trial_ids_are_unchanged():
    assert [t.trial_id for t in StudyConfig.from_yaml(ROOT / "sweeps" / "default.yaml").trials()] == DEFAULT_TRIAL_IDS


def test_the_default_study_grown_to_more_rounds_keeps_its_trial_ids():
    default = ROOT / "sweeps" / "default.yaml"
    grown = grow(StudyConfig.from_yaml(default), StudyConfig.from_yaml(default, ["rounds=15"]))
    assert [t.trial_id for t in grown.study.trials()] == DEFAULT_TRIAL_IDS


@pytest.mark.parametrize("name", sorted(STUDY_ID_DIGESTS))
def test_every_shipped_study_keeps_its_trial_ids(name):
    ids = "\n".join(t.trial_id for t in StudyConfig.from_yaml(ROOT / "sweeps" / name).trials())
    assert hashlib.sha1(ids.encode()).hexdigest() == STUDY_ID_DIGESTS[name]


def _odd_study() -> dict:
    """Every optional field, with integers where floats are allowed (ids hash the numbers' types)."""
    return study(
        resources={"cpus_per_trial": 2, "gpus_per_trial": 1},
        model={"kind": "resnet18", "pretrained": "w.pth", "epochs": 3, "lr": 1, "weight_decay": 0},
        grid=grid(
            dataset=[
                {"kind": "cifar10", "num_classes": 2, "root": "/d", "download": False},
                {"kind": "features", "path": "a/b.npz", "num_classes": 2},
            ],
            noise=[
                {"model": "uniform", "rate": 0},
                {"model": "minority_to_majority", "rates": [0, 0.25], "persistent": True},
                {"model": "class_conditional", "matrix": [[1, 0], [0.5, 0.5]]},
            ],
        ),
        budgets={"cifar10": {"rounds": 3}},
    )


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (study(), "08b68d662224206d9faca96b1d1bb73333ebe759"),
        (_odd_study(), "13a0ef8c5551915c48df4266b0415e15959a2845"),
    ],
    ids=["test-study", "every-option"],
)
def test_test_studies_keep_their_trial_ids(data, digest):
    ids = "\n".join(t.trial_id for t in StudyConfig.from_dict(data).trials())
    assert hashlib.sha1(ids.encode()).hexdigest() == digest
