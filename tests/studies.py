"""Small study mappings for tests: the embedded digits, two strategies, a few rounds."""

from __future__ import annotations


def grid(**changes) -> dict:
    """A study grid (16 trials); keyword arguments replace whole keys."""
    return {
        "dataset": [{"kind": "digits", "num_classes": 2}],
        "strategy": ["direct", "random"],
        "seed": [0, 1],
        "b_parallel": [1, 5],
        "noise": [{"model": "none"}, {"model": "uniform", "rate": 0.2}],
        **changes,
    }


def study(**changes) -> dict:
    """A study mapping over :func:`grid`; keyword arguments replace whole top-level keys."""
    return {
        "name": "t",
        "rounds": 2,
        "b_train": 10,
        "initial_size": 10,
        "model": {"kind": "mlp"},
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0},
        "grid": grid(),
        **changes,
    }
