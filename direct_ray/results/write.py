"""Write one trial's results table as one Parquet file, atomically, with versioned metadata."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from direct_ray.results.schema import (
    FILE_SCHEMAS,
    META_SCHEMA_VERSION,
    META_TABLE,
    PARTITION_KEYS,
    SCHEMA_VERSION,
)

_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")


def check_partition_value(key: str, value: str) -> str:
    """Partition values become directory names: allow only ``[A-Za-z0-9._+-]``."""
    if not value or not _SAFE.match(value) or value in (".", ".."):
        raise ValueError(f"{key} {value!r} cannot be a partition directory name; use letters, digits, . _ + -")
    return value


def trial_file_path(root: Path | str, table: str, dataset: str, strategy: str, trial_id: str) -> Path:
    """``root/<table>/dataset=<dataset>/strategy=<strategy>/<trial_id>.parquet``."""
    if table not in FILE_SCHEMAS:
        raise ValueError(f"unknown results table {table!r}; expected one of {sorted(FILE_SCHEMAS)}")
    check_partition_value("dataset", dataset)
    check_partition_value("strategy", strategy)
    check_partition_value("trial_id", trial_id)
    return Path(root) / table / f"dataset={dataset}" / f"strategy={strategy}" / f"{trial_id}.parquet"


def to_table(table: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts) as a table with exactly the file schema of ``table``; a missing column is an error."""
    schema = FILE_SCHEMAS[table]
    columns = {}
    for field in schema:
        missing = [i for i, row in enumerate(rows) if field.name not in row]
        if missing:
            raise ValueError(f"{table} row {missing[0]} lacks column {field.name!r}")
        columns[field.name] = pa.array([row[field.name] for row in rows], type=field.type)
    return pa.table(columns, schema=schema)


def write_trial_table(
    root: Path | str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    dataset: str,
    strategy: str,
    trial_id: str,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write (or replace) one trial's file of ``table`` atomically and return its path.

    The file is written to a temporary name in the same directory and moved into place with
    ``os.replace``, so a reader never sees a half-written file, even if the writer is killed.
    ``metadata`` values are stored as JSON under their keys, next to the schema version.
    """
    path = trial_file_path(root, table, dataset, strategy, trial_id)
    arrow_table = to_table(table, rows)
    meta = {META_SCHEMA_VERSION: str(SCHEMA_VERSION), META_TABLE: table}
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    arrow_table = arrow_table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{trial_id}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(arrow_table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["PARTITION_KEYS", "check_partition_value", "to_table", "trial_file_path", "write_trial_table"]
