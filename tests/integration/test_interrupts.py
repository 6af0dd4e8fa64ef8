"""Stopping a sweep with real signals sent to its process group, as a terminal or a job manager does."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from tests.paths import ROOT
from tests.studies import grid, study

COMPARED = ["trial_id", "round", "n_labeled", "n_labeled_per_class", "n_noisy_labels", "balanced_accuracy"]


def write_study(path: Path) -> Path:
    """4 trials one at a time (random, confidence, margin, direct), 3 rounds each."""
    four = grid(strategy=["random", "confidence", "margin", "direct"], seed=[0], b_parallel=[1], noise=[{"model": "none"}])
    path.write_text(yaml.safe_dump(study(name="stop", rounds=3, grid=four, max_concurrent_trials=1)))
    return path


def start(study_file: Path, output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "direct_ray.sweep", str(study_file), "--output", str(output), "--num-cpus", "1", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def finish(study_file: Path, output: Path, *extra: str) -> None:
    """Run the sweep to its end (in a process of its own), one CPU, no report; it must succeed."""
    done = subprocess.run([sys.executable, "-m", "direct_ray.sweep", str(study_file), "--output", str(output),
                           "--num-cpus", "1", "--no-report", *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def wait_for_a_finished_trial(driver: subprocess.Popen, output: Path, timeout: float = 240, rounds: int = 3) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert driver.poll() is None, driver.communicate()[0][-3000:]
        for f in output.glob("curves/**/*.parquet"):
            if not f.name.startswith(".") and pq.read_metadata(f).num_rows == rounds + 1:
                return
        time.sleep(0.3)
    pytest.fail("no trial finished in time")


def rows(output: Path, columns: list[str] = COMPARED) -> list[tuple]:
    table = ds.dataset(output / "curves", partitioning="hive", format="parquet").to_table().select(columns)
    return sorted(tuple(str(v) for v in row.values()) for row in table.to_pylist())


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_cleanly_and_the_printed_command_finishes_the_sweep(tmp_path, sig, status, starts_ray):
    study_file, output = write_study(tmp_path / "study.yaml"), tmp_path / "out"
    driver = start(study_file, output)
    wait_for_a_finished_trial(driver, output)
    os.killpg(driver.pid, sig)
    out, _ = driver.communicate(timeout=120)
    assert driver.returncode == status, out[-3000:]
    assert "interrupted: " in out and " of 4 trials complete" in out
    assert "Failed to fetch metrics" not in out and "SIGTERM received" not in out and "Traceback" not in out
    assert not (output / "report").exists()  # no report for an unfinished sweep
    command = out.strip().splitlines()[-1].strip()
    assert command.endswith("--resume") and str(output) in command
    words = shlex.split(command)
    assert words[0] == "python"
    resumed = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Failed to fetch metrics" not in resumed.stdout + resumed.stderr
    assert len(rows(output)) == 4 * 4


def test_a_second_signal_stops_at_once_and_leaves_whole_files(tmp_path, starts_ray):
    output = tmp_path / "out"
    driver = start(write_study(tmp_path / "study.yaml"), output, "--no-report")
    wait_for_a_finished_trial(driver, output)
    os.killpg(driver.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGINT)
    driver.communicate(timeout=60)
    assert driver.returncode == 130
    for f in output.glob("curves/**/*.parquet"):  # every visible file is whole and readable
        if not f.name.startswith("."):
            assert pq.read_table(f).num_rows >= 1


def test_resume_grows_a_study_by_grid_values_and_refuses_other_changes(ray_session, tmp_path, capsys):
    import json

    from direct_ray.cli import main

    study_file, output = write_study(tmp_path / "study.yaml"), tmp_path / "out"
    base = [str(study_file), "--output", str(output), "--no-report"]
    assert main([*base, "--set", "grid.strategy=[random]"]) == 0
    first = {f: f.stat().st_mtime_ns for f in output.glob("*/**/*.parquet")}
    capsys.readouterr()
    # A changed setting, or a grid value removed, is refused with one line naming it; nothing is touched.
    assert main([*base, "--resume", "--set", "grid.strategy=[random]", "--set", "b_train=5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "b_train: 10 -> 5" in err
    assert main([*base, "--resume", "--set", "grid.strategy=[margin]"]) == 2
    assert "grid.strategy: ['random'] removed" in capsys.readouterr().err
    assert {f: f.stat().st_mtime_ns for f in output.glob("*/**/*.parquet")} == first
    # Added grid values run only the new trials; the finished one is not rerun.
    assert main([*base, "--resume", "--set", "grid.strategy=[random, direct]"]) == 0
    out = capsys.readouterr()
    assert "growing the sweep: 1 new trial(s)" in out.out and "Failed to fetch metrics" not in out.out + out.err
    assert {f: f.stat().st_mtime_ns for f in first} == first
    assert len(rows(output)) == 2 * 4 and len({r[0] for r in rows(output)}) == 2
    assert json.loads((output / "sweep.json").read_text())["study"]["grid"]["strategy"] == ["random", "direct"]


def test_an_interrupted_sweep_grown_on_resume_continues_its_begun_trials(tmp_path, starts_ray):
    """Stopped mid-sweep, then resumed with another seed: the trials the first run had begun
    continue from their checkpoints (in the first run's Tune experiment) to the rows an
    uninterrupted run gives, and the new seed's trials run."""
    study_file, output = write_study(tmp_path / "study.yaml"), tmp_path / "out"
    driver = start(study_file, output, "--no-report")
    wait_for_a_finished_trial(driver, output)
    os.killpg(driver.pid, signal.SIGINT)
    driver.communicate(timeout=120)
    assert driver.returncode == 130
    finish(study_file, output, "--resume", "--set", "grid.seed=[0, 1]")
    reference = tmp_path / "reference"
    finish(study_file, reference, "--set", "grid.seed=[0, 1]")
    assert rows(output) == rows(reference)


def test_an_interrupted_sweep_grown_to_more_rounds_and_interrupted_again_finishes_on_resume(tmp_path, starts_ray):
    """Stopped mid-sweep, grown to 4 rounds and stopped again, then resumed as it stands: every
    trial, finished or begun in either run, ends with the rows of a 4-round sweep run at once."""
    study_file, output = write_study(tmp_path / "study.yaml"), tmp_path / "out"
    first = start(study_file, output, "--no-report")
    wait_for_a_finished_trial(first, output)
    os.killpg(first.pid, signal.SIGINT)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out[-3000:]
    grown = start(study_file, output, "--no-report", "--resume", "--set", "rounds=4")
    wait_for_a_finished_trial(grown, output, rounds=4)
    os.killpg(grown.pid, signal.SIGINT)
    out, _ = grown.communicate(timeout=120)
    assert grown.returncode == 130, out[-3000:]
    finish(study_file, output, "--resume", "--set", "rounds=4")
    reference = tmp_path / "reference"
    finish(study_file, reference, "--set", "rounds=4")
    by_grid_point = ["strategy", "seed", *COMPARED[1:]]  # the grown trials keep the ids of 3 rounds
    assert rows(output, by_grid_point) == rows(reference, by_grid_point) and len(rows(output)) == 4 * 5
