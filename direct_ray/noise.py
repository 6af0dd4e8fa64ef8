"""Label-noise models for simulated annotators.

The paper does not fix a noise model, so these are the knobs a study can turn:

``none``
    the annotator returns the true label.
``uniform`` (``rate`` p)
    with probability p the annotator returns a uniformly random *other* class.
``class_conditional`` (``matrix`` M, K x K)
    row i of M is the distribution of the observed label when the true class is i.
``minority_to_majority`` (``rate`` p)
    a minority label (true class < K-1) becomes the majority class K-1 with probability p;
    majority labels never change. (The imbalanced datasets merge every class from K-1 on
    into the majority class K-1.) This is the costly real-world error under imbalance:
    rare examples are lost among the common ones.

Annotators may differ: ``rates`` gives one flip rate per annotator (annotator ``a`` uses
``rates[a % len(rates)]``).

Noise is either *fresh* (each query is a new draw from the caller's generator, as a person
who errs at random) or *persistent* (an example always gets the same observed label, as
when the data itself is mislabeled). Persistent noise is a pure function of
``(seed, pool index)`` and the annotator's rate: it does not depend on the generator, the
order of queries or restarts. Its uniforms are shared by all annotators, so an annotator
with a higher rate mislabels a superset of the examples a lower-rate one does, and gives
them the same wrong label.

Both kinds turn two uniforms per query ``(u, v)`` into the observed label; fresh noise
always draws both, whatever the rate, so that two configurations run on the same
generator flip nested sets of examples (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from direct_ray.validated import Flag, Frozen, Number, parse

NOISE_MODELS = ("none", "uniform", "class_conditional", "minority_to_majority")
_RATE_MODELS = ("uniform", "minority_to_majority")
# Rows of a class_conditional matrix must sum to 1 within this tolerance.
ROW_SUM_TOLERANCE = 1e-6

_Rate = Number(ge=0.0, lt=1.0)


class NoiseConfig(Frozen):
    """How simulated annotators corrupt labels (see the module docstring for each model).

    A config is validated when it is built; :meth:`validate_for` adds the check that needs
    the number of classes.
    """

    model: Literal[NOISE_MODELS] = "none"
    #: flip probability for ``uniform`` and ``minority_to_majority``, in [0, 1)
    rate: _Rate = 0.0
    #: optional per-annotator rates instead of ``rate``: annotator a uses ``rates[a % len(rates)]``
    rates: Optional[Annotated[tuple[_Rate, ...], Field(min_length=1)]] = None
    #: ``class_conditional`` only: K x K, row i = distribution of observed labels for true class i
    matrix: Optional[tuple[tuple[Number(ge=0.0), ...], ...]] = None
    #: True: an example always gets the same observed label; False: a fresh draw per query
    persistent: Flag = False

    @model_validator(mode="after")
    def _fits_the_model(self) -> "NoiseConfig":
        if self.matrix is not None:
            k = len(self.matrix)
            if k < 2 or any(len(row) != k for row in self.matrix):
                raise ValueError(f"matrix must be square K x K with K >= 2, got row lengths {[len(r) for r in self.matrix]}")
            for i, row in enumerate(self.matrix):
                if abs(math.fsum(row) - 1.0) > ROW_SUM_TOLERANCE:
                    raise ValueError(f"matrix[{i}] must sum to 1 (within {ROW_SUM_TOLERANCE:g}), sums to {math.fsum(row)!r}")
        if self.model in _RATE_MODELS:
            if self.matrix is not None:
                raise ValueError(f"matrix applies only to model class_conditional, not {self.model}")
            if self.rates is not None and self.rate != 0.0:
                raise ValueError("give either rate or rates (per annotator), not both")
        else:
            if self.rate != 0.0 or self.rates is not None:
                raise ValueError(f"rate and rates apply only to models {' and '.join(_RATE_MODELS)}, not {self.model}")
            if self.model == "class_conditional" and self.matrix is None:
                raise ValueError("model class_conditional needs matrix (K x K, row i = observed-label distribution of class i)")
            if self.model == "none" and self.matrix is not None:
                raise ValueError("matrix applies only to model class_conditional, not none")
        return self

    @classmethod
    def from_dict(cls, d: Mapping) -> "NoiseConfig":
        """Build from a mapping such as a parsed YAML/JSON block (lists become tuples).

        Unknown keys are errors, so a misspelt knob never silently means "no noise".
        """
        return parse(cls, d, "noise")

    def to_dict(self) -> dict:
        """A JSON-able dict that :meth:`from_dict` turns back into an equal config."""
        return {
            "model": self.model,
            "rate": self.rate,
            "rates": None if self.rates is None else list(self.rates),
            "matrix": None if self.matrix is None else [list(row) for row in self.matrix],
            "persistent": self.persistent,
        }

    def validate_for(self, num_classes: int) -> None:
        """Check that this config fits a problem with ``num_classes`` classes."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if self.matrix is not None and len(self.matrix) != num_classes:
            raise ValueError(
                f"matrix is {len(self.matrix)} x {len(self.matrix)} but the dataset has {num_classes} classes"
            )

    def rate_for(self, annotator: int) -> float:
        """The flip rate of annotator ``annotator`` (class_conditional: its mean off-diagonal mass)."""
        if isinstance(annotator, bool) or not isinstance(annotator, (int, np.integer)) or annotator < 0:
            raise ValueError(f"annotator must be an integer >= 0, got {annotator!r}")
        if self.rates is not None:
            return self.rates[annotator % len(self.rates)]
        return self.nominal_rate if self.model == "class_conditional" else self.rate

    @property
    def nominal_rate(self) -> float:
        """One number for results tables.

        ``rate``, or the mean of ``rates``; for class_conditional the mean over true classes
        of the probability of a wrong label (mean off-diagonal row mass); 0 for none.
        """
        if self.rates is not None:
            return math.fsum(self.rates) / len(self.rates)
        if self.matrix is not None:
            return math.fsum(1.0 - row[i] for i, row in enumerate(self.matrix)) / len(self.matrix)
        return self.rate


# --- persistent uniforms: a counter-based hash of (key, pool index, stream) ---------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer: a bijection on uint64 whose outputs pass BigCrush."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _hashed_uniforms(key: np.uint64, indices: np.ndarray, stream: int) -> np.ndarray:
    """Uniforms in [0, 1), one per index, that depend only on ``(key, index, stream)``.

    Distinct ``(index, stream)`` pairs give distinct counters, hence distinct hashes.
    """
    counters = indices.astype(np.uint64) * np.uint64(2) + np.uint64(stream)
    bits = _splitmix64(counters ^ key)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class NoiseModel:
    """One annotator's noise: turns true labels into observed labels.

    ``seed`` keys persistent noise (use the trial's seed, the same for every annotator, so
    the data is mislabeled consistently); fresh noise draws from the ``rng`` given to
    :meth:`observe`.
    """

    def __init__(self, config: NoiseConfig, num_classes: int, *, annotator: int = 0, seed: int = 0) -> None:
        config.validate_for(num_classes)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.config = config
        self.num_classes = int(num_classes)
        self.annotator = int(annotator)
        self.rate = config.rate_for(annotator)
        self.seed = int(seed)
        self._key = np.random.SeedSequence(self.seed).generate_state(1, np.uint64)[0]
        self._cdf: Optional[np.ndarray] = None
        if config.model == "class_conditional":
            self._cdf = self._inverse_cdf_table(np.array(config.matrix, dtype=np.float64))

    @staticmethod
    def _inverse_cdf_table(matrix: np.ndarray) -> np.ndarray:
        """Cumulative rows for inverse-CDF sampling; +inf from each row's last nonzero entry.

        A uniform u in [0, 1) maps to the number of entries <= u: a class with probability 0
        has an empty interval and is never drawn, whatever the rounding of the row sums.
        """
        cdf = np.cumsum(matrix / matrix.sum(axis=1, keepdims=True), axis=1)
        last = matrix.shape[1] - 1 - np.argmax(matrix[:, ::-1] > 0, axis=1)
        cdf[np.arange(matrix.shape[1])[None, :] >= last[:, None]] = np.inf
        return cdf

    def observe(self, true_labels: np.ndarray, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observed labels (int64) for the queried examples.

        ``true_labels`` are their true classes and ``indices`` their pool indices (which key
        persistent noise). Fresh noise draws two uniforms per example from ``rng``.
        """
        true_labels = np.asarray(true_labels)
        indices = np.asarray(indices)
        if true_labels.ndim != 1 or indices.shape != true_labels.shape:
            raise ValueError(
                f"true_labels and indices must be 1-D of the same length, got {true_labels.shape} and {indices.shape}"
            )
        if true_labels.size and not np.issubdtype(true_labels.dtype, np.integer):
            raise ValueError(f"true_labels must be integers, got dtype {true_labels.dtype}")
        if indices.size and not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        true_labels = true_labels.astype(np.int64)
        if true_labels.size and (true_labels.min() < 0 or true_labels.max() >= self.num_classes):
            raise ValueError(f"true_labels must lie in 0..{self.num_classes - 1}")
        if indices.size and indices.min() < 0:
            raise ValueError("indices must be pool indices >= 0")
        if self.config.model == "none":
            return true_labels
        if self.config.persistent:
            u = _hashed_uniforms(self._key, indices, 0)
            v = _hashed_uniforms(self._key, indices, 1)
        else:
            u = rng.random(true_labels.size)
            v = rng.random(true_labels.size)
        return self._apply(true_labels, u, v)

    def _apply(self, true: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Observed labels from uniforms: ``u`` decides the flip (or the class), ``v`` the wrong class."""
        k = self.num_classes
        model = self.config.model
        if model == "uniform":
            # true + 1 + floor(v (K-1)) mod K is uniform over the K-1 other classes.
            offset = 1 + np.minimum((v * (k - 1)).astype(np.int64), k - 2)
            return np.where(u < self.rate, (true + offset) % k, true)
        if model == "minority_to_majority":
            return np.where((u < self.rate) & (true < k - 1), k - 1, true)
        # class_conditional: inverse CDF of row `true`.
        return np.count_nonzero(self._cdf[true] <= u[:, None], axis=1).astype(np.int64)

    def __repr__(self) -> str:
        return f"NoiseModel({self.config!r}, num_classes={self.num_classes}, annotator={self.annotator}, seed={self.seed})"
