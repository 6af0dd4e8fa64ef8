"""Where a sweep's results live under its output (a local path or a URI) and what is there.

::

    OUTPUT/
      sweep.json                                               the sweep id and the study as run
      curves/dataset=<d>/strategy=<s>/<trial_id>.parquet       one row per trial x round
      selections/dataset=<d>/strategy=<s>/<trial_id>.parquet   one row per label bought
      tune/                                                    Ray Tune's experiment state

That is a finished trial. While a trial runs, each of its rounds is a file of its own beside
where the trial's file will be, ``<trial_id>.round-<NNNNN>.parquet`` (:func:`round_file_path`),
so that a round costs only its own rows; when the trial finishes, its round files are
replaced by the single ``<trial_id>.parquet`` (:mod:`direct_ray.results.write`). Either way
every file is a plain Parquet file in its partition directory, so readers that take the
directory (pandas, ``pyarrow.dataset``, DuckDB's ``**/*.parquet``) see every row once.

Every path goes through :func:`filesystem`, so the same code reads and writes a local
directory, a shared mount or an object store (``s3://``, ``gs://``). A URI may carry
pyarrow's options as a query, e.g. ``s3://bucket/prefix?endpoint_override=host:9000&scheme=http``
for an S3-compatible server; :func:`join` keeps the query at the end.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from direct_ray.results.schema import CURVES, FILE_SCHEMAS

SWEEP_FILE = "sweep.json"
TUNE_DIR = "tune"

_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")
_ROUND_FILE = re.compile(r"^(?P<trial>.+)\.round-(?P<round>[0-9]+)\.parquet$")


class SweepRecordError(ValueError):
    """The output holds no sweep where one was expected, or one where none was."""


class OutputError(ValueError):
    """The output cannot hold a sweep's results (a file, read-only, full, unreachable); the message says why."""


def check_output(root: Path | str) -> None:
    """Make sure ``root`` is a directory (or prefix) this process can write, creating it if needed.

    Writes and deletes one small file, so a read-only, full or unreachable output is an
    :class:`OutputError` with one line, before anything else is written.
    """
    fs, path = filesystem(root)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            raise OutputError(f"--output {root} is a file; give a directory (it is created if missing)")
        fs.create_dir(path, recursive=True)
        probe = f"{path}/.write-check-{os.getpid()}"
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except OutputError:
        raise
    except (OSError, pa.ArrowException) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise OutputError(f"--output {root}: cannot write there ({reason}); choose another --output") from None


def is_uri(root: Path | str) -> bool:
    """True for ``scheme://...`` results roots (S3, GCS, ...), False for local or mounted paths."""
    return "://" in str(root)


def join(root: Path | str, *names: str) -> str:
    """``root/name/...`` for a local path or a URI (a URI's ``?query`` stays at the end)."""
    base, query = str(root), ""
    if is_uri(base) and "?" in base:
        base, query = base.split("?", 1)
        query = "?" + query
    return "/".join([base.rstrip("/"), *names]) + query


def filesystem(path: Path | str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path of a local path or a URI (s3://, gs://, file://)."""
    if is_uri(path):
        return pafs.FileSystem.from_uri(str(path))
    return pafs.LocalFileSystem(), str(Path(path).expanduser().absolute())


def check_partition_value(key: str, value: str) -> str:
    """Partition values become directory names: allow only ``[A-Za-z0-9._+-]``."""
    if not value or not _SAFE.match(value) or value in (".", ".."):
        raise ValueError(f"{key} {value!r} cannot be a partition directory name; use letters, digits, . _ + -")
    return value


def partition_dir(root: Path | str, table: str, dataset: str, strategy: str) -> str:
    """``root/<table>/dataset=<dataset>/strategy=<strategy>`` (a path or a URI)."""
    if table not in FILE_SCHEMAS:
        raise ValueError(f"unknown results table {table!r}; expected one of {sorted(FILE_SCHEMAS)}")
    check_partition_value("dataset", dataset)
    check_partition_value("strategy", strategy)
    return join(root, table, f"dataset={dataset}", f"strategy={strategy}")


def _check_trial_id(trial_id: str) -> str:
    check_partition_value("trial_id", trial_id)
    if re.search(r"\.round-[0-9]+$", trial_id):
        raise ValueError(f"trial_id {trial_id!r} cannot end like a round file name (.round-<number>)")
    return trial_id


def trial_file_path(root: Path | str, table: str, dataset: str, strategy: str, trial_id: str) -> str:
    """``root/<table>/dataset=<dataset>/strategy=<strategy>/<trial_id>.parquet``: a finished trial's file."""
    _check_trial_id(trial_id)
    return join(partition_dir(root, table, dataset, strategy), f"{trial_id}.parquet")


def round_file_path(root: Path | str, table: str, dataset: str, strategy: str, trial_id: str, round_: int) -> str:
    """``.../<trial_id>.round-<NNNNN>.parquet``: the rows of one round of a trial that is still running."""
    _check_trial_id(trial_id)
    if round_ < 0:
        raise ValueError(f"round must be >= 0, got {round_}")
    return join(partition_dir(root, table, dataset, strategy), f"{trial_id}.round-{round_:05d}.parquet")


def parse_file_name(name: str) -> tuple[str, int | None]:
    """``(trial_id, round)`` of a results file name; ``round`` is None for a finished trial's file."""
    match = _ROUND_FILE.match(name)
    if match:
        return match["trial"], int(match["round"])
    return (name[: -len(".parquet")] if name.endswith(".parquet") else name.rsplit(".", 1)[0]), None


def trial_complete(root: Path | str, config) -> bool:
    """True when the trial has finished: its single curve file exists and holds every round.

    A trial whose round files hold every round but that was stopped before they were
    replaced by the single file is not complete: resuming it only writes that file.
    """
    fs, path = filesystem(trial_file_path(root, CURVES, config.dataset.name, str(config.strategy), config.trial_id))
    if fs.get_file_info(path).type != pafs.FileType.File:
        return False
    rounds = pq.read_table(path, columns=["round"], filesystem=fs)["round"].to_pylist()
    return sorted(rounds) == list(range(config.rounds + 1))


def last_curve_row(root: Path | str, config) -> dict:
    """The last round's row of a finished trial (read from its own curve file only)."""
    fs, path = filesystem(trial_file_path(root, CURVES, config.dataset.name, str(config.strategy), config.trial_id))
    rows = pq.read_table(path, filesystem=fs).to_pylist()
    return max(rows, key=lambda row: row["round"])


def read_sweep_record(root: Path | str) -> dict | None:
    """The output's ``sweep.json`` (sweep id, study, annotator teams), or None if there is none."""
    fs, path = filesystem(join(root, SWEEP_FILE))
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read())


def write_sweep_record(root: Path | str, record: dict) -> None:
    """Write ``sweep.json`` (creating the output directory)."""
    fs, path = filesystem(join(root, SWEEP_FILE))
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(record, indent=2, default=str).encode())


def existing_sweep_record(root: Path | str, resume: bool) -> dict | None:
    """The record of the sweep in ``root`` when resuming (None for a new sweep); reads only.

    Refuses to start a second sweep in an output that holds one, and to resume where there
    is none (:class:`SweepRecordError`, whose message says what to do).
    """
    record = read_sweep_record(root)
    if record is not None and not resume:
        raise SweepRecordError(
            f"{root} already holds a sweep ({record['sweep_id']}). Pass --resume to continue it, or choose another --output."
        )
    if record is None and resume:
        raise SweepRecordError(f"--resume given but {root} holds no sweep to resume")
    return record


def new_sweep_record(root: Path | str, study_raw: dict) -> dict:
    """Create and write the record of a new sweep: its id (study name and UTC time) and the study."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    record = {"sweep_id": f"{study_raw['name']}-{stamp}", "study": study_raw}
    write_sweep_record(root, record)
    return record


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flatten(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def check_same_study(stored: dict, given: dict) -> None:
    """Refuse to resume a sweep with a study other than the one it stored, naming each key that differs."""
    before, after = _flatten(stored), _flatten(given)
    differ = [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if differ:
        changes = "; ".join(f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in differ)
        raise SweepRecordError(
            f"--resume continues the study stored in the output, which may only gain grid values and rounds (fewer "
            f"rounds would discard results), but the study given differs ({changes}); resume with the same settings, "
            f"or start a new sweep with another --output"
        )


def earlier_checkpoints(root: Path | str, trial_id: str) -> list[tuple[pafs.FileSystem, str]]:
    """Checkpoint directories of ``trial_id`` kept by earlier Tune experiments of this sweep, newest first.

    A grown sweep runs a new Tune experiment (``tune-...``); a trial the earlier one had begun
    continues from its last checkpoint there.
    """
    fs, path = filesystem(root)
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if entry.type == pafs.FileType.Directory and entry.base_name.startswith(TUNE_DIR):
            selector = pafs.FileSelector(f"{entry.path}/{trial_id}", allow_not_found=True)
            found += [(e.mtime_ns or 0, e.path) for e in fs.get_file_info(selector)
                      if e.type == pafs.FileType.Directory and e.base_name.startswith("checkpoint_")]
    return [(fs, p) for _, p in sorted(found, reverse=True)]
