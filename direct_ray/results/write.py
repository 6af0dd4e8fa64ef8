"""Write a trial's results tables as Parquet files, atomically, with versioned metadata.

A running trial writes one file per round and table (``<trial_id>.round-<NNNNN>.parquet``),
so a round costs only its own rows; a finished trial has one file per table
(``<trial_id>.parquet``). See :mod:`direct_ray.results.layout` for the paths.

Every file appears whole: it is written under a temporary name that starts with ``.`` and
ends in ``.tmp`` (skipped by pandas, ``pyarrow.dataset`` and DuckDB's ``*.parquet`` glob
alike) and then moved into place. The order of the steps keeps every row visible at most
once at every moment, even if the writer is killed between two steps:

* a round's file has a fixed name, so a trial resumed from an earlier round replaces it;
* a resumed trial first deletes a finished trial's file that is already there (an earlier
  run's), then writes its round files;
* finishing writes the single file under its temporary name, deletes the round files
  newest first, then moves the single file into place. In between, the visible rows are
  the trial's first rounds, like a trial that has not run to its end; the trial is not
  complete on disk (:func:`~direct_ray.results.layout.trial_complete`), so a resumed sweep
  resumes it, and resuming writes the single file again.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import groupby
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from direct_ray.results.layout import filesystem, parse_file_name, partition_dir, round_file_path, trial_file_path
from direct_ray.results.schema import CURVES, FILE_SCHEMAS, META_SCHEMA_VERSION, META_TABLE, SCHEMA_VERSION, SELECTIONS

TABLES = (CURVES, SELECTIONS)


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


def _with_metadata(table: str, rows: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any] | None) -> pa.Table:
    arrow_table = to_table(table, rows)
    meta = {META_SCHEMA_VERSION: str(SCHEMA_VERSION), META_TABLE: table}
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return arrow_table.replace_schema_metadata(meta)


# The two steps that change what readers see. Tests replace them to stop a writer between steps.
def _move(fs: pafs.FileSystem, source: str, target: str) -> None:
    fs.move(source, target)


def _delete(fs: pafs.FileSystem, path: str) -> None:
    fs.delete_file(path)


def _stage(fs: pafs.FileSystem, path: str, arrow_table: pa.Table) -> str:
    """Write ``arrow_table`` beside ``path`` under a temporary name that readers skip; returns that name."""
    directory, name = path.rsplit("/", 1)
    fs.create_dir(directory, recursive=True)
    tmp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(arrow_table, tmp, filesystem=fs)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise
    return tmp


def _write_atomically(fs: pafs.FileSystem, path: str, arrow_table: pa.Table) -> None:
    # A rename on a local or shared filesystem; on object stores the move is a copy, and
    # objects appear whole anyway.
    tmp = _stage(fs, path, arrow_table)
    try:
        _move(fs, tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise


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
    """Write (or replace) a finished trial's file of ``table`` atomically and return its path.

    ``root`` is a local (or shared, mounted) directory or a URI such as ``s3://bucket/prefix``.
    ``metadata`` values are stored as JSON under their keys, next to the schema version.
    """
    fs, path = filesystem(trial_file_path(root, table, dataset, strategy, trial_id))
    _write_atomically(fs, path, _with_metadata(table, rows, metadata))
    return path


class TrialWriter:
    """Writes one trial's files as it runs, in a background thread: each round's new rows, then one file.

    :meth:`submit` after every round hands over the rows so far; only the rows not handed
    over before are written, one file per round and table, so a round's write costs its own
    rows. :meth:`finish` replaces the round files by one file per table. Writes happen one
    at a time and in order; :meth:`submit` first waits for the previous write (re-raising
    its error), and :meth:`close` (or leaving the ``with`` block) waits for the last one.
    With ``output=None`` nothing is written.
    """

    def __init__(self, output: Path | str | None, *, dataset: str, strategy: str, trial_id: str, metadata: Mapping) -> None:
        self.output = output
        self.dataset, self.strategy, self.trial_id, self.metadata = dataset, strategy, trial_id, metadata
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet") if output is not None else None
        # One filesystem for all of the trial's files; paths below are inside it.
        self._fs, self._root = filesystem(output) if output is not None else (None, "")
        if output is not None:
            self._trial_file(CURVES)  # refuse names that cannot be paths before the trial starts
        self._pending: Future | None = None
        self._handed = {table: 0 for table in TABLES}  # rows handed over so far, per table
        self._last_round = -1
        self._extra: dict = {}  # metadata keys the latest submit added

    def _trial_file(self, table: str) -> str:
        return trial_file_path(self._root, table, self.dataset, self.strategy, self.trial_id)

    def submit(
        self, curve: Sequence[Mapping[str, Any]], selections: Sequence[Mapping[str, Any]], metadata: Mapping | None = None
    ) -> None:
        """Write the rows added since the last call (all of them on the first), one file per round.

        The rows of a round must all arrive in one call, after those of earlier rounds. The
        first call of a resumed trial hands over every round again: its files are rewritten,
        and a finished trial's file left by an earlier run is deleted first. ``metadata``
        adds keys to the files' metadata (e.g. what only the training task knows); the
        finished files carry the last keys given.
        """
        if self._pool is None:
            return
        self._wait()
        self._extra = dict(metadata or {})
        new = {CURVES: list(curve[self._handed[CURVES]:]), SELECTIONS: list(selections[self._handed[SELECTIONS]:])}
        rounds = [row["round"] for rows in new.values() for row in rows]
        if not rounds:
            return
        for table, rows in new.items():
            if any(a["round"] > b["round"] for a, b in zip(rows, rows[1:])):
                raise ValueError(f"{table} rows must come in round order")
        if min(rounds) <= self._last_round:
            raise ValueError(f"rows of round {min(rounds)} arrived after round {self._last_round} was written")
        first = self._last_round < 0
        self._handed = {CURVES: len(curve), SELECTIONS: len(selections)}
        self._last_round = max(rounds)
        self._pending = self._pool.submit(self._write_rounds, new, first, {**self.metadata, **self._extra})

    def _write_rounds(self, new: Mapping[str, list], first: bool, metadata: Mapping) -> None:
        fs = self._fs
        if first:
            for table in TABLES:
                path = self._trial_file(table)
                if fs.get_file_info(path).type == pafs.FileType.File:
                    _delete(fs, path)
        for table, rows in new.items():
            for round_, group in groupby(rows, key=lambda row: row["round"]):
                path = round_file_path(self._root, table, self.dataset, self.strategy, self.trial_id, round_)
                _write_atomically(fs, path, _with_metadata(table, list(group), metadata))

    def finish(
        self, curve: Sequence[Mapping[str, Any]], selections: Sequence[Mapping[str, Any]], metadata: Mapping | None = None
    ) -> None:
        """Replace the trial's round files by one file per table holding ``curve`` and ``selections``.

        Called once the trial has run every round, with all of its rows; waits until done.
        ``metadata`` is as for :meth:`submit` (default: the keys the last submit gave). The
        curves file goes last: once it is in place, the trial is complete on disk.
        """
        if self._pool is None:
            return
        self._wait()
        if metadata is not None:
            self._extra = dict(metadata)
        merged = {**self.metadata, **self._extra}
        fs = self._fs
        for table, rows in ((SELECTIONS, selections), (CURVES, curve)):
            path = self._trial_file(table)
            tmp = _stage(fs, path, _with_metadata(table, list(rows), merged))
            try:
                for old in self._round_files(table):
                    _delete(fs, old)
                _move(fs, tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    fs.delete_file(tmp)
                raise
            for stale in self._temporaries(table):
                with contextlib.suppress(OSError):
                    fs.delete_file(stale)

    def _listing(self, table: str) -> list[pafs.FileInfo]:
        directory = partition_dir(self._root, table, self.dataset, self.strategy)
        return self._fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))

    def _round_files(self, table: str) -> list[str]:
        """This trial's round files of ``table``, newest round first."""
        found = []
        for info in self._listing(table):
            trial_id, round_ = parse_file_name(info.base_name)
            if info.type == pafs.FileType.File and trial_id == self.trial_id and round_ is not None:
                found.append((round_, info.path))
        return [path for _, path in sorted(found, reverse=True)]

    def _temporaries(self, table: str) -> list[str]:
        """This trial's temporary files of ``table`` left by a writer that was killed mid-write."""
        found = []
        for info in self._listing(table):
            name = info.base_name
            if info.type != pafs.FileType.File or not (name.startswith(".") and name.endswith(".tmp")):
                continue
            target = name[1:].rsplit(".", 2)[0]  # ".<target>.<hex>.tmp" -> "<target>"
            if parse_file_name(target)[0] == self.trial_id:
                found.append(info.path)
        return found

    def flush(self) -> None:
        """Wait for the pending write, if any; re-raises its error."""
        self._wait()

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
