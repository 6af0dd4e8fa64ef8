"""Behavioural tests of the embedding baselines (BADGE, Cluster-Margin, BASE, BAIT, SIMILAR).

Each test builds small synthetic data whose right answer is known by construction. The
shared contract (exact budget, no duplicates, determinism) is tested for every strategy in
``test_contract.py``; the edge cases here are the ones these algorithms could trip on.
"""

from __future__ import annotations

import numpy as np
import pytest

from direct_ray.strategies import make_strategy
from direct_ray.strategies.badge import gradient_inner, gradient_residuals, kmeans_pp_seeding
from direct_ray.strategies.bait import average_fisher, bait_greedy, fisher_factors, quadratic_forms
from direct_ray.strategies.base_sampling import boundary_distances
from direct_ray.strategies.cluster_margin import ClusterMargin, margins, round_robin_by_cluster
from direct_ray.strategies.similar import Similar, _Embedding, flqmi_greedy

EMBEDDING_STRATEGIES = ["badge", "cluster_margin", "base", "bait", "similar"]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def blobs(rng, n_blobs: int, per_blob: int, dim: int, spread: float = 0.05, distance: float = 10.0):
    """Tight, far-apart Gaussian blobs on orthogonal axes; returns (embeddings, blob id)."""
    centres = distance * np.eye(n_blobs, dim)
    blob = np.repeat(np.arange(n_blobs), per_blob)
    return (centres[blob] + spread * rng.standard_normal((blob.size, dim))).astype(np.float32), blob


def kron_embeddings(probs: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Explicit BAIT Fisher embeddings V_i = R_i (x) h_i (n x K x K*D), for checking the factored code."""
    r = fisher_factors(probs)
    return np.stack([np.kron(r[i], h[i][None, :]) for i in range(h.shape[0])])


def run_select(name: str, probs, observed, budget, embeddings, seed=0, **options):
    truth = np.argmax(probs, axis=1)
    return make_strategy(name, b_parallel=3, **options).select(
        probs, observed, budget, annotate=lambda idx: truth[idx], rng=np.random.default_rng(seed), embeddings=embeddings
    )


# --------------------------------------------------------------------------- BADGE


def test_gradient_inner_products_match_explicit_gradient_embeddings():
    rng = np.random.default_rng(0)
    probs = softmax(rng.standard_normal((7, 4)))
    h = rng.standard_normal((7, 5)).astype(np.float32)
    a = gradient_residuals(probs)
    g = np.stack([np.outer(a[i], h[i]).ravel() for i in range(7)])
    np.testing.assert_allclose(gradient_inner(a, h, a[3], h[3]), g @ g[3], rtol=1e-5)
    assert np.allclose(a.sum(axis=1), 0.0) and (a[np.arange(7), probs.argmax(1)] < 0).all()


def test_badge_batch_is_more_diverse_than_top_k_margin():
    rng = np.random.default_rng(1)
    h, blob = blobs(rng, n_blobs=10, per_blob=100, dim=12)
    # Blob 0 sits on the decision boundary; the other nine are less (but still) uncertain.
    p0 = np.where(blob == 0, 0.5, 0.75) + 0.01 * rng.random(blob.size)
    probs = np.column_stack([p0, 1.0 - p0])
    observed = np.full(blob.size, -1)
    budget = 20

    margin_batch = np.argsort(margins(probs), kind="stable")[:budget]
    assert set(blob[margin_batch]) == {0}
    for seed in range(3):
        badge_batch = run_select("badge", probs, observed, budget, h, seed=seed)
        assert set(blob[badge_batch]) == set(range(10))  # every blob covered
        pairwise = np.linalg.norm(h[badge_batch, None] - h[None, badge_batch], axis=-1).mean()
        assert pairwise > 5 * np.linalg.norm(h[margin_batch, None] - h[None, margin_batch], axis=-1).mean()


def test_kmeans_pp_starts_at_largest_gradient_and_never_repeats_duplicates():
    rng = np.random.default_rng(2)
    probs = softmax(rng.standard_normal((30, 3)))
    h = np.repeat(rng.standard_normal((3, 4)), 10, axis=0).astype(np.float32)  # many exact duplicates
    probs = np.repeat(probs[:3], 10, axis=0)
    a = gradient_residuals(probs)
    chosen = kmeans_pp_seeding(a, h, 12, rng)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(h, axis=1)
    assert np.isclose(norms[chosen[0]], norms.max())
    assert len(set(chosen.tolist())) == 12
    assert set(chosen[:3] // 10) == {0, 1, 2}  # the three distinct points come before any duplicate


# --------------------------------------------------------------------------- Cluster-Margin


def test_round_robin_takes_smallest_clusters_first():
    candidates = np.array([10, 11, 12, 20, 30, 31])
    cluster_of = np.array([1, 1, 1, 2, 3, 3])  # sizes: 1 -> 3, 2 -> 1, 3 -> 2
    picked = round_robin_by_cluster(candidates, cluster_of, 5, np.random.default_rng(0))
    assert [c // 10 for c in picked] == [2, 3, 1, 3, 1]


def test_cluster_margin_draws_from_every_cluster_of_the_uncertain_examples():
    rng = np.random.default_rng(3)
    h, blob = blobs(rng, n_blobs=5, per_blob=200, dim=8)
    # The 100 lowest-margin examples (k_m = 10 x budget) fall 60/20/10/6/4 into the blobs,
    # blob 0's being the very lowest.
    margin = 0.5 + 0.4 * rng.random(blob.size)
    for b, count in enumerate([60, 20, 10, 6, 4]):
        members = np.flatnonzero(blob == b)[:count]
        margin[members] = 0.001 * (b + rng.random(count))
    p0 = (1.0 + margin) / 2.0
    probs = np.column_stack([p0, 1.0 - p0])
    observed = np.full(blob.size, -1)

    margin_batch = np.argsort(margins(probs), kind="stable")[:10]
    assert set(blob[margin_batch]) == {0}
    batch = run_select("cluster_margin", probs, observed, 10, h, n_clusters=5, hac_sample=2_000)
    np.testing.assert_array_equal(np.bincount(blob[batch], minlength=5), [2, 2, 2, 2, 2])


def test_cluster_margin_clusters_once_per_object_and_keeps_the_rng_stream():
    rng = np.random.default_rng(4)
    h, blob = blobs(rng, n_blobs=3, per_blob=50, dim=6)
    strategy = ClusterMargin(n_clusters=3, hac_sample=40)  # subsample + nearest-centroid assignment
    clusters = strategy.pool_clusters(h, np.random.default_rng(0))
    # Exactly the blobs (up to renaming), also for the 110 rows outside the HAC sample.
    assert len(set(clusters)) == 3 and len({(b, c) for b, c in zip(blob, clusters)}) == 3
    moved = h[::-1].copy()  # next round: new embeddings, same pool
    assert strategy.pool_clusters(moved, np.random.default_rng(0)) is clusters

    probs = softmax(rng.standard_normal((h.shape[0], 2)))
    observed = np.full(h.shape[0], -1)
    unlabeled = np.arange(h.shape[0])
    fresh = ClusterMargin(n_clusters=3, hac_sample=40)
    first = fresh.choose(probs, observed, unlabeled, 9, np.random.default_rng(7), h)  # clusters now
    again = fresh.choose(probs, observed, unlabeled, 9, np.random.default_rng(7), h)  # uses the cache
    np.testing.assert_array_equal(first, again)


# --------------------------------------------------------------------------- BASE


def test_boundary_distances_are_logit_gaps_to_the_best_other_class():
    probs = np.array([[0.7, 0.2, 0.1], [0.45, 0.1, 0.45], [1.0, 0.0, 0.0]])
    d = boundary_distances(probs)
    np.testing.assert_allclose(d[0], [np.log(0.7 / 0.2), np.log(0.7 / 0.2), np.log(0.7 / 0.1)])
    np.testing.assert_allclose(d[1], [0.0, np.log(4.5), 0.0], atol=1e-12)
    assert np.isinf(d[2]).all()


def test_base_takes_turns_so_every_class_boundary_gets_its_share():
    # Class 2 is the majority. Group A lies on the 0|2 boundary (gaps 0.01..0.20), group B on
    # the 1|2 boundary with larger gaps (0.30..0.49); the rest are confident class-2 examples.
    gaps_a = 0.01 * np.arange(1, 21)
    gaps_b = 0.30 + 0.01 * np.arange(20)
    logits_a = np.column_stack([-gaps_a, np.full(20, -6.0), np.zeros(20)])
    logits_b = np.column_stack([np.full(20, -6.0), -gaps_b, np.zeros(20)])
    logits_c = np.tile([-5.0, -5.0, 0.0], (300, 1))
    probs = softmax(np.vstack([logits_a, logits_b, logits_c]))
    observed = np.full(probs.shape[0], -1)

    assert set(np.argsort(margins(probs), kind="stable")[:6]) <= set(range(20))  # margin: all 0|2
    batch = run_select("base", probs, observed, 6, None)
    # Turns 0, 1, 2, 0, 1, 2: class 0 and class 2 share group A in order, class 1 takes group B.
    np.testing.assert_array_equal(batch, [0, 20, 1, 2, 21, 3])


# --------------------------------------------------------------------------- BAIT


def bait_problem(seed: int, n: int = 40, k: int = 3, d: int = 4):
    rng = np.random.default_rng(seed)
    probs = softmax(1.5 * rng.standard_normal((n, k)))
    h = rng.standard_normal((n, d))
    return probs, h


def test_bait_factored_fisher_matches_explicit_kronecker_products():
    probs, h = bait_problem(5, n=12)
    v = kron_embeddings(probs, h)
    np.testing.assert_allclose(average_fisher(probs, h), np.einsum("nij,nik->jk", v, v) / 12, atol=1e-12)
    b = np.random.default_rng(0).standard_normal((12, 12))
    np.testing.assert_allclose(quadratic_forms(fisher_factors(probs), h, b), v @ b @ v.transpose(0, 2, 1), atol=1e-10)


def test_bait_fisher_factors_are_exact_at_rank_k_minus_1_and_best_below():
    probs, _ = bait_problem(7, n=5, k=4)
    cov = np.einsum("ic,ce->ice", probs, np.eye(4)) - probs[:, :, None] * probs[:, None, :]
    exact = fisher_factors(probs)
    assert exact.shape == (5, 3, 4)
    np.testing.assert_allclose(exact.transpose(0, 2, 1) @ exact, cov, atol=1e-12)
    top = fisher_factors(probs, max_rank=1)
    largest = np.linalg.eigvalsh(cov)[:, -1]
    np.testing.assert_allclose(np.einsum("irk,irk->i", top, top), largest, rtol=1e-10)


def test_bait_greedy_objective_improves_at_every_forward_step_and_is_tracked_exactly():
    probs, h = bait_problem(6)
    fisher = average_fisher(probs, h)
    labeled_fisher = average_fisher(probs[:5], h[:5])
    cand_probs, cand_h = probs[5:], h[5:]
    result = bait_greedy(fisher_factors(cand_probs), cand_h, 6, fisher, labeled_fisher, n_labeled=5)

    forward = result.forward_objective
    assert forward.size == 13 and np.all(np.diff(forward) < 0)  # information gained at every step
    assert np.all(np.diff(result.backward_objective) > 0) and result.backward_objective.size == 6
    assert result.backward_objective[0] > forward[-1]

    v = kron_embeddings(cand_probs, cand_h) * np.sqrt(6 / 11)  # the authors' scaling B / (n_L + B)
    base = np.eye(fisher.shape[0]) + 5 / 11 * labeled_fisher

    def objective(rows) -> float:
        m = base + sum((v[i].T @ v[i] for i in rows), np.zeros_like(base))
        return float(np.trace(np.linalg.solve(m, fisher)))

    assert np.isclose(result.backward_objective[-1], objective(result.chosen))
    # The first forward step is the best single example, found by brute force.
    singles = [objective([i]) for i in range(cand_h.shape[0])]
    assert np.isclose(forward[1], min(singles))
    # And the final batch beats random batches of the same size.
    rng = np.random.default_rng(0)
    random_batches = [objective(rng.choice(cand_h.shape[0], 6, replace=False)) for _ in range(30)]
    assert objective(result.chosen) < min(random_batches)


# --------------------------------------------------------------------------- SIMILAR


@pytest.mark.parametrize("kind", ["gradients", "features"])
def test_similar_cosine_sums_match_the_explicit_kernel(kind):
    rng = np.random.default_rng(8)
    probs = softmax(rng.standard_normal((9, 3)))
    h = rng.standard_normal((9, 5)).astype(np.float32)
    a = gradient_residuals(probs) if kind == "gradients" else None
    queries = _Embedding(kind, h[:4], gradient_residuals(probs[:4], np.array([0, 1, 0, 2])) if a is not None else None)
    rows = _Embedding(kind, h[4:], a[4:] if a is not None else None)
    np.testing.assert_allclose(rows.cosine_sums(queries), rows.cosine(queries).sum(axis=1), rtol=1e-5)


def test_flqmi_greedy_covers_every_query_group_before_repeating_one():
    # 8 queries in group A, 2 in group B; candidates 0-4 match A, 5-6 match B.
    sim = np.full((7, 10), 0.5, dtype=np.float32)
    sim[:5, :8] = 0.99
    sim[5:, 8:] = 0.99
    chosen = flqmi_greedy(sim, 2, eta=1.0)
    assert chosen[0] < 5 and chosen[1] >= 5


def rare_class_pool(seed: int):
    """Majority class 2 at the origin, rare classes 0 and 1 in two far blobs; a few rare examples labeled."""
    rng = np.random.default_rng(seed)
    h, blob = blobs(rng, n_blobs=3, per_blob=20, dim=6, spread=0.3, distance=4.0)
    majority = 0.3 * rng.standard_normal((400, 6)).astype(np.float32)
    h = np.vstack([h[blob < 2], majority])  # 20 examples of class 0, 20 of class 1, 400 of class 2
    label = np.concatenate([blob[blob < 2], np.full(400, 2)])
    logits = np.where(label[:, None] == np.arange(3), 1.0, 0.0) + 0.3 * rng.standard_normal((label.size, 3))
    observed = np.full(label.size, -1)
    observed[[0, 1, 2, 20, 21]] = label[[0, 1, 2, 20, 21]]  # 3 rare-0 and 2 rare-1 labeled
    observed[50:60] = 2
    return softmax(logits), observed, h, label


@pytest.mark.parametrize("representation", ["gradients", "features"])
def test_similar_prefers_unlabeled_points_near_the_rare_class_queries(representation):
    probs, observed, h, label = rare_class_pool(9)
    batch = run_select("similar", probs, observed, 20, h, representation=representation)
    assert np.mean(label[batch] < 2) >= 0.9  # 35 of 435 unlabeled are rare; random would give 8%
    assert {0, 1} <= set(label[batch])
    # Margin-free check of the preference: the batch is closer to the queries than the pool is.
    queries = h[(observed >= 0) & (observed < 2)]
    nearest = lambda rows: np.linalg.norm(h[rows, None] - queries[None], axis=-1).min(axis=1).mean()  # noqa: E731
    assert nearest(batch) < 0.5 * nearest(np.flatnonzero(observed == -1))


def test_similar_falls_back_to_most_likely_minority_without_rare_labels():
    probs, observed, h, label = rare_class_pool(10)
    observed[observed < 2] = -1  # no rare example labeled yet
    batch = Similar().choose(probs, observed, np.flatnonzero(observed == -1), 5, np.random.default_rng(0), h)
    unlabeled = np.flatnonzero(observed == -1)
    expected = unlabeled[np.argsort(probs[unlabeled, 2], kind="stable")[:5]]
    np.testing.assert_array_equal(batch, expected)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("name", EMBEDDING_STRATEGIES)
@pytest.mark.parametrize("n, labeled, budget", [(3, 0, 3), (12, 5, 7), (40, 10, 30)])
def test_exact_budget_on_tiny_pools_and_whole_pool_budgets(name, n, labeled, budget):
    rng = np.random.default_rng(n + labeled)
    probs = softmax(rng.standard_normal((n, 2)))
    h = rng.standard_normal((n, 3))  # float64 embeddings are accepted too
    observed = np.full(n, -1)
    observed[:labeled] = rng.integers(0, 2, labeled)
    batch = run_select(name, probs, observed, budget, h)
    assert batch.size == min(budget, n - labeled) and np.unique(batch).size == batch.size
    assert (observed[batch] == -1).all()
    np.testing.assert_array_equal(batch, run_select(name, probs, observed, budget, h))


@pytest.mark.parametrize(
    "name, options",
    [
        ("badge", {"max_candidates": 0}),
        ("cluster_margin", {"margin_multiplier": 0.5}),
        ("bait", {"oversample": 0.9}),
        ("bait", {"feature_dim": True}),
        ("bait", {"max_fisher_rank": 0}),
        ("similar", {"representation": "logits"}),
    ],
)
def test_bad_options_fail_with_the_option_name(name, options):
    with pytest.raises(ValueError, match=next(iter(options))):
        make_strategy(name, **options)
