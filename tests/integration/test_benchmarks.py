"""The benchmark scripts stay runnable: each parses its options and documents itself."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT


@pytest.mark.parametrize("module", ["selection", "embedding_selection", "trial", "sweep", "annotators", "gpu"])
def test_benchmark_help(module):
    result = subprocess.run(
        [sys.executable, "-m", f"direct_ray.benchmarks.{module}", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_sweep_ratio_splits_exactly_into_work_and_parallelism():
    from direct_ray.benchmarks.sweep import Timing, decompose, summarise

    # Hand-worked: sequential 60 s using 1.5 cores (90 CPU-s); Tune 45 s using 2 cores (90 CPU-s):
    # no extra work, so the ratio is all parallelism: 1.5 / 2 = 0.75 = 45 / 60.
    seq, tune = Timing(wall=60.0, cpu=90.0), Timing(wall=45.0, cpu=90.0)
    parts = decompose(seq, tune)
    assert parts.ratio == pytest.approx(0.75)
    assert parts.work == pytest.approx(1.0)
    assert parts.parallelism == pytest.approx(0.75)
    # Any pair: the two factors multiply back to the ratio.
    for seq, tune in [(Timing(66.1, 85.3), Timing(56.0, 115.0)), (Timing(10.0, 10.0), Timing(8.0, 16.0))]:
        parts = decompose(seq, tune)
        assert parts.work * parts.parallelism == pytest.approx(parts.ratio)
    lines = "\n".join(summarise([Timing(60.0, 90.0)], [Timing(45.0, 90.0)], cpus=2))
    assert "ratio Tune / sequential = 0.75" in lines
    assert "work 1.00x" in lines and "parallelism 0.75" in lines
    assert "sequential cores / 2 = 0.75" in lines
    assert "without Tune" not in lines
    # The arm without Tune: 50 s using 2 cores (100 CPU-s) against the same sequential run.
    lines = "\n".join(summarise([Timing(60.0, 90.0)], [Timing(45.0, 90.0)], cpus=2, concurrent=[Timing(50.0, 100.0)]))
    assert "without Tune:         50.0 s (2.00 cores); median 50.0 s: ratio 0.83, work 1.11x, parallelism 0.75" in lines
