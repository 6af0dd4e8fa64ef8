"""A study grown to more rounds with ``--resume``: every trial continues from its last round under
its id, its earlier rows byte for byte as they were, its new rows those of a longer run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
import yaml

from direct_ray.checkpoint import TrialState
from direct_ray.cli import main
from direct_ray.results.schema import TIMING_COLUMNS
from direct_ray.trial import TrialContext, run_trial
from tests.integration.test_trial import make_config
from tests.studies import grid, study

# Cluster-Margin carries its clusters between rounds; two noisy annotators buy each round,
# instantly or on a simulated clock that runs across rounds.
STRATEGIES = ["random", "direct", "cluster_margin"]
ANNOTATION = [{"mode": "sync"}, {"mode": "async", "latency": {"model": "lognormal", "median": 30, "sigma": 1.0},
                                 "speeds": [1, 2]}]
TRIALS = len(STRATEGIES) * len(ANNOTATION)


def write_study(path: Path) -> Path:
    six = grid(strategy=STRATEGIES, seed=[0], b_parallel=[2], noise=[{"model": "uniform", "rate": 0.2}],
               annotation=ANNOTATION)
    path.write_text(yaml.safe_dump(study(name="grow", rounds=2, grid=six)))
    return path


def table(output: Path, name: str, *, rounds=None, drop=TIMING_COLUMNS):
    """The rows of ``name`` sorted by trial, round (and order), without the columns ``drop``."""
    rows = ds.dataset(output / name, partitioning="hive", format="parquet").to_table()
    if rounds is not None:
        rows = rows.filter(pc.is_in(rows["round"], pa.array(rounds, rows["round"].type)))
    keys = [(k, "ascending") for k in ("strategy", "trial_id", "round", "order") if k in rows.column_names]
    rows = rows.sort_by(keys)
    return rows.drop_columns([c for c in drop if c in rows.column_names])


def mtimes(output: Path) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in output.glob("*/**/*.parquet")}


@pytest.fixture(scope="module")
def grown(ray_session, tmp_path_factory):
    """A 2-round sweep and its rows, then the same sweep grown to 3 rounds with --resume."""
    tmp = tmp_path_factory.mktemp("grow")
    study_file, output = write_study(tmp / "study.yaml"), tmp / "out"
    base = [str(study_file), "--output", str(output), "--no-report"]
    assert main(base) == 0
    before = {name: table(output, name, drop=()) for name in ("curves", "selections")}
    files = sorted(f.relative_to(output) for f in output.glob("*/**/*.parquet"))
    record = json.loads((output / "sweep.json").read_text())
    assert main([*base, "--resume", "--set", "rounds=3"]) == 0
    return {"tmp": tmp, "study": study_file, "output": output, "base": base, "before": before, "files": files,
            "record": record}


def test_more_rounds_continue_every_trial_with_its_earlier_rows_unchanged(grown):
    output = grown["output"]
    assert f"growing the sweep: {TRIALS} trial(s) continue to more rounds" in (output / "sweep.log").read_text()
    # Same trials, same files: the ids did not change.
    assert sorted(f.relative_to(output) for f in output.glob("*/**/*.parquet")) == grown["files"]
    for name in ("curves", "selections"):
        # Every column, timings included: the rows come from the trials' checkpoints, not a rerun.
        assert table(output, name, rounds=[0, 1, 2], drop=()).equals(grown["before"][name]), name
        assert set(table(output, name)["round"].to_pylist()) == {0, 1, 2, 3}
    assert len(table(output, "curves")) == TRIALS * 4
    assert len(table(output, "selections")) == TRIALS * (10 + 3 * 10)
    record = json.loads((output / "sweep.json").read_text())
    assert record["sweep_id"] == grown["record"]["sweep_id"]
    assert record["study"]["rounds"] == 3 and record["first_rounds"] == {"rounds": 2, "budgets": {}}


def rows_of(rows: pa.Table, asynchronous: bool) -> pa.Table:
    """The rows of the trials with (or without) asynchronous annotators, without ids and timings."""
    keep = pc.match_substring(rows["trial_id"], "_async")
    rows = rows.filter(keep if asynchronous else pc.invert(keep))
    return rows.drop_columns([c for c in ("trial_id", "sweep_id", *TIMING_COLUMNS) if c in rows.column_names])


def test_the_grown_rows_are_those_of_an_uninterrupted_longer_run(grown):
    """Synchronous trials grow into exactly the rows of a longer run. An asynchronous trial's
    last round waited for all its labels where a longer run's overlaps the next round, so its
    rows differ from there on; growing it is deterministic: a second growth gives the same."""
    tmp = grown["tmp"]
    reference, again = tmp / "reference", tmp / "again"
    assert main([str(grown["study"]), "--output", str(reference), "--no-report", "--set", "rounds=3"]) == 0
    assert main([str(grown["study"]), "--output", str(again), "--no-report"]) == 0
    assert main([str(grown["study"]), "--output", str(again), "--no-report", "--resume", "--set", "rounds=3"]) == 0
    for name in ("curves", "selections"):
        rows = table(grown["output"], name, drop=())
        assert rows_of(rows, False).equals(rows_of(table(reference, name, drop=()), False)), name
        assert rows_of(rows, True).equals(rows_of(table(again, name, drop=()), True)), name
        assert len(rows_of(rows, True)) == len(rows) // 2


def test_a_grown_sweep_resumed_again_reruns_nothing_and_is_analysed(grown):
    output, base = grown["output"], grown["base"]
    done = mtimes(output)
    assert main([*base[:-1], "--resume", "--set", "rounds=3"]) == 0  # with the report this time
    assert mtimes(output) == done
    report = (output / "report" / "report.md").read_text()
    assert f"{TRIALS} trials" in report and "unfinished" not in report and "disagree" not in report


def test_a_dry_run_with_resume_shows_the_growth_under_the_stored_ids(grown, capsys):
    output, base = grown["output"], grown["base"]
    done, record = mtimes(output), (output / "sweep.json").read_text()
    capsys.readouterr()
    assert main([*base, "--resume", "--dry-run", "--set", "rounds=4"]) == 0
    out = capsys.readouterr().out
    assert f"note: --resume would grow the stored sweep: {TRIALS} trial(s) continue to more rounds" in out
    ids = {path.stem for path in output.glob("curves/*/*/*.parquet")}
    assert len(ids) == TRIALS and all(trial_id in out for trial_id in ids)  # the grown trials keep their ids
    assert main([*base, "--resume", "--dry-run", "--set", "b_train=5"]) == 2
    assert "b_train: 10 -> 5" in capsys.readouterr().err
    assert mtimes(output) == done and (output / "sweep.json").read_text() == record


def test_fewer_rounds_or_another_change_is_refused_in_one_line_and_touches_nothing(grown, capsys):
    output, base = grown["output"], grown["base"]
    done, record = mtimes(output), (output / "sweep.json").read_text()
    capsys.readouterr()
    assert main([*base, "--resume", "--set", "rounds=1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "rounds: 3 -> 1" in err and "discard results" in err
    assert main([*base, "--resume", "--set", "rounds=4", "--set", "b_train=5"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "b_train: 10 -> 5" in err and "rounds:" not in err
    assert main([*base, "--resume", "--set", "rounds=400"]) == 2  # the budget, checked before anything starts
    assert "budget: initial_size + rounds * b_train" in capsys.readouterr().err
    assert mtimes(output) == done and (output / "sweep.json").read_text() == record


def test_run_trial_continues_a_finished_trial_to_more_rounds_and_says_when_its_model_differs(
        ray_session, tmp_path, caplog):
    """The trial-level path: a finished checkpoint, the same trial with more rounds (same id)."""
    checkpoint = tmp_path / "ckpt"
    short = run_trial(make_config(rounds=2), checkpoint_dir=checkpoint, context=TrialContext())
    longer = make_config(rounds=3, id_rounds=2)
    assert longer.trial_id == make_config(rounds=2).trial_id
    whole = run_trial(make_config(rounds=3), context=TrialContext())
    rows = ("round", "n_labeled", "n_labeled_per_class", "balanced_accuracy", "annotation_seconds")
    # Tampered: the stored last row no longer matches the model trained again.
    tampered = tmp_path / "tampered"
    state = TrialState.load(checkpoint)
    state.curve[-1]["balanced_accuracy"] = -1.0
    state.save(tampered)
    with caplog.at_level("WARNING", logger="direct_ray.trial"):
        grown = run_trial(longer, checkpoint_dir=checkpoint, context=TrialContext())
        assert "trained again" not in caplog.text
        run_trial(longer, checkpoint_dir=tampered, context=TrialContext())
        assert "round 2 trained again scores balanced_accuracy=" in caplog.text and "not the stored -1.0" in caplog.text
    assert grown.curve[:3] == short.curve
    assert [{k: r[k] for k in rows} for r in grown.curve] == [{k: r[k] for k in rows} for r in whole.curve]
    assert grown.selections == [dict(r, trial_id=longer.trial_id) for r in whole.selections]
