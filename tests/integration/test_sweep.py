"""The sweep end to end on real Ray Tune: Parquet contract, retries, interrupted driver + --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from direct_ray.results.schema import REQUIRED_COLUMNS
from direct_ray.cli import main
from tests.studies import grid, study

from tests.paths import ROOT
METRICS = ["round", "n_labeled", "n_labeled_per_class", "n_noisy_labels", "balanced_accuracy", "accuracy",
           "worst_class_accuracy", "minority_accuracy"]


def write_study(path: Path, **changes) -> Path:
    """A 2-trial study (direct and random, one seed, b_parallel 2, 10% noise, 3 rounds) as YAML."""
    tiny = grid(seed=[0], b_parallel=[2], noise=[{"model": "uniform", "rate": 0.1}])
    path.write_text(yaml.safe_dump(study(**{"name": "tiny", "rounds": 3, "grid": tiny, **changes})))
    return path


def curves(output: Path) -> list[dict]:
    return ds.dataset(output / "curves", partitioning="hive", format="parquet").to_table().to_pylist()


def by_strategy(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["round"]):
        out.setdefault(row["strategy"], []).append({k: row[k] for k in METRICS})
    return out


@pytest.fixture(scope="module")
def tiny_sweep(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    output = tmp / "out"
    assert main([str(write_study(tmp / "study.yaml")), "--output", str(output), "--no-report"]) == 0
    return output


def test_every_trial_writes_the_contract_columns(tiny_sweep):
    rows = curves(tiny_sweep)
    assert {r["strategy"] for r in rows} == {"direct", "random"}
    for column in REQUIRED_COLUMNS["curves"]:
        assert column in rows[0], column
    for strategy, trial in by_strategy(rows).items():
        assert [r["n_labeled"] for r in trial] == [10, 20, 30, 40], strategy
    files = sorted((tiny_sweep / "curves").rglob("*.parquet"))
    assert len(files) == 2 and all(f.parent.name.startswith("strategy=") for f in files)
    assert pq.read_metadata(files[0]).metadata[b"direct_ray.schema_version"] == b"1"
    assert json.loads(pq.read_metadata(files[0]).metadata[b"direct_ray.classes"]) == [0] + [1] * 9  # digit 0 vs rest
    selections = ds.dataset(tiny_sweep / "selections", partitioning="hive").to_table()
    for column in REQUIRED_COLUMNS["selections"]:
        assert column in selections.column_names
    assert selections.num_rows == 2 * 40


def test_the_sweep_shares_one_annotator_team_and_ends_it(tiny_sweep, ray_session):
    """Two trials at once share one team of two annotators, which the driver ends with the sweep."""
    record = json.loads((tiny_sweep / "sweep.json").read_text())
    assert record["annotator_teams"] == [f"direct_ray/{record['sweep_id']}/annotators-0"]  # 2 trials at once: 1 team
    deadline = time.monotonic() + 30  # ray.kill is asynchronous
    while True:
        alive = {entry["name"] for entry in ray_session.util.list_named_actors(all_namespaces=True)}
        team = [name for name in alive if record["sweep_id"] in name]
        if not team or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not team  # the driver ended its team
    rows = ds.dataset(tiny_sweep / "selections", partitioning="hive").to_table().to_pylist()
    assert {r["annotator"] for r in rows} == {0, 1}  # b_parallel 2: both members answered


def test_trials_at_once_and_the_annotator_teams_they_get():
    from direct_ray.runtime.team import MAX_TEAMS, TRIALS_PER_TEAM, annotator_team_names, team_for_trial, trials_at_once

    cpu = make_study(resources={"cpus_per_trial": 1, "gpus_per_trial": 0})
    gpu = make_study(resources={"cpus_per_trial": 2, "gpus_per_trial": 0.5})
    assert trials_at_once(cpu, 32, {"CPU": 2.0}) == 2
    assert trials_at_once(cpu, 3, {"CPU": 64.0}) == 3  # never more than the trials
    assert trials_at_once(gpu, 100, {"CPU": 64.0, "GPU": 4.0}) == 8  # the GPUs bind first
    assert trials_at_once(gpu, 100, {"CPU": 4.0}) == 1  # autoscaling cluster, no GPU node yet
    assert trials_at_once(make_study(max_concurrent_trials=20), 100, {"CPU": 2.0}) == 20
    assert len(annotator_team_names("s", 1)) == 1
    assert len(annotator_team_names("s", TRIALS_PER_TEAM)) == 1
    assert len(annotator_team_names("s", TRIALS_PER_TEAM + 1)) == 2
    assert len(annotator_team_names("s", 10_000)) == MAX_TEAMS
    teams = annotator_team_names("s", 4 * TRIALS_PER_TEAM)
    used = [team_for_trial(f"trial-{i}", teams) for i in range(400)]
    # The same team in every process: a trainable (another process, another hash seed) and a
    # resumed sweep must agree with the driver.
    code = ("from direct_ray.runtime.team import annotator_team_names, team_for_trial; "
            "teams = annotator_team_names('s', 32); print([team_for_trial(f'trial-{i}', teams) for i in range(400)])")
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert other.stdout.strip() == str(used)
    assert min(used.count(t) for t in teams) > 50  # and spread over every team


def make_study(**changes):
    from direct_ray.config import StudyConfig

    return StudyConfig.from_dict(study(**{"name": "t", "rounds": 1, "grid": grid(), **changes}))


def test_tunes_own_result_grid_holds_every_rounds_metrics(tiny_sweep):
    # Tune's CSV/TensorBoard loggers are off; its JSON log stays, so Tune's analysis still works
    # (without it Tune warns "Failed to fetch metrics" for every trial at the end of a sweep).
    from ray.tune import ExperimentAnalysis

    frames = ExperimentAnalysis(str(tiny_sweep / "tune")).trial_dataframes
    assert len(frames) == 2
    for frame in frames.values():
        assert frame["round"].tolist() == [0, 1, 2, 3]


def test_results_read_with_pandas_and_duckdb(tiny_sweep):
    import duckdb
    import pandas as pd

    frame = pd.read_parquet(tiny_sweep / "curves")
    assert len(frame) == 8 and set(frame["strategy"].astype(str)) == {"direct", "random"}
    glob = str(tiny_sweep / "curves" / "**" / "*.parquet")
    count = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true) where round = 3").fetchall()
    assert count == [(2,)]


def test_a_trial_that_raises_once_is_retried_to_identical_rows(tiny_sweep, tmp_path, inject_faults):
    markers = inject_faults(trial_raise_at_round=2)
    output = tmp_path / "out"
    assert main([str(write_study(tmp_path / "study.yaml")), "--output", str(output), "--no-report"]) == 0
    assert len(list(markers.glob("trial_raise_*.fired"))) == 2  # each trial raised once
    assert by_strategy(curves(output)) == by_strategy(curves(tiny_sweep))


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(ray_session, tmp_path):
    study = write_study(
        tmp_path / "study.yaml",
        max_concurrent_trials=1,
        grid=grid(strategy=["random", "confidence", "direct"], seed=[0], b_parallel=[1], noise=[{"model": "none"}]),
    )
    output = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "direct_ray.sweep", str(study), "--output", str(output), "--num-cpus", "1", "--no-report"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 240
    finished: dict[Path, float] = {}
    try:
        while time.time() < deadline and not finished:
            time.sleep(0.5)
            for f in (output / "curves").rglob("*.parquet") if (output / "curves").exists() else []:
                if pq.read_metadata(f).num_rows == 4:
                    finished[f] = f.stat().st_mtime_ns
        assert finished, "no trial finished before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its local Ray die at once
        driver.wait()
    assert main([str(study), "--output", str(output), "--resume", "--no-report"]) == 0
    for f, mtime in finished.items():
        assert f.stat().st_mtime_ns == mtime, f"{f.name} was rerun"
    rows = curves(output)
    keys = [(r["trial_id"], r["round"]) for r in rows]
    assert len(keys) == len(set(keys)) == 3 * 4


def test_bad_study_is_a_clear_error_before_ray_starts(tmp_path, capsys):
    study = write_study(tmp_path / "study.yaml", rounds=-2)
    assert main([str(study), "--output", str(tmp_path / "o")]) == 2
    assert "rounds" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_refuses_to_mix_two_sweeps_in_one_output(tiny_sweep, tmp_path, capsys):
    assert main([str(write_study(tmp_path / "s.yaml")), "--output", str(tiny_sweep)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_help_lists_the_options():
    result = subprocess.run([sys.executable, "-m", "direct_ray.sweep", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--set", "--output", "--resume", "--address"):
        assert option in result.stdout
