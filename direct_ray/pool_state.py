"""The pool's labeling state: what was bought, when, by whom, and what the annotator said.

:class:`PoolState` is plain numpy; :mod:`direct_ray.runtime.pool` hosts one in a Ray actor so
the trial's record lives in one place. The true labels are *not* here: they stay behind the
oracle (the annotators). What the pool records of them is only what an annotator reported
about each purchase (the true label, for the audit table and for counting noisy labels),
which the strategies never see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from direct_ray.strategies import UNLABELED


@dataclass
class PoolState:
    """Per-example labeling state of an ``N``-example pool with ``K`` classes."""

    observed: np.ndarray  # int64 N: observed label, -1 where unlabeled
    true_label: np.ndarray  # int64 N: true label as reported by the oracle at purchase, -1 elsewhere
    round_bought: np.ndarray  # int32 N: round in which the example was bought, -1 elsewhere
    annotator: np.ndarray  # int32 N: which annotator labeled it, -1 elsewhere
    order: np.ndarray  # int64 N: position in the purchase order within the trial, -1 elsewhere
    num_classes: int
    # float64 N: simulated seconds since the trial began when the label came back, NaN elsewhere
    answered_at: np.ndarray

    @classmethod
    def empty(cls, n: int, num_classes: int) -> "PoolState":
        return cls(
            observed=np.full(n, UNLABELED, dtype=np.int64),
            true_label=np.full(n, -1, dtype=np.int64),
            round_bought=np.full(n, -1, dtype=np.int32),
            annotator=np.full(n, -1, dtype=np.int32),
            order=np.full(n, -1, dtype=np.int64),
            num_classes=num_classes,
            answered_at=np.full(n, np.nan),
        )

    @property
    def n_labeled(self) -> int:
        return int(np.count_nonzero(self.observed != UNLABELED))

    def training_set(self, clock: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """(labeled indices in purchase order, their observed labels): what the model trains on.

        Only labels back by simulated time ``clock`` count: one still in flight (an
        asynchronous annotator on an earlier round's query) joins a later round's model.
        """
        idx = self.labeled_indices()
        idx = idx[self.answered_at[idx] <= clock]
        return idx, self.observed[idx]

    def pending(self, clock: float) -> np.ndarray:
        """Pool indices bought whose labels are not back by simulated time ``clock`` (ascending)."""
        return np.flatnonzero(self.answered_at > clock)

    def labeled_indices(self) -> np.ndarray:
        """Labeled pool indices in the order they were bought."""
        idx = np.flatnonzero(self.observed != UNLABELED)
        return idx[np.argsort(self.order[idx], kind="stable")]

    def record(self, round_: int, indices, observed, true_labels, annotators, answered_at=None) -> None:
        """Record one batch of purchases; refuses an index bought twice (the budget must stay exact).

        ``answered_at``: simulated seconds since the trial began when each label came back
        (0 when not given: instant annotation).
        """
        indices = np.asarray(indices, dtype=np.int64)
        if np.unique(indices).size != indices.size or (self.observed[indices] != UNLABELED).any():
            raise ValueError("an example may be bought only once")
        start = self.n_labeled
        self.observed[indices] = observed
        self.true_label[indices] = true_labels
        self.round_bought[indices] = round_
        self.annotator[indices] = annotators
        self.answered_at[indices] = 0.0 if answered_at is None else answered_at
        self.order[indices] = np.arange(start, start + indices.size)

    def per_class_observed(self) -> np.ndarray:
        labeled = self.observed[self.observed != UNLABELED]
        return np.bincount(labeled, minlength=self.num_classes)

    def n_noisy(self) -> int:
        mask = self.observed != UNLABELED
        return int(np.count_nonzero(self.observed[mask] != self.true_label[mask]))

    def n_minority(self) -> int:
        """Labels bought whose true class is a minority class (0..K-2; class K-1 is the majority)."""
        mask = self.observed != UNLABELED
        return int(np.count_nonzero(self.true_label[mask] < self.num_classes - 1))

    def fingerprint(self) -> str:
        """A digest of the whole state: equal states have equal fingerprints."""
        digest = hashlib.sha256()
        for name, array in self.to_arrays().items():
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The state as arrays over the labeled examples only, in purchase order (O(labels), not O(N)).

        This is what a checkpoint stores every round: a 10^6-example pool with 2,000 labels
        is 2,000 rows, not five arrays of 10^6.
        """
        index = self.labeled_indices()
        return {
            "size": np.array(self.observed.size),
            "num_classes": np.array(self.num_classes),
            "index": index,
            "observed": self.observed[index],
            "true_label": self.true_label[index],
            "round_bought": self.round_bought[index],
            "annotator": self.annotator[index],
            "order": self.order[index],
            "answered_at": self.answered_at[index],
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "PoolState":
        """Rebuild the state written by :meth:`to_arrays` (fresh, writable arrays).

        Arrays written before labels had answer times load with ``answered_at`` 0 (instant).
        """
        state = cls.empty(int(arrays["size"]), int(arrays["num_classes"]))
        index = np.asarray(arrays["index"], dtype=np.int64)
        if np.unique(index).size != index.size or (index.size and (index.min() < 0 or index.max() >= state.observed.size)):
            raise ValueError("pool state arrays: labeled indices must be distinct pool indices")
        state.observed[index] = arrays["observed"]
        state.true_label[index] = arrays["true_label"]
        state.round_bought[index] = arrays["round_bought"]
        state.annotator[index] = arrays["annotator"]
        state.order[index] = arrays["order"]
        state.answered_at[index] = arrays["answered_at"] if "answered_at" in arrays else 0.0
        return state
