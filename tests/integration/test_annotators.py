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
from tests.integration.test_trial import curve, make_config, purchases

NOISY = Oracle(NoiseConfig(model="uniform", rate=0.3), num_classes=3, seed=5)


def test_answers_depend_on_the_query_not_on_what_came_before(ray_session):
    truth = [ray_session.put(np.arange(100) % 3)]
    first, second = Annotator(1), Annotator(1)
    for a in (first, second):
        a.brief("trial", truth, NOISY)
    for i in range(20):  # warm one annotator up with other queries
        first.label("trial", [(i, (9, i, 0))])
    alone = []
    for i in range(20, 40):
        [a] = first.label("trial", [(i, (1, i, 0))])
        [b] = second.label("trial", [(i, (1, i, 0))])
        assert a == b
        assert a[1] == i % 3  # the true label comes back with the answer
        alone.append(a)
    # A worklist of the same queries (in another order) gets the same answers.
    third = Annotator(1)
    third.brief("trial", truth, NOISY)
    queued = third.label("trial", [(i, (1, i, 0)) for i in reversed(range(20, 40))])
    assert queued[::-1] == alone
    assert sum(obs != true for obs, true in alone) > 0  # the noise is real: 30% of 20 queries


def test_an_annotator_asks_to_be_briefed_on_a_trial_it_does_not_know(ray_session):
    annotator = Annotator(0)
    clean = Oracle(NoiseConfig(), num_classes=3, seed=0)
    assert annotator.label("unknown", [(4, (0, 0, 0))]) is None
    assert annotator.queries == 0  # an unanswered query is not counted
    annotator.brief("known", [ray_session.put(np.full(10, 2))], clean)
    assert annotator.label("known", [(4, (0, 0, 0))]) == [(2, 2)]
    assert annotator.label("unknown", [(4, (0, 0, 0))]) is None


def test_interleaved_trials_each_get_their_own_truth_and_the_cache_stays_bounded(ray_session):
    annotator = Annotator(0)
    clean = Oracle(NoiseConfig(), num_classes=3, seed=0)
    tokens = [f"trial-{k}" for k in range(CACHED_TRIALS + 3)]
    for k, token in enumerate(tokens):
        annotator.brief(token, [ray_session.put(np.full(10, k % 3))], clean)
    assert len(annotator._trials) == CACHED_TRIALS
    assert [annotator.label(t, [(4, (0, 0, 0))]) for t in tokens[:3]] == [None] * 3  # the oldest went
    for k, token in enumerate(tokens[3:], start=3):
        assert annotator.label(token, [(4, (0, 0, 0))]) == [(k % 3, k % 3)]


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
    own = run_trial(make_config(rounds=2), context=TrialContext())
    team = start_shared_team("test/trial-team", 2)
    try:
        shared = run_trial(make_config(rounds=2), context=TrialContext(annotator_team="test/trial-team"))
    finally:
        for handle in team:
            ray_session.kill(handle)
    assert curve(shared) == curve(own)
    assert purchases(shared) == purchases(own)



def test_true_labels_are_kept_compact_and_exact_for_many_classes(ray_session):
    annotator = Annotator(0)
    for num_classes in (2, 300):
        truth = [ray_session.put(np.arange(1000) % num_classes)]
        annotator.brief(str(num_classes), truth, Oracle(NoiseConfig(), num_classes=num_classes, seed=0))
        answers = annotator.label(str(num_classes), [(i, (0, i, 0)) for i in (0, 299, 999)])
        assert answers == [(i % num_classes, i % num_classes) for i in (0, 299, 999)]
    assert [labels.dtype for labels, _, _ in annotator._trials.values()] == [np.int8, np.int16]
