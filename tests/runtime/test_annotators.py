"""Annotators on real Ray: answers keyed by query, one fetch of the truth per trial, shared teams."""

from __future__ import annotations

import numpy as np
import pytest

from direct_ray.noise import NoiseConfig
from direct_ray.runtime.annotators import (
    CACHED_TRIALS,
    Annotator,
    Oracle,
    shared_team,
    start_shared_team,
)
from direct_ray.trial import TrialContext, run_trial
from tests.runtime.test_trial import curve, make_config, purchases

pytestmark = pytest.mark.ray
NOISY = Oracle(NoiseConfig(model="uniform", rate=0.3), num_classes=3, seed=5)


def test_answers_depend_on_the_query_not_on_what_came_before(ray_session):
    truth = [ray_session.put(np.arange(100) % 3)]
    first, second = Annotator(1), Annotator(1)
    for i in range(20):  # warm one annotator up with other queries
        first.label(truth, [(i, (9, i, 0))], NOISY)
    alone = []
    for i in range(20, 40):
        [a] = first.label(truth, [(i, (1, i, 0))], NOISY)
        [b] = second.label(truth, [(i, (1, i, 0))], NOISY)
        assert a == b
        assert a[1] == i % 3  # the true label comes back with the answer
        alone.append(a)
    # A worklist of the same queries (in another order) gets the same answers.
    queued = Annotator(1).label(truth, [(i, (1, i, 0)) for i in reversed(range(20, 40))], NOISY)
    assert queued[::-1] == alone
    assert sum(obs != true for obs, true in alone) > 0  # the noise is real: 30% of 20 queries


def test_interleaved_trials_each_get_their_own_truth_and_the_cache_stays_bounded(ray_session):
    annotator = Annotator(0)
    clean = Oracle(NoiseConfig(), num_classes=3, seed=0)
    truths = [[ray_session.put(np.full(10, k % 3))] for k in range(CACHED_TRIALS + 3)]
    for _ in range(2):
        for k, truth in enumerate(truths):
            [(observed, true)] = annotator.label(truth, [(4, (0, 0, 0))], clean)
            assert observed == true == k % 3
    assert len(annotator._truth) == CACHED_TRIALS


def test_a_shared_team_is_found_by_name_and_can_be_started_again_after_a_kill(ray_session):
    team = start_shared_team("test/shared", 3)
    assert [h._actor_id for h in shared_team("test/shared", 2)] == [h._actor_id for h in team[:2]]
    assert [h._actor_id for h in start_shared_team("test/shared", 3)] == [h._actor_id for h in team]
    for handle in team:
        ray_session.kill(handle)
    again = start_shared_team("test/shared", 3)  # the names may still be held for a moment
    assert {h._actor_id for h in again}.isdisjoint(h._actor_id for h in team)
    with pytest.raises(RuntimeError, match="fewer than 4"):
        shared_team("test/shared", 4)
    for handle in again:
        ray_session.kill(handle)


def test_a_trial_on_a_shared_team_matches_one_on_its_own_team(ray_session):
    own = run_trial(make_config(rounds=2), context=TrialContext(verbose=False))
    team = start_shared_team("test/trial-team", 2)
    try:
        shared = run_trial(make_config(rounds=2), context=TrialContext(verbose=False, annotator_team="test/trial-team"))
    finally:
        for handle in team:
            ray_session.kill(handle)
    assert curve(shared) == curve(own)
    assert purchases(shared) == purchases(own)



def test_true_labels_are_kept_compact_and_exact_for_many_classes(ray_session):
    annotator = Annotator(0)
    for num_classes in (2, 300):
        truth = [ray_session.put(np.arange(1000) % num_classes)]
        oracle = Oracle(NoiseConfig(), num_classes=num_classes, seed=0)
        answers = annotator.label(truth, [(i, (0, i, 0)) for i in (0, 299, 999)], oracle)
        assert answers == [(i % num_classes, i % num_classes) for i in (0, 299, 999)]
    assert [a.dtype for a in annotator._truth.values()] == [np.int8, np.int16]
