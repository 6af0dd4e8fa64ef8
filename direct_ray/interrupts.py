"""Stopping a sweep by a signal: Ctrl-C (SIGINT) or SIGTERM (a cancelled job, ``timeout``).

Inside :func:`stop_on_signals` the first signal raises :class:`Interrupted` in the main
thread, so the sweep leaves its Tune run and ends its Ray session: every trial stops where
it is, and a round in progress is discarded (each round's checkpoint and Parquet files are
written atomically, so what is on disk is always whole rounds). A second signal ends the
process at once; what was written stays whole. The exit status is ``128 + signal``:
130 for Ctrl-C, 143 for SIGTERM. After a SIGTERM, which a job manager sends to the whole
process group (Ray's own processes included), the sweep does not wait on Ray to disconnect.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by signal ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` for the ``with`` block (main thread only).

    Yields the list of signals received. Ray's blocking calls may turn the exception raised
    in their C code into a plain ``KeyboardInterrupt``: the list says which signal it was.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(signum, frame) -> None:
        received.append(signum)
        if len(received) > 1:
            os._exit(128 + signum)  # a second signal: stop now, cleanup or not
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield received
    finally:
        if not received:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
