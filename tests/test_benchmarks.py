"""The benchmark scripts stay runnable: each parses its options and documents itself."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["selection", "embedding_selection", "trial", "sweep", "annotators"])
def test_benchmark_help(module):
    result = subprocess.run(
        [sys.executable, "-m", f"direct_ray.benchmarks.{module}", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
