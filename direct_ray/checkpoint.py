"""What a trial checkpoints after every round, and how it is saved and loaded.

A checkpoint is a directory: ``state.json`` (format, trial id, next round, seconds already
spent on the next round, the simulated annotation clock and when each annotator is free), ``pool.npz`` (the pool state over its labeled examples only, so
O(labels), not O(pool)), ``strategy.npz`` (what the strategy carries between rounds) and
``rows.json`` (the curve so far). The selection rows are not stored: they are the pool's
record and are rebuilt on load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from direct_ray.pool_state import PoolState
from direct_ray.results.rows import selection_rows

# 2: the pool is stored over its labeled examples only; 3: the selection rows are not
# stored (they are the pool's record, rebuilt on load); 4: the simulated annotation clock
# (answer times in the pool, the clock and the next round's annotation time in the state);
# 5: when each annotator is free (an asynchronous team may still be on an earlier round's
# queries). All load; an earlier format's labels were instant, its annotators all free.
STATE_FORMAT = 5
READABLE_FORMATS = (2, 3, 4, 5)


@dataclass
class TrialState:
    """What a checkpoint holds: enough to resume at ``next_round`` and rewrite every row."""

    trial_id: str
    next_round: int = 0
    pool: Optional[PoolState] = None
    curve: list[dict] = field(default_factory=list)
    # the audit rows of rounds < next_round; not saved: :meth:`load` rebuilds them from the pool
    selections: list[dict] = field(default_factory=list)
    # seconds already spent on ``next_round`` (its purchase happens before the checkpoint)
    pending_select_seconds: float = 0.0
    pending_round_seconds: float = 0.0
    # what the strategy carries between rounds (e.g. Cluster-Margin's clusters)
    strategy_state: dict[str, np.ndarray] = field(default_factory=dict)
    # simulated seconds since the trial began when the last label bought came back: a resumed
    # trial continues its annotators' clock from here
    annotation_clock: float = 0.0
    # when each annotator is free (empty: all at ``annotation_clock``); later than the clock
    # for one still labelling a query the last round ended without
    annotator_free_at: list[float] = field(default_factory=list)
    # simulated annotation time of ``next_round``'s purchase: wall and summed labelling seconds
    pending_annotation_seconds: float = 0.0
    pending_busy_seconds: float = 0.0

    def save(self, directory: Path | str) -> Path:
        """Write the state into ``directory`` (created; replaced atomically if it exists)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            np.savez(tmp / "pool.npz", **self.pool.to_arrays())
            np.savez(tmp / "strategy.npz", **self.strategy_state)
            meta = {
                "format": STATE_FORMAT,
                "trial_id": self.trial_id,
                "next_round": self.next_round,
                "pending_select_seconds": self.pending_select_seconds,
                "pending_round_seconds": self.pending_round_seconds,
                "annotation_clock": self.annotation_clock,
                "annotator_free_at": self.annotator_free_at,
                "pending_annotation_seconds": self.pending_annotation_seconds,
                "pending_busy_seconds": self.pending_busy_seconds,
            }
            (tmp / "state.json").write_text(json.dumps(meta))
            (tmp / "rows.json").write_text(json.dumps({"curve": self.curve}))
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(directory, old)
                os.replace(tmp, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> "TrialState":
        directory = Path(directory)
        meta = json.loads((directory / "state.json").read_text())
        if meta.get("format") not in READABLE_FORMATS:
            raise ValueError(f"checkpoint {directory} has format {meta.get('format')}, expected one of {READABLE_FORMATS}")
        rows = json.loads((directory / "rows.json").read_text())
        with np.load(directory / "pool.npz") as arrays:
            pool = PoolState.from_arrays(dict(arrays))
        with np.load(directory / "strategy.npz") as arrays:
            strategy_state = {key: arrays[key] for key in arrays.files}
        return cls(
            trial_id=meta["trial_id"],
            next_round=meta["next_round"],
            pool=pool,
            curve=rows["curve"],
            selections=[row for round_ in range(meta["next_round"]) for row in selection_rows(pool, meta["trial_id"], round_)],
            pending_select_seconds=meta["pending_select_seconds"],
            pending_round_seconds=meta["pending_round_seconds"],
            strategy_state=strategy_state,
            annotation_clock=meta.get("annotation_clock", 0.0),
            annotator_free_at=meta.get("annotator_free_at", []),
            pending_annotation_seconds=meta.get("pending_annotation_seconds", 0.0),
            pending_busy_seconds=meta.get("pending_busy_seconds", 0.0),
        )

    @property
    def finished_rounds(self) -> int:
        return len(self.curve)

    @classmethod
    def exists_in(cls, directory: Path | str | None) -> bool:
        """True when ``directory`` holds a saved state."""
        return directory is not None and (Path(directory) / "state.json").exists()
