"""The pool actor: hosts the trial's :class:`~direct_ray.pool_state.PoolState` in a Ray actor."""

from __future__ import annotations

from direct_ray.pool_state import PoolState
from direct_ray.runtime.priority import coordination_actor


class Pool:
    """Holds the trial's :class:`PoolState`; every purchase is recorded here (:data:`PoolActor` is its Ray actor).

    The trial keeps a mirror of the same state (updated by the same :meth:`PoolState.record`)
    for training and checkpoints, so no O(N) state travels back each round; the two are
    compared by :meth:`fingerprint` when the trial ends.
    """

    def __init__(self, state: PoolState) -> None:
        # Arrays arriving through the object store are read-only views: take a writable copy.
        self.state = PoolState.from_arrays(state.to_arrays())

    def reset(self, state: PoolState) -> None:
        """Serve another trial."""
        Pool.__init__(self, state)  # not the actor's __init__: its process yielded once already

    def record(self, round_: int, indices, observed, true_labels, annotators, answered_at=None) -> int:
        """Record a batch of purchases (see :meth:`PoolState.record`); returns the number of labels bought so far."""
        self.state.record(round_, indices, observed, true_labels, annotators, answered_at)
        return self.state.n_labeled

    def fingerprint(self) -> str:
        return self.state.fingerprint()


PoolActor = coordination_actor(Pool)
