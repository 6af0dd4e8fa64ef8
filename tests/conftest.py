"""Markers applied from where a test lives and what it uses, so ``-m`` selects layers reliably.

* ``integration``: every test under ``tests/integration`` (real Ray, torch, Parquet, signals).
* ``ray``: every test that uses a Ray fixture (``ray_session``, ``ray_cluster``, or
  ``starts_ray`` for a test whose subprocesses start Ray); ``pytest -m "not ray"`` therefore
  never starts Ray.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RAY_FIXTURES = {"ray_session", "ray_cluster", "starts_ray"}
INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that deselected the ``ray`` tests fails if something started a Ray session anyway."""
    import sys

    if "not ray" not in (session.config.getoption("markexpr") or ""):
        return
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\na test outside the 'ray' marker started Ray: give it a Ray fixture (see tests/conftest.py)",
              file=sys.stderr)
