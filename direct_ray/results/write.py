"""Write a trial's results tables as Parquet files, atomically, with versioned metadata."""

from __future__ import annotations

import contextlib
import json
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from direct_ray.results.layout import filesystem, trial_file_path
from direct_ray.results.schema import CURVES, FILE_SCHEMAS, META_SCHEMA_VERSION, META_TABLE, SCHEMA_VERSION, SELECTIONS

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


class TrialWriter:
    """Rewrites one trial's two files after every round, in a background thread.

    The next round trains while the files are written. Writes happen one at a time and in
    order; :meth:`submit` first waits for the previous write (re-raising its error), and
    :meth:`close` (or leaving the ``with`` block) waits for the last one. With
    ``output=None`` nothing is written.
    """

    def __init__(self, output: Path | str | None, *, dataset: str, strategy: str, trial_id: str, metadata: Mapping) -> None:
        self.output = output
        self.where = {"dataset": dataset, "strategy": strategy, "trial_id": trial_id, "metadata": metadata}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet") if output is not None else None
        self._pending: Future | None = None

    def submit(
        self, curve: Sequence[Mapping[str, Any]], selections: Sequence[Mapping[str, Any]], metadata: Mapping | None = None
    ) -> None:
        """Rewrite both files with these rows (copied now: the caller may keep appending).

        ``metadata`` adds keys to the files' metadata (e.g. what only the training task knows).
        """
        if self._pool is None:
            return
        self._wait()
        tables = [(CURVES, list(curve)), (SELECTIONS, list(selections))]
        where = {**self.where, "metadata": {**self.where["metadata"], **(metadata or {})}}
        self._pending = self._pool.submit(
            lambda: [write_trial_table(self.output, table, rows, **where) for table, rows in tables]
        )

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Wait for the last write and stop the thread; re-raises a failed write."""
        if self._pool is not None:
            try:
                self._wait()
            finally:
                self._pool.shutdown(wait=True)

    def __enter__(self) -> "TrialWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["TrialWriter", "to_table", "write_trial_table"]
