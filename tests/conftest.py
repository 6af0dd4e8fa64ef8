"""Markers applied from where a test lives and what it uses, so ``-m`` selects layers reliably.

* ``integration``: every test under ``tests/integration`` (real Ray, torch, Parquet, signals).
* ``ray``: every test that uses a Ray fixture (``ray_session``, ``ray_cluster``); ``pytest -m
  "not ray"`` therefore never starts Ray.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RAY_FIXTURES = {"ray_session", "ray_cluster"}
INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)
