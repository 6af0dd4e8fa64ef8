"""The atomic per-trial writer: local paths and filesystem URIs take the same code path."""

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from direct_ray.results.schema import META_SCHEMA_VERSION, SELECTIONS
from direct_ray.results.layout import trial_file_path
from direct_ray.results.write import write_trial_table

ROW = {"trial_id": "t1", "round": 0, "order": 0, "pool_index": 3, "true_label": 1, "observed_label": 1, "annotator": 0,
       "answered_at": 0.0}


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_write_replaces_atomically_and_leaves_no_temporaries(tmp_path, as_uri):
    root = f"file://{tmp_path}" if as_uri else tmp_path
    for n in (1, 3):
        write_trial_table(root, SELECTIONS, [ROW] * n, dataset="d-k2", strategy="direct", trial_id="t1")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["t1.parquet"]
    table = ds.dataset(tmp_path / SELECTIONS, partitioning="hive").to_table()
    assert table.num_rows == 3 and table["strategy"].to_pylist() == ["direct"] * 3
    assert pq.read_metadata(files[0]).metadata[META_SCHEMA_VERSION.encode()] == b"1"


def test_missing_column_and_unsafe_partition_values_are_errors(tmp_path):
    with pytest.raises(ValueError, match="lacks column 'annotator'"):
        write_trial_table(tmp_path, SELECTIONS, [{k: v for k, v in ROW.items() if k != "annotator"}],
                          dataset="d", strategy="direct", trial_id="t1")
    with pytest.raises(ValueError, match="partition directory"):
        trial_file_path(tmp_path, SELECTIONS, "../etc", "direct", "t1")
    with pytest.raises(ValueError, match="unknown results table"):
        trial_file_path(tmp_path, "bogus", "d", "direct", "t1")


def test_every_named_column_group_is_in_the_schema():
    from direct_ray.results.schema import COLUMN_GROUPS, CURVE_SCHEMA

    for group in COLUMN_GROUPS:
        assert set(group) <= set(CURVE_SCHEMA.names), group


# --- TrialWriter: one file per round while a trial runs, one file per table when it ends ---

import duckdb
import pandas as pd

from direct_ray.results import write as write_module
from direct_ray.results.layout import parse_file_name, round_file_path, trial_complete
from direct_ray.results.read import read_table
from direct_ray.results.schema import CURVES
from direct_ray.results.write import TrialWriter
from tests.unit.analysis.synthetic import curve_rows

ROUNDS, LABELS = 5, 3
WHERE = {"dataset": "d-k2", "strategy": "direct", "trial_id": "t1"}


def _rows(rounds: int = ROUNDS) -> tuple[list[dict], list[dict]]:
    """A trial's curve rows and selection rows (LABELS labels a round), in round order."""
    curve = curve_rows("t1", n_labeled=[LABELS * (r + 1) for r in range(rounds + 1)],
                       balanced_accuracy=[0.5 + r / 100 for r in range(rounds + 1)])
    selections = [{**ROW, "round": r, "order": r * LABELS + i, "pool_index": r * LABELS + i}
                  for r in range(rounds + 1) for i in range(LABELS)]
    return curve, selections


def _upto(rows: list[dict], round_: int) -> list[dict]:
    return [row for row in rows if row["round"] <= round_]


def _writer(root) -> TrialWriter:
    return TrialWriter(root, metadata={}, **WHERE)


def _visible(root) -> dict[str, list[tuple]]:
    """Each table's rows as every reader sees them: read.py, pandas, pyarrow.dataset and DuckDB must agree."""
    out = {}
    for table, key in ((CURVES, ("round",)), (SELECTIONS, ("round", "order"))):
        if not (root / table).exists() or not list((root / table).rglob("*.parquet")):
            out[table] = []
            continue
        ours = sorted(tuple(r[k] for k in key) for r in read_table(root, table).to_pylist())
        frame = pd.read_parquet(root / table)
        assert sorted(map(tuple, frame[list(key)].itertuples(index=False))) == ours
        hive = ds.dataset(root / table, partitioning="hive").to_table()
        assert sorted(zip(*(hive[k].to_pylist() for k in key))) == ours
        glob = f"{root / table}/**/*.parquet"
        columns = ", ".join(f'"{k}"' for k in key)
        sql = f"select {columns} from read_parquet('{glob}', hive_partitioning=true)"
        assert sorted(duckdb.sql(sql).fetchall()) == ours
        out[table] = ours
    return out


def _expected(curve, selections) -> dict[str, list[tuple]]:
    return {CURVES: sorted((r["round"],) for r in curve), SELECTIONS: sorted((r["round"], r["order"]) for r in selections)}


class _Config:
    """What trial_complete reads of a trial configuration."""

    class dataset:
        name = WHERE["dataset"]

    strategy, trial_id, rounds = WHERE["strategy"], WHERE["trial_id"], ROUNDS


def test_each_round_writes_only_its_own_rows_then_finishing_leaves_one_file_per_table(tmp_path):
    curve, selections = _rows()
    seen = {}
    with _writer(tmp_path) as writer:
        for r in range(ROUNDS + 1):
            writer.submit(_upto(curve, r), _upto(selections, r))
            writer.flush()
            files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
            changed = [p for p in files if seen.get(p) != files[p]]
            # this round's two files, nothing else rewritten
            assert sorted(parse_file_name(p.name) for p in changed) == [("t1", r), ("t1", r)]
            assert [pq.read_metadata(p).num_rows for p in sorted(changed)] == [1, LABELS]
            seen = files
            assert _visible(tmp_path) == _expected(_upto(curve, r), _upto(selections, r))
            assert not trial_complete(tmp_path, _Config)
        # temporaries left by a writer killed mid-write: this trial's go when it finishes, others' stay
        folder = tmp_path / "curves" / "dataset=d-k2" / "strategy=direct"
        for name in ("t1.round-00002.parquet", "t1.parquet", "t10.parquet", "t1.x.round-00001.parquet"):
            (folder / f".{name}.0123abcd.tmp").write_bytes(b"half")
        writer.finish(curve, selections)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["curves/dataset=d-k2/strategy=direct/.t1.x.round-00001.parquet.0123abcd.tmp",
                     "curves/dataset=d-k2/strategy=direct/.t10.parquet.0123abcd.tmp",
                     "curves/dataset=d-k2/strategy=direct/t1.parquet",
                     "selections/dataset=d-k2/strategy=direct/t1.parquet"]
    assert _visible(tmp_path) == _expected(curve, selections)
    assert trial_complete(tmp_path, _Config)


def test_rows_must_arrive_a_whole_round_at_a_time(tmp_path):
    curve, selections = _rows()
    with _writer(tmp_path) as writer:
        writer.submit(_upto(curve, 1), _upto(selections, 1))
        with pytest.raises(ValueError, match="arrived after round 1"):
            writer.submit(curve[:2] + [curve[1]], selections)


class _Killed(BaseException):
    """Stands for the process dying at this point."""


def _kill_after(monkeypatch, steps: int) -> None:
    """Make the writer die just before its (steps + 1)-th move or delete (what readers can see change)."""
    done = [0]

    def wrap(real):
        def step(*args):
            if done[0] == steps:
                raise _Killed
            done[0] += 1
            return real(*args)
        return step

    monkeypatch.setattr(write_module, "_move", wrap(write_module._move))
    monkeypatch.setattr(write_module, "_delete", wrap(write_module._delete))


def _run(root, curve, selections, start: int = 0, rounds: int = ROUNDS) -> None:
    """A trial's writes from round ``start`` on, as the round loop makes them (a resumed trial hands over
    every earlier row with its first round)."""
    with _writer(root) as writer:
        for r in range(start, rounds + 1):
            writer.submit(_upto(curve, r), _upto(selections, r))
        writer.finish(curve, selections)


def _steps_of_a_whole_run() -> int:
    # 2 files a round, then per table: delete its round files and move its single file in
    return 2 * (ROUNDS + 1) + 2 * (ROUNDS + 1 + 1)


@pytest.mark.parametrize("killed_after", range(_steps_of_a_whole_run()))
@pytest.mark.parametrize("resume_at", [0, 2])
def test_killed_at_any_step_shows_each_row_at_most_once_and_a_resume_gives_the_uninterrupted_rows(
        tmp_path, monkeypatch, killed_after, resume_at):
    curve, selections = _rows()
    with monkeypatch.context() as patch:
        _kill_after(patch, killed_after)
        with pytest.raises(_Killed):
            _run(tmp_path, curve, selections)
    visible = _visible(tmp_path)  # no duplicates, and never a round only partly there
    complete = _expected(curve, selections)
    for table, rows in visible.items():
        assert len(rows) == len(set(rows)) and set(rows) <= set(complete[table]), table
        rounds = {row[0] for row in rows}
        assert rows == [row for row in complete[table] if row[0] in rounds], table
    assert not trial_complete(tmp_path, _Config)
    assert not [p for p in tmp_path.rglob("*.tmp")]  # a killed write leaves no temporary behind
    _run(tmp_path, curve, selections, start=resume_at)
    assert _visible(tmp_path) == complete
    assert trial_complete(tmp_path, _Config)
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 2


def test_a_finished_trial_resumed_from_an_earlier_round_never_shows_a_row_twice(tmp_path):
    curve, selections = _rows()
    _run(tmp_path, curve, selections)
    with _writer(tmp_path) as writer:
        for r in range(2, ROUNDS + 1):
            writer.submit(_upto(curve, r), _upto(selections, r))
            writer.flush()
            assert _visible(tmp_path) == _expected(_upto(curve, r), _upto(selections, r))
            assert not trial_complete(tmp_path, _Config)
        writer.finish(curve, selections)
    assert _visible(tmp_path) == _expected(curve, selections)
    assert trial_complete(tmp_path, _Config)


def test_round_file_names_parse_back():
    path = round_file_path("s3://b/p?scheme=http", SELECTIONS, "d", "s", "a.round-x", 7)
    assert path == "s3://b/p/selections/dataset=d/strategy=s/a.round-x.round-00007.parquet?scheme=http"
    assert parse_file_name("a.round-x.round-00007.parquet") == ("a.round-x", 7)
    assert parse_file_name("a.round-x.parquet") == ("a.round-x", None)
    with pytest.raises(ValueError, match="round file name"):
        trial_file_path("out", SELECTIONS, "d", "s", "a.round-1")


def test_the_write_benchmark_runs_on_the_current_schema(tmp_path):
    from direct_ray.benchmarks import results_write

    result = results_write.run(tmp_path, rounds=2, labels=10, classes=3)
    assert (result["curve_rows"], result["selection_rows"], result["files_on_disk"]) == (3, 30, 2)
    assert read_table(tmp_path, SELECTIONS).num_rows == 30
