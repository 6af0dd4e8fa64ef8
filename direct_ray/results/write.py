"""Write one trial's results table as one Parquet file, atomically, with versioned metadata."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
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


def is_uri(root: Path | str) -> bool:
    """True for ``scheme://...`` results roots (S3, GCS, ...), False for local or mounted paths."""
    return "://" in str(root)


def trial_file_path(root: Path | str, table: str, dataset: str, strategy: str, trial_id: str) -> str:
    """``root/<table>/dataset=<dataset>/strategy=<strategy>/<trial_id>.parquet`` (a path or a URI)."""
    if table not in FILE_SCHEMAS:
        raise ValueError(f"unknown results table {table!r}; expected one of {sorted(FILE_SCHEMAS)}")
    check_partition_value("dataset", dataset)
    check_partition_value("strategy", strategy)
    check_partition_value("trial_id", trial_id)
    return f"{str(root).rstrip('/')}/{table}/dataset={dataset}/strategy={strategy}/{trial_id}.parquet"


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path of a local path or a URI (s3://, gs://, file://)."""
    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).expanduser().absolute())


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
) -> str:
    """Write (or replace) one trial's file of ``table`` atomically and return its path.

    ``root`` is a local (or shared, mounted) directory or a URI such as ``s3://bucket/prefix``.
    The file is written to a temporary name (starting with ".", which readers skip) and moved
    into place, so a reader never sees a half-written file, even if the writer is killed.
    ``metadata`` values are stored as JSON under their keys, next to the schema version.
    """
    fs, path = filesystem(trial_file_path(root, table, dataset, strategy, trial_id))
    arrow_table = to_table(table, rows)
    meta = {META_SCHEMA_VERSION: str(SCHEMA_VERSION), META_TABLE: table}
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    arrow_table = arrow_table.replace_schema_metadata(meta)
    directory, name = path.rsplit("/", 1)
    fs.create_dir(directory, recursive=True)
    # Write beside the target, then move into place: a rename on a local or shared
    # filesystem; on object stores the move is a copy, and objects appear whole anyway.
    tmp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(arrow_table, tmp, filesystem=fs)
        fs.move(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise
    return path


__all__ = ["PARTITION_KEYS", "check_partition_value", "filesystem", "is_uri", "to_table", "trial_file_path", "write_trial_table"]
