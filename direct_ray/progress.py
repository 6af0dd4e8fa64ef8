"""A sweep's progress as people read it: one live line on a terminal, a short line now and then elsewhere.

``trials 5/32 done, 2 running, 0 failed | rounds 57/352 | 0:41 elapsed | about 3:12 left``

On a terminal the line is redrawn in place (rich's live display); when the output is a file
or a pipe (a cluster job's log) the same line is logged every :data:`LOG_EVERY_S` seconds
and when a trial ends. Counts start from what the output already holds, so a resumed
sweep's counter ends at its number of trials.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

from direct_ray.results import layout

log = logging.getLogger(__name__)

LOG_EVERY_S = 15.0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Counts:
    """What a sweep has done: trials and rounds, those done before this run included."""

    trials: int
    rounds: int
    trials_done: int = 0
    rounds_done: int = 0
    failed: int = 0
    running: set = field(default_factory=set)
    rounds_at_start: int = 0
    start: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        text = (f"trials {self.trials_done}/{self.trials} done, {len(self.running)} running, {self.failed} failed | "
                f"rounds {self.rounds_done}/{self.rounds} | {_clock(elapsed)} elapsed")
        this_run = self.rounds_done - self.rounds_at_start
        if this_run > 0 and self.rounds_done < self.rounds:
            text += f" | about {_clock(elapsed / this_run * (self.rounds - self.rounds_done))} left"
        return text


class SweepProgress:
    """Shows :class:`Counts` as they change (see the module docstring); a context manager."""

    def __init__(self, counts: Counts, *, live: bool | None = None) -> None:
        self.counts = counts
        self.live_enabled = sys.stdout.isatty() if live is None else live
        self._live = None
        self._logged = 0.0

    def __enter__(self) -> "SweepProgress":
        if self.live_enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self.counts.line(), console=Console(), refresh_per_second=4, transient=False)
            self._live.__enter__()
        else:
            self._log(force=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self.counts.line())
            self._live.__exit__(*exc)
        else:
            self._log(force=True)

    def started(self, trial_id: str) -> None:
        self.counts.running.add(trial_id)
        self._show()

    def round_done(self, trial_id: str) -> None:
        self.counts.rounds_done += 1
        self._show()

    def finished(self, trial_id: str, *, failed: bool = False) -> None:
        self.counts.running.discard(trial_id)
        if failed:
            self.counts.failed += 1
        else:
            self.counts.trials_done += 1
        self._show()

    def _show(self, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(self.counts.line())
        else:
            self._log(force)

    def _log(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.info(self.counts.line())


def counts_on_disk(output: str, trials: list) -> Counts:
    """Trials and rounds the output already holds (a resumed sweep counts on from them)."""
    from direct_ray.results.read import ResultsError, read_results

    counts = Counts(trials=len(trials), rounds=sum(t.rounds + 1 for t in trials))
    counts.trials_done = sum(layout.trial_complete(output, t) for t in trials)
    try:
        rows = read_results(output, skip_unreadable=True).table
        counts.rounds_done = counts.rounds_at_start = len(set(zip(rows["trial_id"].to_pylist(), rows["round"].to_pylist())))
    except ResultsError:
        pass  # nothing written yet
    return counts
