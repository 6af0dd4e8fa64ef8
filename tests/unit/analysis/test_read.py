"""The validated results reader: round trip through the writer, and a clear error for bad input."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from direct_ray.results.read import (
    ResultsError,
    UnreadableFiles,
    read_curves,
    read_results,
    read_study_metadata,
    read_table,
)
from direct_ray.results.schema import (
    CURVES,
    FILE_SCHEMAS,
    META_SCHEMA_VERSION,
    META_TABLE,
    META_VERSIONS,
    SCHEMA_VERSION,
    SELECTIONS,
)
from direct_ray.results.write import write_trial_table
from tests.unit.analysis.synthetic import STUDY, VERSIONS, write_trial

N = [10, 20, 30]
ACC = [0.5, 0.6, 0.7]


def _two_trials(root):
    a = write_trial(root, strategy="direct", seed=0, n_labeled=N, balanced_accuracy=ACC)
    b = write_trial(root, strategy="random", seed=1, n_labeled=N, balanced_accuracy=ACC, dataset="other-k3",
                    num_classes=3)
    return a, b


def _rewrite(path, table: pa.Table, metadata: dict) -> None:
    pq.write_table(table.replace_schema_metadata({k.encode(): v.encode() for k, v in metadata.items()}), path)


def test_round_trip_with_partition_columns_as_strings(tmp_path):
    _two_trials(tmp_path)
    table = read_table(tmp_path)
    assert table.num_rows == 6
    assert table.schema.field("dataset").type == pa.string()
    assert table.schema.field("strategy").type == pa.string()
    assert sorted(set(table.column("dataset").to_pylist())) == ["other-k3", "toy-k2"]
    assert sorted(set(table.column("strategy").to_pylist())) == ["direct", "random"]
    # contract columns come first, in contract order
    assert table.column_names[:3] == ["sweep_id", "trial_id", "num_classes"]
    assert table.column("balanced_accuracy").to_pylist()[:3] == ACC


def test_temporary_and_underscore_files_are_skipped(tmp_path):
    path, _ = _two_trials(tmp_path)
    (path.parent / ".direct_s0.abc.tmp").write_bytes(b"half-written")
    (path.parent.parent.parent / "_SUCCESS").write_text("")
    assert read_table(tmp_path).num_rows == 6


def test_missing_results_dir(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        read_table(tmp_path / "nope")


def test_results_dir_without_table(tmp_path):
    with pytest.raises(ResultsError, match="no curves/ directory"):
        read_table(tmp_path)


def test_empty_table_dir(tmp_path):
    (tmp_path / CURVES / "dataset=x" / "strategy=y").mkdir(parents=True)
    with pytest.raises(ResultsError, match="holds no result files"):
        read_table(tmp_path)


def test_unknown_table_name(tmp_path):
    with pytest.raises(ResultsError, match="unknown results table"):
        read_table(tmp_path, "scores")


def test_foreign_parquet_names_the_file(tmp_path):
    _two_trials(tmp_path)
    foreign = tmp_path / CURVES / "dataset=toy-k2" / "strategy=direct" / "foreign.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    with pytest.raises(ResultsError, match="foreign.parquet: not a direct-ray results file"):
        read_table(tmp_path)


def test_non_parquet_file_names_the_file(tmp_path):
    _two_trials(tmp_path)
    (tmp_path / CURVES / "dataset=toy-k2" / "notes.txt").write_text("hello")
    with pytest.raises(ResultsError, match="notes.txt"):
        read_table(tmp_path)


def test_file_outside_partition_directories(tmp_path):
    path, _ = _two_trials(tmp_path)
    path.rename(tmp_path / CURVES / "loose.parquet")
    with pytest.raises(ResultsError, match="loose.parquet: not in a dataset=<dataset>/strategy=<strategy>/"):
        read_table(tmp_path)


def test_newer_schema_version_asks_to_upgrade(tmp_path):
    path, _ = _two_trials(tmp_path)
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    _rewrite(path, table, {**meta, META_SCHEMA_VERSION: str(SCHEMA_VERSION + 1)})
    with pytest.raises(ResultsError, match=rf"{path.name}: written with results schema version {SCHEMA_VERSION + 1}"
                                           r".*upgrade direct-ray"):
        read_table(tmp_path)


def test_wrong_table_in_directory(tmp_path):
    _two_trials(tmp_path)
    write_trial_table(
        tmp_path, SELECTIONS,
        [{"trial_id": "t", "round": 0, "order": 0, "pool_index": 3, "true_label": 1, "observed_label": 1,
          "annotator": 0, "answered_at": 0.0}],
        dataset="toy-k2", strategy="direct", trial_id="sel",
    )
    (tmp_path / SELECTIONS / "dataset=toy-k2" / "strategy=direct" / "sel.parquet").rename(
        tmp_path / CURVES / "dataset=toy-k2" / "strategy=direct" / "sel.parquet")
    with pytest.raises(ResultsError, match="sel.parquet: a 'selections' table file inside curves/"):
        read_table(tmp_path)


def test_missing_contract_columns_are_named(tmp_path):
    path, _ = _two_trials(tmp_path)
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    _rewrite(path, table.drop_columns(["balanced_accuracy", "n_labeled"]), meta)
    with pytest.raises(ResultsError, match=r"missing required column\(s\) \['n_labeled', 'balanced_accuracy'\]"):
        read_table(tmp_path)


def test_wrong_column_type_is_named(tmp_path):
    path, _ = _two_trials(tmp_path)
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    i = table.schema.get_field_index("seed")
    _rewrite(path, table.set_column(i, "seed", pa.array(["0"] * table.num_rows)), meta)
    with pytest.raises(ResultsError, match="column 'seed' has type string, expected int64"):
        read_table(tmp_path)


def test_file_with_contract_columns_only_reads_with_nulls(tmp_path):
    """An outside writer may omit the additions; the column is null for its rows."""
    full, _ = _two_trials(tmp_path)
    table = pq.read_table(full)
    contract = [f.name for f in FILE_SCHEMAS[CURVES] if f.name not in ("n_minority_labels", "effective_b_parallel",
                                                                          "per_class_accuracy", "round_seconds",
                                                                          "model", "noise_config", "device")]
    slim_path = full.parent / "slim.parquet"
    _rewrite(slim_path, table.select(contract).set_column(1, "trial_id", pa.array(["slim"] * 3)),
             {META_SCHEMA_VERSION: str(SCHEMA_VERSION), META_TABLE: CURVES})
    out = read_table(tmp_path)
    assert out.num_rows == 9
    rows = out.filter(pa.compute.equal(out.column("trial_id"), "slim"))
    assert rows.column("n_minority_labels").null_count == 3


def test_study_metadata(tmp_path):
    a, b = _two_trials(tmp_path)
    meta = read_study_metadata(tmp_path)
    assert meta["study"] == STUDY
    assert meta["versions"] == VERSIONS
    assert set(meta["trials"]) == {a.stem, b.stem}
    assert meta["trials"][a.stem]["strategy"] == "direct"
    assert meta["n_files"] == 2
    assert meta["disagreements"] == {}


def test_study_metadata_reports_disagreement(tmp_path):
    a, _ = _two_trials(tmp_path)
    table = pq.read_table(a)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    _rewrite(a, table, {**meta, META_VERSIONS: '{"direct-ray": "0.2.0"}'})
    out = read_study_metadata(tmp_path)
    assert out["disagreements"] == {"versions": 2}


def test_read_curves_pandas(tmp_path):
    _two_trials(tmp_path)
    frame = read_curves(tmp_path)
    assert len(frame) == 6
    assert set(frame["strategy"]) == {"direct", "random"}


def test_truncated_file_is_an_error_by_default_and_left_out_on_request(tmp_path):
    a, b = _two_trials(tmp_path)
    a.write_bytes(a.read_bytes()[:100])
    with pytest.raises(ResultsError, match=rf"{a.name}: not a readable Parquet file"):
        read_table(tmp_path)
    with pytest.raises(ResultsError, match=rf"{a.name}: not a readable Parquet file"):
        read_study_metadata(tmp_path)
    results = read_results(tmp_path, skip_unreadable=True)
    assert results.table.num_rows == 3 and set(results.table["strategy"].to_pylist()) == {"random"}
    assert [s.path for s in results.skipped] == [str(a)]
    assert results.skipped[0].reason.startswith("not a readable Parquet file (")
    assert set(results.metadata["trials"]) == {b.stem}


def test_lenient_read_with_nothing_readable_names_every_file(tmp_path):
    a, b = _two_trials(tmp_path)
    for path in (a, b):
        path.write_bytes(b"not parquet")
    with pytest.raises(UnreadableFiles) as err:
        read_results(tmp_path, skip_unreadable=True)
    lines = str(err.value).splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == sorted([str(a), str(b)])
    assert lines[2].endswith("no file could be read")


def test_file_uri_reads_like_a_path(tmp_path):
    a, _ = _two_trials(tmp_path)
    uri = f"file://{tmp_path}"
    assert read_table(uri).equals(read_table(tmp_path))
    assert read_study_metadata(uri)["trials"] == read_study_metadata(tmp_path)["trials"]
    a.write_bytes(b"garbage")
    assert read_results(uri, skip_unreadable=True).skipped[0].path == f"file://{a}"
