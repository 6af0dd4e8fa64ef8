"""Faults injected by tests, to check that trials and sweeps recover; inert otherwise.

Not part of a study and not in any trial's id: a test writes a plan (JSON) and points the
environment variable :data:`PLAN_ENV` at it *before* Ray starts, so every Ray worker process
inherits it. Without the variable every hook returns at once: production runs pay one
environment lookup per call, nothing more.

The plan's keys (all optional):

* ``annotator_exit_on_query``: annotator 0's process exits (``os._exit``) on its n-th query
  since it started; a list ``[n1, n2, ...]`` kills it once for each entry, in turn;
* ``trial_raise_at_round``: the trial raises ``RuntimeError("injected fault ...")`` in that round;
* ``trial_exit_at_round``: the trial's process exits (``os._exit``) in that round.

Each fault fires once per trial (the annotator's once per entry), remembered by a marker
file next to the plan, so a retried trial or a restarted annotator then runs normally.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PLAN_ENV = "DIRECT_RAY_FAULT_PLAN"


def _plan() -> tuple[dict, Path] | None:
    path = os.environ.get(PLAN_ENV)
    if not path or not os.path.isfile(path):
        return None
    return json.loads(Path(path).read_text()), Path(path).parent


def _first_time(directory: Path, marker: str) -> bool:
    """True the first time ``marker`` is claimed in ``directory`` (atomic across processes)."""
    try:
        fd = os.open(directory / marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def annotator_query(annotator: int, queries_so_far: int) -> None:
    """Called by an annotator before it answers; may end its process (see the module docstring)."""
    found = _plan()
    if found is None:
        return
    plan, directory = found
    targets = plan.get("annotator_exit_on_query")
    if targets is None or annotator != 0:
        return
    targets = targets if isinstance(targets, list) else [targets]
    fired = [i for i in range(len(targets)) if (directory / f"annotator_exit_{i}.fired").exists()]
    next_kill = len(fired)
    if next_kill < len(targets) and queries_so_far >= targets[next_kill]:
        if _first_time(directory, f"annotator_exit_{next_kill}.fired"):
            os._exit(1)  # a hard crash, as a killed annotator process would


def trial_round(trial_id: str, round_: int) -> None:
    """Called by a trial in every round; may raise or end the process (see the module docstring)."""
    found = _plan()
    if found is None:
        return
    plan, directory = found
    if plan.get("trial_raise_at_round") == round_ and _first_time(directory, f"trial_raise_{trial_id}.fired"):
        raise RuntimeError(f"injected fault: trial raises in round {round_}")
    if plan.get("trial_exit_at_round") == round_ and _first_time(directory, f"trial_exit_{trial_id}.fired"):
        os._exit(1)
