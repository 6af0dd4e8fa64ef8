"""Every random stream of a trial, derived from the trial seed with ``numpy.random.SeedSequence``.

Streams are keyed by ``(seed, purpose, round, ...)`` rather than drawn from one running
generator, so a trial restarted from its checkpoint at round r draws exactly what an
uninterrupted run draws from round r on, with no generator state to save.
"""

from __future__ import annotations

import numpy as np

INITIAL_STREAM = 1
SELECT_STREAM = 2
TRAIN_STREAM = 3
ANNOTATOR_STREAM = 4
LATENCY_STREAM = 5


def generator(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *keys])


def int_seed(seed: int, stream: int, *keys: int) -> int:
    """A 31-bit integer seed (for torch) derived from the same keys."""
    return int(np.random.SeedSequence([seed, stream, *keys]).generate_state(1)[0] & 0x7FFFFFFF)
