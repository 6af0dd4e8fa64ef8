"""BASE (Balanced Selection): the examples nearest to every class's decision boundary, class-balanced.

Emam, Chu, Chiang, Czaja, Leapman, Goldblum, Goldstein. "Active Learning at the ImageNet
Scale." arXiv:2111.12880, 2021.
"""

from __future__ import annotations

import math

import numpy as np

from direct_ray.strategies.base import BatchStrategy, top_k_lowest


def boundary_distances(probs: np.ndarray) -> np.ndarray:
    """N x K logit-space distances of each row to the one-vs-rest boundary of each class.

    Entry (i, c) is ``|z_ic - max_{c' != c} z_ic'|`` with ``z = log p`` (logits up to a
    per-row constant, so logit differences are exact): for a row predicted as another class
    it is the gap from the predicted class down to c, for a row predicted as c the gap from
    c down to the runner-up. A probability of exactly 0 gives an infinite distance.
    """
    with np.errstate(divide="ignore"):
        z = np.log(np.asarray(probs, dtype=np.float64))
    k = z.shape[1]
    top = np.argmax(z, axis=1)
    ordered = np.partition(z, k - 2, axis=1)
    first, second = ordered[:, -1].copy(), ordered[:, -2].copy()
    del ordered
    for c in range(k):  # in place, one column at a time: peak memory ~2 N x K float64
        z[:, c] -= np.where(top == c, second, first)
    return np.abs(z, out=z)


class BalancedBoundary(BatchStrategy):
    """BASE (Emam et al., 2021): for each class, the unlabeled examples closest to its boundary.

    Every class gets an equal share of the budget (the first ``budget % K`` classes one
    more): classes take turns (0, 1, ..., K-1, 0, ...) and each turn takes that class's
    nearest-to-boundary unlabeled example not already chosen, so no example is chosen twice
    and the batch is class-balanced by construction. A class's distance is
    :func:`boundary_distances`. Needs no embeddings.

    Approximation: the paper measures the distance in *feature* space, ``(z_yhat - z_c) /
    ||w_yhat - w_c||`` for the last layer's weights ``w``; the selection contract passes
    only probabilities, so we use the logit gap ``z_yhat - z_c`` without that per-class-pair
    normalisation. For K = 2 the two orderings are identical; for K > 2 they differ only by
    one constant factor per (predicted class, class) pair.
    """

    name = "base"

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        k = probs.shape[1]
        distances = boundary_distances(probs[unlabeled])
        # A class takes ceil(budget / k) examples and can find at most budget - 1 of its
        # nearest already taken by other classes.
        depth = min(unlabeled.size, math.ceil(budget / k) + budget)
        ranked = [top_k_lowest(np.ascontiguousarray(distances[:, c]), depth) for c in range(k)]
        taken = np.zeros(unlabeled.size, dtype=bool)
        cursor = [0] * k
        chosen = np.empty(budget, dtype=np.int64)
        for turn in range(budget):
            c = turn % k
            order, i = ranked[c], cursor[c]
            while taken[order[i]]:
                i += 1
            taken[order[i]] = True
            chosen[turn] = order[i]
            cursor[c] = i + 1
        return unlabeled[chosen]
