"""Read a sweep's results tables back, refusing anything that is not this project's Parquet.

A results directory (a local path or a URI such as ``s3://bucket/prefix``, read through
pyarrow filesystems) holds ``curves/`` and ``selections/``, each hive-partitioned as
``dataset=<d>/strategy=<s>/`` with a finished trial's ``<trial_id>.parquet`` or a running
trial's round files (see :mod:`direct_ray.results.layout`). Before any row is read, every
file's footer is checked: it must carry this project's schema version and table name in its
key-value metadata, a schema version this reader understands, and every contract column with
the contract's type. A violation is a :class:`ResultsError` that names the file and says what
to do, so a user never gets a half-right table or an Arrow traceback from a stray file.

That is the default. :func:`read_results` with ``skip_unreadable=True`` instead leaves out
each file that fails a check or cannot be read, and returns what it left out and why
(:class:`SkippedFile`), so that a report can be built from the rest and say what is missing.

Names starting with ``.`` or ``_`` are skipped, as ``pyarrow.dataset`` does by default:
the atomic writer's temporary files start with ``.``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from direct_ray.results.layout import filesystem, is_uri, parse_file_name
from direct_ray.results.schema import (
    CURVES,
    FILE_SCHEMAS,
    META_CLASSES,
    META_SCHEMA_VERSION,
    META_STUDY,
    META_TABLE,
    META_TRIAL,
    META_VERSIONS,
    PARTITION_KEYS,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
)

_IGNORED_PREFIXES = (".", "_")


class ResultsError(ValueError):
    """A results directory or file that cannot be read as this project's results; the message says why."""


class UnreadableFiles(ResultsError):
    """Files that cannot be read as results; the message has one line per file (then ``note``, if any)."""

    def __init__(self, skipped: "list[SkippedFile] | tuple[SkippedFile, ...]", note: str | None = None) -> None:
        super().__init__("\n".join([*(str(s) for s in skipped), *([note] if note else [])]))
        self.skipped = tuple(skipped)


class _BadFile(Exception):
    """One file fails a check; the message is the reason (without the file's name)."""


@dataclass(frozen=True)
class SkippedFile:
    """A file left out by a lenient read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Results:
    """What :func:`read_results` read: the rows, the metadata (as :func:`read_study_metadata`
    returns it, over the files read) and the files left out."""

    table: pa.Table
    metadata: dict
    skipped: tuple[SkippedFile, ...]


@dataclass(frozen=True)
class _File:
    path: str  # in the filesystem
    shown: str  # as the user gave the location (a local path or a URI)
    parts: tuple[str, ...]  # relative to the table directory
    schema: pa.Schema | None = None


class _Location:
    """A results directory on its filesystem, and how to show its paths to the user."""

    def __init__(self, results_dir: Path | str) -> None:
        self.given = str(results_dir)
        try:
            self.fs, self.root = filesystem(results_dir)
        except (pa.ArrowException, OSError, ValueError) as err:
            raise ResultsError(f"cannot open results location {self.given}: {err}") from None
        if is_uri(self.given):
            self.prefix = self.given.split("://", 1)[0] + "://"
        else:
            self.prefix = ""

    def show(self, path: str) -> str:
        return f"{self.prefix}{path}"

    def is_dir(self, path: str) -> bool:
        try:
            return self.fs.get_file_info(path).type == pafs.FileType.Directory
        except (pa.ArrowException, OSError) as err:
            raise ResultsError(f"cannot read {self.show(path)}: {err}") from None


def _table_dir(where: _Location, table: str) -> str:
    if table not in FILE_SCHEMAS:
        raise ResultsError(f"unknown results table {table!r}; expected one of {sorted(FILE_SCHEMAS)}")
    if not where.is_dir(where.root):
        raise ResultsError(f"results directory {where.given} does not exist")
    table_dir = f"{where.root.rstrip('/')}/{table}"
    if not where.is_dir(table_dir):
        raise ResultsError(
            f"{where.given} has no {table}/ directory; expected the output of `python -m direct_ray.sweep` "
            f"({'/'.join(f'{k}=...' for k in PARTITION_KEYS)}/<trial>.parquet under {table}/)"
        )
    return table_dir


def _data_files(where: _Location, table_dir: str) -> list[_File]:
    """Every file under ``table_dir`` except hidden or underscore-prefixed names (and their subtrees)."""
    try:
        infos = where.fs.get_file_info(pafs.FileSelector(table_dir, recursive=True))
    except (pa.ArrowException, OSError) as err:
        raise ResultsError(f"cannot list {where.show(table_dir)}: {err}") from None
    files = []
    for info in sorted(infos, key=lambda i: i.path):
        parts = tuple(info.path[len(table_dir):].strip("/").split("/"))
        if any(part.startswith(_IGNORED_PREFIXES) for part in parts) or info.type != pafs.FileType.File:
            continue
        files.append(_File(info.path, where.show(info.path), parts))
    if not files:
        raise ResultsError(f"{where.show(table_dir)} holds no result files; has the sweep written any trial yet?")
    return files


def _check_partition_dirs(file: _File, table_dir: str) -> None:
    parents = file.parts[:-1]
    expected = [f"{key}=" for key in PARTITION_KEYS]
    if len(parents) != len(expected) or any(not p.startswith(e) or p == e for p, e in zip(parents, expected)):
        layout = "/".join(f"{key}=<{key}>" for key in PARTITION_KEYS)
        raise _BadFile(f"not in a {layout}/ directory under {table_dir}; move or delete it")


def _check_file(where: _Location, file: _File, table: str, table_dir: str) -> pa.Schema:
    """The file's schema, after checking that it is a results file of ``table`` this reader understands."""
    _check_partition_dirs(file, where.show(table_dir))
    try:
        schema = pq.read_schema(file.path, filesystem=where.fs)
    except (pa.ArrowException, OSError) as err:
        raise _BadFile(f"not a readable Parquet file ({err})") from None
    meta = schema.metadata or {}
    raw_version = meta.get(META_SCHEMA_VERSION.encode())
    if raw_version is None:
        raise _BadFile(
            f"not a direct-ray results file (no {META_SCHEMA_VERSION!r} in its metadata); "
            f"move it out of {where.show(table_dir)}"
        )
    try:
        version = int(raw_version.decode())
    except ValueError:
        raise _BadFile(f"schema version {raw_version!r} is not an integer") from None
    if version > SCHEMA_VERSION:
        raise _BadFile(
            f"written with results schema version {version}, but this direct-ray reads versions "
            f"up to {SCHEMA_VERSION}; upgrade direct-ray (pip install -U direct-ray) to read it"
        )
    file_table = (meta.get(META_TABLE.encode()) or b"").decode()
    if file_table != table:
        raise _BadFile(f"a {file_table or 'unnamed'!r} table file inside {table}/; move it out")
    expected = FILE_SCHEMAS[table]
    required = [c for c in REQUIRED_COLUMNS[table] if c not in PARTITION_KEYS]
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise _BadFile(f"missing required column(s) {missing}")
    for name in required:
        want, got = expected.field(name).type, schema.field(name).type
        if got != want:
            raise _BadFile(f"column {name!r} has type {got}, expected {want}")
    return schema


def _checked_files(
    where: _Location, table: str, skipped: list[SkippedFile] | None
) -> tuple[str, list[_File]]:
    """The table's files whose footers pass the checks. A failing file raises :class:`ResultsError`,
    or, when ``skipped`` is a list, is appended to it and left out."""
    table_dir = _table_dir(where, table)
    checked = []
    for file in _data_files(where, table_dir):
        try:
            checked.append(_File(file.path, file.shown, file.parts, _check_file(where, file, table, table_dir)))
        except _BadFile as err:
            _fail(file, str(err), skipped)
    return table_dir, checked


def _fail(file: _File, reason: str, skipped: list[SkippedFile] | None) -> None:
    # One line per file: Arrow's messages may span lines or carry control characters.
    reason = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    if skipped is None:
        raise ResultsError(f"{file.shown}: {reason}")
    skipped.append(SkippedFile(file.shown, reason))


def _rows(where: _Location, table: str, table_dir: str, files: list[_File],
          skipped: list[SkippedFile] | None) -> tuple[pa.Table, list[_File]]:
    """The rows of ``files`` as one table (partition columns from the directory names) and the files read."""
    read: list[tuple[_File, pa.Table]] = []
    for file in files:
        try:
            read.append((file, pq.read_table(file.path, filesystem=where.fs).replace_schema_metadata(None)))
        except (pa.ArrowException, OSError) as err:
            _fail(file, f"not a readable Parquet file ({err})", skipped)
    if not read:
        raise UnreadableFiles(skipped or [], f"{where.show(table_dir)}: no file could be read")
    # Contract columns first, in contract order, then whatever else the files carry.
    try:
        unified = pa.unify_schemas([t.schema for _, t in read])
    except pa.ArrowException as err:
        raise ResultsError(f"{where.show(table_dir)}: the files' schemas conflict ({err})") from None
    names = [f.name for f in FILE_SCHEMAS[table] if f.name in unified.names]
    names += [n for n in unified.names if n not in names]
    schema = pa.schema([*(unified.field(n) for n in names), *(pa.field(k, pa.string()) for k in PARTITION_KEYS)])
    pieces = []
    for file, rows in read:
        columns = [rows[n] if n in rows.column_names else pa.nulls(rows.num_rows, unified.field(n).type)
                   for n in names]
        values = dict(part.split("=", 1) for part in file.parts[:-1])
        columns += [pa.array([values[k]] * rows.num_rows, pa.string()) for k in PARTITION_KEYS]
        pieces.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(pieces), [file for file, _ in read]


def _decode(value: bytes) -> Any:
    text = value.decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _metadata(files: list[_File]) -> dict:
    """The study, versions and per-trial configurations stored in the files' metadata (one vote per trial)."""
    per_trial: dict[str, dict[str, bytes]] = {}
    for file in files:
        meta = file.schema.metadata or {}
        trial_id, _ = parse_file_name(file.parts[-1])
        seen = per_trial.setdefault(trial_id, {})
        for key in (META_STUDY, META_VERSIONS, META_TRIAL, META_CLASSES):
            if key.encode() in meta and key not in seen:
                seen[key] = meta[key.encode()]
    values = {key: Counter(t[key] for t in per_trial.values() if key in t) for key in (META_STUDY, META_VERSIONS)}
    chosen = {key: _decode(c.most_common(1)[0][0]) if c else None for key, c in values.items()}
    return {
        "study": chosen[META_STUDY],
        "versions": chosen[META_VERSIONS],
        "trials": {trial_id: _decode(t[META_TRIAL]) for trial_id, t in per_trial.items() if META_TRIAL in t},
        "classes": {trial_id: _decode(t[META_CLASSES]) for trial_id, t in per_trial.items() if META_CLASSES in t},
        "n_files": len(files),
        "disagreements": {
            name: len(values[key])
            for name, key in (("study", META_STUDY), ("versions", META_VERSIONS))
            if len(values[key]) > 1
        },
    }


def read_results(results_dir: Path | str, table: str = CURVES, *, skip_unreadable: bool = False) -> Results:
    """The rows of ``table``, their metadata and, with ``skip_unreadable``, the files left out.

    By default any file this reader must not trust is a :class:`ResultsError`, as in
    :func:`read_table`. With ``skip_unreadable=True`` such a file is left out and listed in
    ``Results.skipped`` with its reason; a missing or empty directory, or one where no file
    can be read, is still an error.
    """
    where = _Location(results_dir)
    skipped: list[SkippedFile] | None = [] if skip_unreadable else None
    table_dir, checked = _checked_files(where, table, skipped)
    if not checked:
        raise UnreadableFiles(skipped or [], f"{where.show(table_dir)}: no file could be read")
    rows, read = _rows(where, table, table_dir, checked, skipped)
    return Results(rows, _metadata(read), tuple(skipped or ()))


def read_table(results_dir: Path | str, table: str = CURVES) -> pa.Table:
    """All trials' rows of ``table`` (``"curves"`` or ``"selections"``) as one Arrow table.

    ``results_dir`` is a local path or a URI (``s3://``, ``gs://``, ``file://``). The partition
    columns (``dataset``, ``strategy``) come from the directory names, as plain strings.
    Columns added by a later writer of the same schema version are kept; a column that only
    some files have is null in the others. Raises :class:`ResultsError` for a missing or
    empty directory and for any file this reader must not trust (see module doc).
    """
    return read_results(results_dir, table).table


def read_curves(results_dir: Path | str):
    """The ``curves`` table as a pandas DataFrame (needs pandas; :func:`read_table` does not)."""
    try:
        import pandas  # noqa: F401  (only to give a clear error before Arrow's own)
    except ImportError:
        raise ResultsError("read_curves needs pandas (pip install pandas); read_table returns Arrow") from None
    return read_table(results_dir, CURVES).to_pandas()


def read_study_metadata(results_dir: Path | str, table: str = CURVES) -> dict:
    """The study, versions and per-trial configurations stored in the files' metadata.

    Returns ``{"study": ..., "versions": ..., "trials": {trial_id: config}, "classes":
    {trial_id: study class of each original class}, "n_files": N, "disagreements": {key:
    number of distinct values}}``. ``study`` and ``versions`` are the
    values most trials carry (``None`` if none carries one); ``disagreements`` lists the keys
    whose value differs between trials (e.g. a study resumed with another package version),
    so that a report can say so instead of hiding it. Reads only the files' footers.
    """
    _, checked = _checked_files(_Location(results_dir), table, None)
    return _metadata(checked)


__all__ = ["Results", "ResultsError", "SkippedFile", "UnreadableFiles", "read_curves", "read_results", "read_study_metadata", "read_table"]
