"""Unit tests: pure Python, numpy, pyarrow and matplotlib; never Ray, never torch.

When a run collects only unit tests, it fails at the end if anything imported ``ray`` or
``torch``: the layer stays fast (the whole of it in well under a minute on 2 cores) and
runs where neither is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent
FORBIDDEN = ("ray", "torch")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    items = getattr(session, "items", [])
    if not items or any(UNIT not in Path(str(item.fspath)).resolve().parents for item in items):
        return  # a mixed run: integration tests import them on purpose
    loaded = [name for name in FORBIDDEN if name in sys.modules]
    if loaded:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nunit tests imported {loaded}: move the importing test to tests/integration or cut the import",
              file=sys.stderr)
