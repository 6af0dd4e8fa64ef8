"""What ``--resume`` may change in a stored study (direct_ray.growth): grid values and rounds
grow it, anything else is one line naming each key; trials grown to more rounds keep their ids."""

from __future__ import annotations

import pytest

from direct_ray.config import ConfigError, StudyConfig, TrialConfig
from direct_ray.growth import FIRST_ROUNDS, grow
from direct_ray.results.layout import SweepRecordError
from tests.studies import grid, study


def studied(**changes) -> StudyConfig:
    return StudyConfig.from_dict(study(**changes))


def ids(config: StudyConfig) -> list[str]:
    return [t.trial_id for t in config.trials()]


def refusal(stored: StudyConfig, given: StudyConfig, first_rounds=None) -> str:
    with pytest.raises(SweepRecordError) as err:
        grow(stored, given, first_rounds)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_the_same_study_does_not_grow_and_keeps_its_ids():
    grown = grow(studied(), studied())
    assert not grown and grown.describe() == ""
    assert ids(grown.study) == ids(studied())
    assert FIRST_ROUNDS not in grown.record({"sweep_id": "x", "study": study()})


def test_more_rounds_continue_every_trial_under_its_stored_id():
    grown = grow(studied(rounds=2), studied(rounds=5))
    assert grown and not grown.added and len(grown.longer) == 16
    assert grown.describe() == "16 trial(s) continue to more rounds"
    assert ids(grown.study) == ids(studied(rounds=2))
    assert {t.rounds for t in grown.study.trials()} == {5}
    assert {t.id_rounds for t in grown.study.trials()} == {2}


def test_the_record_keeps_the_first_rounds_and_the_grown_study():
    record = {"sweep_id": "t-1", "study": study(rounds=2), "annotator_teams": ["a"]}
    written = grow(studied(rounds=2), studied(rounds=3)).record(record)
    assert written == {**record, "study": study(rounds=3), FIRST_ROUNDS: {"rounds": 2, "budgets": {}}}
    assert record["study"] == study(rounds=2)  # the caller's record is not changed


def test_a_second_growth_keeps_the_ids_of_the_first_rounds():
    first = grow(studied(rounds=2), studied(rounds=3)).record({"study": study(rounds=2)})
    again = grow(studied(rounds=3), studied(rounds=4), first[FIRST_ROUNDS])
    assert ids(again.study) == ids(studied(rounds=2)) and len(again.longer) == 16
    assert again.record(first)[FIRST_ROUNDS] == {"rounds": 2, "budgets": {}}
    # Resumed again with those rounds: nothing grows, the ids stay.
    same = grow(studied(rounds=4), studied(rounds=4), first[FIRST_ROUNDS])
    assert not same and ids(same.study) == ids(studied(rounds=2))


def test_rounds_and_grid_values_grow_together_and_new_trials_take_the_first_rounds_ids():
    grown = grow(studied(rounds=2), studied(rounds=3, grid=grid(seed=[0, 1, 2])))
    assert len(grown.added) == 8 and len(grown.longer) == 16
    assert ids(grown.study)[:2] == ids(studied(rounds=2, grid=grid(seed=[0, 1, 2])))[:2]
    assert set(ids(grown.study)) == set(ids(studied(rounds=2, grid=grid(seed=[0, 1, 2]))))


def test_rounds_raised_for_one_dataset_kind_through_budgets():
    two = grid(dataset=[{"kind": "digits", "num_classes": 2}, {"kind": "features", "path": "f.npz", "num_classes": 2}])
    stored = studied(rounds=2, grid=two)
    grown = grow(stored, studied(rounds=2, grid=two, budgets={"digits": {"rounds": 4}}))
    assert ids(grown.study) == ids(stored)
    assert {t.dataset.kind for t in grown.longer} == {"digits"} and len(grown.longer) == 16
    assert {t.dataset.kind: t.rounds for t in grown.study.trials()} == {"digits": 4, "features": 2}


def test_fewer_rounds_are_refused_as_discarding_results():
    message = refusal(studied(rounds=3), studied(rounds=2))
    assert "rounds: 3 -> 2" in message and "would discard results" in message


def test_fewer_rounds_than_a_stored_growth_are_refused():
    message = refusal(studied(rounds=4), studied(rounds=3), {"rounds": 2, "budgets": {}})
    assert "rounds: 4 -> 3" in message


def test_fewer_rounds_through_budgets_are_refused_naming_the_key():
    message = refusal(studied(rounds=3), studied(rounds=3, budgets={"digits": {"rounds": 1}}))
    assert "budgets.digits.rounds: None -> 1" in message


def test_other_changes_are_refused_naming_each_key_but_not_raised_rounds():
    message = refusal(studied(rounds=2), studied(rounds=3, b_train=20, model={"kind": "linear"}))
    assert "b_train: 10 -> 20" in message and "model.kind: 'mlp' -> 'linear'" in message
    assert "rounds" not in message.replace("gain grid values and rounds", "").replace("fewer rounds", "")


def test_fewer_rounds_and_another_change_are_one_line_naming_both():
    message = refusal(studied(rounds=3), studied(rounds=2, b_train=20))
    assert "b_train: 10 -> 20" in message and "rounds: 3 -> 2" in message


def test_a_removed_grid_value_is_refused_even_with_more_rounds():
    message = refusal(studied(rounds=2), studied(rounds=3, grid=grid(seed=[1])))
    assert "grid.seed: [0] removed" in message


def test_a_trial_id_hashes_its_id_rounds_so_a_grown_trial_keeps_its_id():
    trial = studied(rounds=2).trials()[0]
    longer = TrialConfig.from_dict({**trial.to_dict(), "rounds": 6, "id_rounds": 2})
    assert longer.trial_id == trial.trial_id and longer.rounds == 6 and longer.total_budget == 10 + 6 * 10
    assert TrialConfig.from_dict(longer.to_dict()) == longer  # travels to Tune and back
    assert "id_rounds" not in trial.to_dict()  # a trial that never grew: its dict and id as before
    assert TrialConfig.from_dict({**trial.to_dict(), "rounds": 6}).trial_id != trial.trial_id


@pytest.mark.parametrize("id_rounds", [6, 7])
def test_id_rounds_must_be_below_rounds(id_rounds):
    trial = studied(rounds=6).trials()[0]
    with pytest.raises(ConfigError, match="rounds only grow"):
        TrialConfig.from_dict({**trial.to_dict(), "id_rounds": id_rounds})
