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
