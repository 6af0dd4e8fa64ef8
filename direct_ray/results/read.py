"""Read a sweep's results tables back, refusing anything that is not this project's Parquet.

A results directory holds ``curves/`` and ``selections/``, each hive-partitioned as
``dataset=<d>/strategy=<s>/<trial_id>.parquet`` (see :mod:`direct_ray.results.schema`).
Before any row is read, every file's footer is checked: it must carry this project's schema
version and table name in its key-value metadata, a schema version this reader understands,
and every contract column with the contract's type. A violation is a :class:`ResultsError`
that names the file and says what to do, so a user never gets a half-right table or an
Arrow traceback from a stray file.

Names starting with ``.`` or ``_`` are skipped, as ``pyarrow.dataset`` does by default:
the atomic writer's temporary files start with ``.``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

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
_PARTITIONING = ds.partitioning(pa.schema([(key, pa.string()) for key in PARTITION_KEYS]), flavor="hive")


class ResultsError(ValueError):
    """A results directory or file that cannot be read as this project's results; the message says why."""


def _table_dir(results_dir: Path | str, table: str) -> Path:
    if table not in FILE_SCHEMAS:
        raise ResultsError(f"unknown results table {table!r}; expected one of {sorted(FILE_SCHEMAS)}")
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsError(f"results directory {root} does not exist")
    table_dir = root / table
    if not table_dir.is_dir():
        raise ResultsError(
            f"{root} has no {table}/ directory; expected the output of `python -m direct_ray.sweep` "
            f"({'/'.join(f'{k}=...' for k in PARTITION_KEYS)}/<trial>.parquet under {table}/)"
        )
    return table_dir


def _data_files(table_dir: Path) -> list[Path]:
    """Every file under ``table_dir`` except hidden or underscore-prefixed names (and their subtrees)."""
    files = []
    for path in sorted(table_dir.rglob("*")):
        parts = path.relative_to(table_dir).parts
        if any(part.startswith(_IGNORED_PREFIXES) for part in parts) or not path.is_file():
            continue
        files.append(path)
    if not files:
        raise ResultsError(f"{table_dir} holds no result files; has the sweep written any trial yet?")
    return files


def _check_partition_dirs(path: Path, table_dir: Path) -> None:
    parents = path.relative_to(table_dir).parts[:-1]
    expected = [f"{key}=" for key in PARTITION_KEYS]
    if len(parents) != len(expected) or any(not p.startswith(e) or p == e for p, e in zip(parents, expected)):
        layout = "/".join(f"{key}=<{key}>" for key in PARTITION_KEYS)
        raise ResultsError(f"{path}: not in a {layout}/ directory under {table_dir}; move or delete it")


def _check_file(path: Path, table: str, table_dir: Path) -> pa.Schema:
    """The file's schema, after checking that it is a results file of ``table`` this reader understands."""
    _check_partition_dirs(path, table_dir)
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        raise ResultsError(f"{path}: not a readable Parquet file ({err})") from None
    meta = schema.metadata or {}
    raw_version = meta.get(META_SCHEMA_VERSION.encode())
    if raw_version is None:
        raise ResultsError(
            f"{path}: not a direct-ray results file (no {META_SCHEMA_VERSION!r} in its metadata); "
            f"move it out of {table_dir}"
        )
    try:
        version = int(raw_version.decode())
    except ValueError:
        raise ResultsError(f"{path}: schema version {raw_version!r} is not an integer") from None
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: written with results schema version {version}, but this direct-ray reads versions "
            f"up to {SCHEMA_VERSION}; upgrade direct-ray (pip install -U direct-ray) to read it"
        )
    file_table = (meta.get(META_TABLE.encode()) or b"").decode()
    if file_table != table:
        raise ResultsError(f"{path}: a {file_table or 'unnamed'!r} table file inside {table}/; move it out")
    expected = FILE_SCHEMAS[table]
    required = [c for c in REQUIRED_COLUMNS[table] if c not in PARTITION_KEYS]
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise ResultsError(f"{path}: missing required column(s) {missing}")
    for name in required:
        want, got = expected.field(name).type, schema.field(name).type
        if got != want:
            raise ResultsError(f"{path}: column {name!r} has type {got}, expected {want}")
    return schema


def _checked_files(results_dir: Path | str, table: str) -> tuple[Path, list[tuple[Path, pa.Schema]]]:
    table_dir = _table_dir(results_dir, table)
    return table_dir, [(path, _check_file(path, table, table_dir)) for path in _data_files(table_dir)]


def read_table(results_dir: Path | str, table: str = CURVES) -> pa.Table:
    """All trials' rows of ``table`` (``"curves"`` or ``"selections"``) as one Arrow table.

    The partition columns (``dataset``, ``strategy``) come from the directory names, as plain
    strings. Columns added by a later writer of the same schema version are kept; a column
    that only some files have is null in the others. Raises :class:`ResultsError` for a
    missing or empty directory and for any file this reader must not trust (see module doc).
    """
    table_dir, checked = _checked_files(results_dir, table)
    # Contract columns first, in contract order, then whatever else the files carry.
    try:
        unified = pa.unify_schemas([schema.remove_metadata() for _, schema in checked])
    except pa.ArrowException as err:
        raise ResultsError(f"{table_dir}: the files' schemas conflict ({err})") from None
    names = [f.name for f in FILE_SCHEMAS[table] if f.name in unified.names]
    names += [n for n in unified.names if n not in names]
    file_schema = pa.schema([unified.field(n) for n in names])
    dataset = ds.dataset(
        [str(path) for path, _ in checked],
        schema=pa.schema([*file_schema, *(pa.field(k, pa.string()) for k in PARTITION_KEYS)]),
        format="parquet",
        partitioning=_PARTITIONING,
        partition_base_dir=str(table_dir),
    )
    return dataset.to_table()


def read_curves(results_dir: Path | str):
    """The ``curves`` table as a pandas DataFrame (needs pandas; :func:`read_table` does not)."""
    try:
        import pandas  # noqa: F401  (only to give a clear error before Arrow's own)
    except ImportError:
        raise ResultsError("read_curves needs pandas (pip install pandas); read_table returns Arrow") from None
    return read_table(results_dir, CURVES).to_pandas()


def _decode(value: bytes) -> Any:
    text = value.decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_study_metadata(results_dir: Path | str, table: str = CURVES) -> dict:
    """The study, versions and per-trial configurations stored in the files' metadata.

    Returns ``{"study": ..., "versions": ..., "trials": {trial_id: config}, "classes":
    {trial_id: study class of each original class}, "n_files": N, "disagreements": {key:
    number of distinct values}}``. ``study`` and ``versions`` are the
    values most files carry (``None`` if none carries one); ``disagreements`` lists the keys
    whose value differs between files (e.g. a study resumed with another package version),
    so that a report can say so instead of hiding it.
    """
    _, checked = _checked_files(results_dir, table)
    values: dict[str, Counter] = {META_STUDY: Counter(), META_VERSIONS: Counter()}
    trials: dict[str, Any] = {}
    classes: dict[str, Any] = {}
    for path, schema in checked:
        meta = schema.metadata or {}
        for key, counter in values.items():
            if key.encode() in meta:
                counter[meta[key.encode()]] += 1
        if META_TRIAL.encode() in meta:
            trials[path.stem] = _decode(meta[META_TRIAL.encode()])
        if META_CLASSES.encode() in meta:
            classes[path.stem] = _decode(meta[META_CLASSES.encode()])
    chosen = {key: _decode(c.most_common(1)[0][0]) if c else None for key, c in values.items()}
    return {
        "study": chosen[META_STUDY],
        "versions": chosen[META_VERSIONS],
        "trials": trials,
        "classes": classes,
        "n_files": len(checked),
        "disagreements": {
            name: len(values[key])
            for name, key in (("study", META_STUDY), ("versions", META_VERSIONS))
            if len(values[key]) > 1
        },
    }


__all__ = ["ResultsError", "read_curves", "read_study_metadata", "read_table"]
