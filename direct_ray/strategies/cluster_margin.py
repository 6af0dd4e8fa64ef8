"""Cluster-Margin: margin sampling diversified by a hierarchical clustering computed once.

Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh, Kumar. "Batch Active
Learning at Scale." NeurIPS 2021 (arXiv:2107.14263).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from direct_ray.strategies.badge import require_positive, subsample
from direct_ray.strategies.base import BatchStrategy, top_k_lowest

_ASSIGN_CHUNK = 8_192


def _euclidean_condensed(x: np.ndarray) -> np.ndarray:
    """Condensed Euclidean distance matrix of the rows of ``x`` via one BLAS product."""
    sq = np.einsum("ij,ij->i", x, x)
    d = x @ x.T
    d *= -2.0
    d += sq[:, None]
    d += sq[None, :]
    np.maximum(d, 0.0, out=d)
    np.sqrt(d, out=d)
    np.fill_diagonal(d, 0.0)
    return squareform(d, checks=False)


def hac_pool_clusters(
    embeddings: np.ndarray, n_clusters: int, sample_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Cluster id (0..C-1, C <= n_clusters) of every pool example.

    Average-linkage agglomerative clustering (Euclidean) of a uniform random sample of at
    most ``sample_size`` rows, cut into at most ``n_clusters`` clusters; every other row
    joins the cluster whose sampled members' centroid is nearest. Pairwise work is
    O(sample_size^2) time and memory (16 to 24 bytes per pair at the peak), the
    assignment O(N * D * C) in chunks.
    """
    n = embeddings.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    sample = subsample(np.arange(n), sample_size, rng)
    x = np.asarray(embeddings[sample], dtype=np.float64)
    if sample.size < 2:
        return np.zeros(n, dtype=np.int64)
    tree = linkage(_euclidean_condensed(x), method="average")
    _, sample_labels = np.unique(fcluster(tree, t=n_clusters, criterion="maxclust"), return_inverse=True)
    counts = np.bincount(sample_labels)
    centroids = np.zeros((counts.size, x.shape[1]))
    np.add.at(centroids, sample_labels, x)
    centroids /= counts[:, None]
    offset = np.einsum("ij,ij->i", centroids, centroids)
    labels = np.empty(n, dtype=np.int64)
    for start in range(0, n, _ASSIGN_CHUNK):
        block = np.asarray(embeddings[start : start + _ASSIGN_CHUNK], dtype=np.float64)
        labels[start : start + block.shape[0]] = np.argmin(offset - 2.0 * (block @ centroids.T), axis=1)
    labels[sample] = sample_labels
    return labels


def margins(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of each row (small = uncertain)."""
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def round_robin_by_cluster(
    candidates: np.ndarray, cluster_of: np.ndarray, budget: int, rng: np.random.Generator
) -> np.ndarray:
    """``budget`` candidates taken one per cluster per pass, smallest clusters first.

    Clusters are ordered by how many candidates they hold (ties by cluster id); within a
    cluster examples come in uniformly random order. Pass r takes the r-th example of every
    cluster that still has one, in cluster order.
    """
    ids, inverse, counts = np.unique(cluster_of, return_inverse=True, return_counts=True)
    position = np.empty(ids.size, dtype=np.int64)
    position[np.lexsort((ids, counts))] = np.arange(ids.size)
    shuffled = rng.permutation(candidates.size)
    cluster_pos = position[inverse[shuffled]]
    grouped = np.argsort(cluster_pos, kind="stable")  # by cluster, random order inside
    starts = np.concatenate(([0], np.cumsum(np.bincount(cluster_pos, minlength=ids.size))[:-1]))
    rank = np.empty(candidates.size, dtype=np.int64)
    rank[grouped] = np.arange(candidates.size) - starts[cluster_pos[grouped]]
    order = np.lexsort((cluster_pos, rank))
    return candidates[shuffled[order[:budget]]]


class ClusterMargin(BatchStrategy):
    """Cluster-Margin (Citovsky et al., 2021): lowest-margin examples, round-robin over HAC clusters.

    Once per trial the pool is clustered with average-linkage hierarchical agglomerative
    clustering of the embeddings. Each round, the ``k_m = margin_multiplier * budget``
    unlabeled examples of smallest margin (top-1 minus top-2 probability) are grouped by
    cluster, clusters are visited smallest first, and one uniformly random example is taken
    from each in turn until the budget is spent.

    What "once" means here: the paper clusters once, on the embeddings of the model trained
    on the initial seed set, and keeps the cluster of every example fixed for all later
    rounds. The runtime builds one strategy object per trial, so the object clusters on its
    first call (round 1, model trained on the random initial labels, as in the paper) and
    reuses the per-example cluster ids on later calls while the pool size is unchanged, even
    though the model and embeddings change each round. A new object (or a pool of another
    size) clusters afresh. The rng draws the same numbers on every call whether or not it
    clusters, so a call's result depends only on its inputs and the clustering it uses.

    Approximation to scale: HAC needs all pairwise distances, so it runs on a uniform random
    sample of ``hac_sample`` examples (default 4,000; about 0.2-0.3 GB at the peak) and the other
    examples join the nearest cluster centroid. The paper cuts the dendrogram at a distance
    threshold epsilon; we cut it into ``n_clusters`` clusters (default 20), which does not
    depend on the scale of the embeddings.
    """

    name = "cluster_margin"
    needs_embeddings = True

    def __init__(
        self,
        b_parallel: int = 1,
        n_clusters: int = 20,
        margin_multiplier: float = 10.0,
        hac_sample: int = 4_000,
    ) -> None:
        super().__init__(b_parallel)
        self.n_clusters = require_positive("n_clusters", n_clusters)
        self.margin_multiplier = require_positive("margin_multiplier", margin_multiplier, integer=False)
        if self.margin_multiplier < 1.0:
            raise ValueError(f"margin_multiplier must be >= 1, got {margin_multiplier!r}")
        self.hac_sample = require_positive("hac_sample", hac_sample)
        self._clusters: Optional[np.ndarray] = None

    def get_state(self) -> dict[str, np.ndarray]:
        return {} if self._clusters is None else {"clusters": self._clusters}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self._clusters = np.array(state["clusters"]) if "clusters" in state else None

    def pool_clusters(self, embeddings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The cached cluster id of every pool example, clustering on the first call."""
        seed = rng.integers(2**63)  # drawn on every call: the rng stream must not depend on the cache
        if self._clusters is None or self._clusters.size != embeddings.shape[0]:
            self._clusters = hac_pool_clusters(
                embeddings, self.n_clusters, self.hac_sample, np.random.default_rng(seed)
            )
        return self._clusters

    def choose(self, probs, observed, unlabeled, budget, rng, embeddings) -> np.ndarray:
        clusters = self.pool_clusters(embeddings, rng)
        k_m = min(unlabeled.size, max(budget, math.ceil(self.margin_multiplier * budget)))
        candidates = unlabeled[top_k_lowest(margins(probs[unlabeled]), k_m)]
        return round_robin_by_cluster(candidates, clusters[candidates], budget, rng)

    def __repr__(self) -> str:
        return (
            f"ClusterMargin(b_parallel={self.b_parallel}, n_clusters={self.n_clusters}, "
            f"margin_multiplier={self.margin_multiplier}, hac_sample={self.hac_sample})"
        )
