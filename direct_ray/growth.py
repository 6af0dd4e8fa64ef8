"""What ``--resume`` may change in the study stored with a sweep, and the trial ids of a grown study.

A resumed sweep may grow its study in two ways, together or apart:

* values added to the grid (seeds, strategies, datasets, noise settings, b_parallel values,
  annotation settings) add trials; the trials already there are kept as they are;
* larger rounds (``rounds``, or a ``budgets.<kind>.rounds``): every trial of those datasets
  continues from its last round (:mod:`direct_ray.trial`), its earlier rows unchanged.

Any other change (``b_train``, the model, a removed grid value, fewer rounds, which would
discard results) is a :class:`~direct_ray.results.layout.SweepRecordError` of one line naming
each key that differs.

Trial ids hash the rounds the study was first run with (:attr:`StudyConfig.first_rounds`),
so a trial grown to more rounds keeps its id, and with it its results files and checkpoints.
``sweep.json`` keeps those rounds under :data:`FIRST_ROUNDS` once the rounds have grown; a
study whose rounds never grew has no such key and the ids of a new study.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from direct_ray.config import StudyConfig, TrialConfig
from direct_ray.results import layout

FIRST_ROUNDS = "first_rounds"


@dataclass(frozen=True)
class Growth:
    """How the study given to a resumed sweep grows the stored one (false when it does not)."""

    study: StudyConfig  # the study given, its trials keeping the ids they have in the stored study
    added: tuple[TrialConfig, ...]  # trials the stored study does not have
    longer: tuple[TrialConfig, ...]  # trials of the stored study that now have more rounds

    def __bool__(self) -> bool:
        return bool(self.added or self.longer)

    def describe(self) -> str:
        """E.g. ``1 new trial(s); 4 trial(s) continue to more rounds``."""
        parts = [f"{len(self.added)} new trial(s)"] if self.added else []
        parts += [f"{len(self.longer)} trial(s) continue to more rounds"] if self.longer else []
        return "; ".join(parts)

    def record(self, record: Mapping[str, Any]) -> dict:
        """The sweep record to write when the grown sweep starts: the study given, and the rounds its ids hash."""
        out = {**record, "study": self.study.raw}
        if self.study.first_rounds not in (None, self.study.rounds_by_kind()):
            out[FIRST_ROUNDS] = self.study.first_rounds
        return out


def grow(stored: StudyConfig, given: StudyConfig, first_rounds: Mapping[str, Any] | None = None) -> Growth:
    """Compare the study given to ``--resume`` with the ``stored`` one; refuse anything but growth.

    ``first_rounds`` is what ``sweep.json`` keeps under :data:`FIRST_ROUNDS` (None: the stored
    study still has its first rounds). Raises :class:`~direct_ray.results.layout.SweepRecordError`.
    """
    first_rounds = first_rounds or stored.rounds_by_kind()
    stored, given = replace(stored, first_rounds=first_rounds), replace(given, first_rounds=first_rounds)
    _check_settings(stored, given)
    now = {trial.trial_id: trial for trial in given.trials()}
    before = stored.trials()
    if any(trial.trial_id not in now for trial in before):
        raise layout.SweepRecordError(
            "--resume may add grid values to the stored study but not remove or change them ("
            + (_removed(stored.raw.get("grid", {}), given.raw.get("grid", {})) or "grid values changed")
            + "); start a new sweep with another --output"
        )
    ids = {trial.trial_id for trial in before}
    return Growth(
        study=given,
        added=tuple(trial for trial in now.values() if trial.trial_id not in ids),
        longer=tuple(now[trial.trial_id] for trial in before if now[trial.trial_id].rounds > trial.rounds),
    )


def _check_settings(stored: StudyConfig, given: StudyConfig) -> None:
    """Refuse a change outside the grid other than larger rounds, in one line naming each key that differs."""
    before = {key: value for key, value in stored.raw.items() if key != "grid"}
    after = {key: value for key, value in given.raw.items() if key != "grid"}
    if not _fewer_rounds(stored, given):
        before, after = _without_rounds(before), _without_rounds(after)
    layout.check_same_study(before, after)


def _fewer_rounds(stored: StudyConfig, given: StudyConfig) -> bool:
    """True when some dataset of the stored study would run fewer rounds (and lose rows)."""
    return any(given.budget(spec.kind).rounds < stored.budget(spec.kind).rounds for spec in stored.datasets)


def _without_rounds(settings: Mapping[str, Any]) -> dict:
    """Study settings without their rounds: the top-level ``rounds`` and every ``budgets.<kind>.rounds``."""
    out = {key: value for key, value in settings.items() if key != "rounds"}
    if "budgets" in out:
        out["budgets"] = {kind: {k: v for k, v in budget.items() if k != "rounds"}
                          for kind, budget in out["budgets"].items()}
    return out


def _removed(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``grid.<key>: [values] removed`` for each grid key that lost values, joined by ``; ``."""
    lost = {key: [v for v in _values(old[key]) if v not in _values(new.get(key, []))] for key in old}
    return "; ".join(f"grid.{key}: {values} removed" for key, values in lost.items() if values)


def _values(value: Any) -> list:
    return value if isinstance(value, list) else [value]
