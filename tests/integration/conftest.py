"""Integration fixtures: one local Ray session for every test that needs one, and injected faults.

Faults reach Ray's worker processes through :data:`direct_ray.runtime.faults.PLAN_ENV`, which
must be set before Ray starts: it is set here, when the integration tests are collected, to
a plan file that only :func:`inject_faults` writes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from direct_ray.runtime.faults import PLAN_ENV

os.environ[PLAN_ENV] = str(Path(tempfile.mkdtemp(prefix="direct-ray-faults-")) / "plan.json")


@pytest.fixture(scope="session")
def ray_session():
    """A local 2-CPU Ray session shared by the whole test run (never `ray stop`)."""
    import ray

    from direct_ray.runtime.session import start_local_ray

    if not ray.is_initialized():
        start_local_ray(2, quiet=True)
    yield ray
    ray.shutdown()


@pytest.fixture
def starts_ray():
    """Declares that the test starts Ray in processes of its own (a sweep run as a command)."""


@pytest.fixture
def inject_faults():
    """``inject_faults(trial_raise_at_round=2, ...)`` turns faults on for this test (see runtime.faults).

    Returns the directory where each fault leaves its marker when it fires; everything is
    removed when the test ends.
    """
    plan = Path(os.environ[PLAN_ENV])

    def inject(**faults) -> Path:
        plan.write_text(json.dumps(faults))
        return plan.parent

    yield inject
    plan.unlink(missing_ok=True)
    for marker in plan.parent.glob("*.fired"):
        marker.unlink()
