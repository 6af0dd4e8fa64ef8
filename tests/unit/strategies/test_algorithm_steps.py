"""Every step of DIRECT and GALAXY that decides which labels are bought, pinned end to end.

The tests drive the strategies only through ``select`` with a fake annotator that records
each call, so they pin what a round *buys*, not how the code is organised. Most use the
"cyclic pool" below, whose lists are laid out so that every purchase can be traced back to
the class whose step bought it; the others are small hand-worked lists.

The cyclic pool, for K classes, has per class ``k`` (positions in class ``k``'s sorted list):

* ``T[k-1]`` (``t`` examples, argmax ``k`` with ``p_k > 0.5``): positions ``1..t``;
* ``A[k]`` (one example, ``p_k = 0.5``, labeled ``k`` before the round): position ``t + 1``;
* ``H[k]`` (``h`` examples, argmax ``k`` with ``p_k`` in ``[0.41, 0.45]``): ``t + 2 .. t + h + 1``;
* ``A[k+1]`` (``p_k = 0.49``, labeled ``k + 1``): position ``J = t + h + 2``, the border;
* ``T[k]`` (argmax ``k + 1``, ``p_k`` just under 0.48): ``J + 1 .. J + t``;
* everything else further back.

So class ``k``'s version space is ``(t + 1, J)``: its candidates are exactly ``H[k]``, and no
other class's window overlaps it. The annotator answers the argmax, so a label bought for
one class never moves another class's window or threshold: the threshold of class ``k``
stays at ``J - 1`` (the plateau of ``S`` runs from the last ``k`` label to ``J - 1``, which
is below ``N / 2``), and phase 2 for class ``k`` buys from ``H[k]`` and ``T[k]`` only.
Every purchase therefore has an *owner*: ``k`` for ``H[k]`` and ``T[k]``.

The layout is the spec's sort (ascending margin ``max(p) - p_k``, ties by *descending*
``p_k``), computed here without the package: ``T[k-1]``, ``A[k]`` and ``H[k]`` all have
margin 0 in class ``k``'s list and are ordered only by the tie rule, so a sort that breaks
ties the other way moves the version space and fails most tests below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from direct_ray.strategies import make_strategy


def paper_direct(b_parallel=1):
    """The one place DIRECT is constructed in this file."""
    return make_strategy("direct_paper", b_parallel=b_parallel)


SEEDS = 200  # statistical checks: bounds are several standard errors wide at this count
WIDE = 64  # a b_parallel no test budget reaches: each VReduce and each phase-2 list is one call


# --------------------------------------------------------------------------------------------
# Fixtures: a recording annotator and the cyclic pool
# --------------------------------------------------------------------------------------------


class Recorder:
    """Noise-free annotator (answers ``truth``) that records every call, in order."""

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth
        self.calls: list[np.ndarray] = []

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(indices, dtype=np.int64))
        return self.truth[indices]


@dataclass
class CyclicPool:
    probs: np.ndarray
    truth: np.ndarray
    observed: np.ndarray
    num_classes: int
    h: int
    t: int
    anchors: np.ndarray  # A[k], pool index
    hard: list[np.ndarray]  # H[k], pool indices in list order (most confident first)
    tails: list[np.ndarray]  # T[k], pool indices in class k's list order
    owner: np.ndarray  # k for H[k] and T[k], -1 for the anchors
    orders: list[np.ndarray]  # class k's sorted list (pool indices)

    @property
    def border(self) -> int:
        """``J``: the 1-based position of the border ``A[k+1]`` in class ``k``'s list."""
        return self.t + self.h + 2

    def position(self, k: int, index: int) -> int:
        return int(np.flatnonzero(self.orders[k] == index)[0]) + 1


def sorted_list(probs: np.ndarray, k: int) -> np.ndarray:
    """Class k's list by the spec, independently of the package: ascending margin
    ``max(p) - p_k``, ties by descending ``p_k``, then by pool index."""
    q = probs.max(axis=1) - probs[:, k]
    return np.array(sorted(range(len(q)), key=lambda i: (q[i], -probs[i, k], i)), dtype=np.int64)


def cyclic_pool(num_classes: int = 3, h: int = 20, t: int = 10, layout_seed: int = 0) -> CyclicPool:
    """The pool described in the module docstring, pool indices shuffled by ``layout_seed``."""
    K = num_classes
    rows: list[np.ndarray] = []
    kinds: list[tuple[str, int]] = []

    def row(main: dict[int, float]) -> np.ndarray:
        p = np.zeros(K)
        for c, v in main.items():
            p[c] = v
        rest = [c for c in range(K) if c not in main]
        if rest:
            p[rest] = (1.0 - sum(main.values())) / len(rest)
        return p

    for k in range(K):
        rows.append(row({k: 0.5, (k - 1) % K: 0.49}))
        kinds.append(("A", k))
        for i in range(h):
            p_k = 0.45 - 0.04 * i / h
            rows.append(row({k: p_k} | {c: (1 - p_k) / (K - 1) for c in range(K) if c != k}))
            kinds.append(("H", k))
        for i in range(t):
            rows.append(row({(k + 1) % K: 0.51 - 0.0002 * i, k: 0.48 - 0.0005 * i}))
            kinds.append(("T", k))
    n = len(rows)
    shuffle = np.random.default_rng(layout_seed).permutation(n)  # pool index of row r
    probs = np.empty((n, K))
    probs[shuffle] = np.array(rows)
    truth = probs.argmax(axis=1)
    owner = np.full(n, -1)
    anchors = np.empty(K, dtype=np.int64)
    for r, (kind, k) in enumerate(kinds):
        if kind == "A":
            anchors[k] = shuffle[r]
        else:
            owner[shuffle[r]] = k
    observed = np.full(n, -1)
    observed[anchors] = truth[anchors]
    orders = [sorted_list(probs, k) for k in range(K)]
    hard, tails = [], []
    for k in range(K):
        order = orders[k]
        # The layout the module docstring describes.
        before_anchor = {shuffle[r] for r, kd in enumerate(kinds) if kd == ("T", (k - 1) % K)}
        assert set(order[:t].tolist()) == before_anchor
        assert order[t] == anchors[k] and order[t + h + 1] == anchors[(k + 1) % K]
        hard.append(order[t + 1 : t + h + 1].copy())
        tails.append(order[t + h + 2 : 2 * t + h + 2].copy())
        assert (owner[hard[k]] == k).all() and (owner[tails[k]] == k).all()
        assert (truth[hard[k]] == k).all()
    return CyclicPool(probs, truth, observed, K, h, t, anchors, hard, tails, owner, orders)


def run_direct(pool: CyclicPool, budget: int, b_parallel: int, seed: int) -> list[np.ndarray]:
    recorder = Recorder(pool.truth)
    bought = paper_direct(b_parallel).select(
        pool.probs, pool.observed, budget, recorder, np.random.default_rng(seed)
    )
    assert bought.size == budget
    return recorder.calls


def single_owner(pool: CyclicPool, indices: np.ndarray) -> int:
    owners = set(pool.owner[indices].tolist())
    assert len(owners) == 1 and -1 not in owners, owners
    return owners.pop()


def phase_orders(pool: CyclicPool, calls: list[np.ndarray]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Class order of phase 1 and phase 2 from a round with b >= 1 and b_parallel = WIDE."""
    K = pool.num_classes
    assert len(calls) == 2 * K
    return tuple(single_owner(pool, c) for c in calls[:K]), tuple(single_owner(pool, c) for c in calls[K:])


def outward(j: int, n: int):
    """Positions ``j, j + 1, j - 1, j + 2, j - 2, ...`` inside ``1..n``."""
    for d in range(n + 1):
        for p in ((j,) if d == 0 else (j + d, j - d)):
            if 1 <= p <= n:
                yield p


def quotas(rest: int, num_classes: int) -> list[int]:
    """Phase-2 split by rank: as even as possible, the remainder to the first ranks."""
    return [rest // num_classes + (r < rest % num_classes) for r in range(num_classes)]


# --------------------------------------------------------------------------------------------
# DIRECT: the shape of a round (Algorithm 1)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [6, 11, 12, 17, 23])
def test_direct_round_phase_budgets_and_phase_two_purchases(budget):
    """Phase 1 buys floor(B / 2K) per class, phase 2 splits the rest evenly (remainder to the
    first classes of its permutation) and buys outward from j_hat: exactly B labels in all.

    With b_parallel above every budget, each class's VReduce and each class's phase-2 list is
    one annotate call, so the calls read off the round: K calls of ``floor(B / 2K)`` examples,
    each inside one class's window ``H[k]``, one per class; then K calls whose sizes follow
    the even split and whose contents are class k's unlabeled positions in the order
    ``j_hat, j_hat + 1, j_hat - 1, ...`` from ``j_hat = J - 1``.
    """
    pool = cyclic_pool()
    K = pool.num_classes
    per_class = budget // (2 * K)
    for seed in range(5):
        calls = run_direct(pool, budget, WIDE, seed)
        first, second = phase_orders(pool, calls)
        assert sorted(first) == list(range(K)) and sorted(second) == list(range(K))
        observed = pool.observed.copy()
        for k, call in zip(first, calls[:K]):
            assert call.size == per_class
            assert np.isin(call, pool.hard[k]).all()  # strictly inside the version space
            observed[call] = pool.truth[call]
        assert [c.size for c in calls[K:]] == quotas(budget - K * per_class, K)
        for k, call in zip(second, calls[K:]):
            order = pool.orders[k]
            visit = [order[p - 1] for p in outward(pool.border - 1, order.size)]
            nearest = [i for i in visit if observed[i] == -1]
            assert call.tolist() == nearest[: call.size], (seed, k)
            observed[call] = pool.truth[call]
        assert sum(c.size for c in calls) == budget


def test_direct_phase_one_class_order_is_a_random_permutation():
    """Phase 1 visits the classes in a permutation drawn from the run's generator.

    Over 200 seeds every class leads about a third of the time (bound: 20 %) and every one
    of the 3! orders occurs: a fixed order, or any rule that favours a class, fails.
    """
    pool = cyclic_pool()
    firsts = []
    for seed in range(SEEDS):
        first, _ = phase_orders(pool, run_direct(pool, 12, WIDE, seed))
        firsts.append(first)
    leaders = np.bincount([f[0] for f in firsts], minlength=3) / SEEDS
    assert (leaders >= 0.2).all(), leaders
    assert len(set(firsts)) == 6


def test_direct_phase_two_class_order_is_a_fresh_permutation():
    """Phase 2 draws a *new* permutation, independent of phase 1's.

    Over 200 seeds: every class leads phase 2 at least 20 % of the time (a fixed order fails);
    the two orders coincide about 1/6 of the time (bound 5-35 %: reusing phase 1's order
    gives 100 %, reversing it 0 %); and phase 2's leader equals phase 1's about 1/3 of the
    time (bound 15-55 %).
    """
    pool = cyclic_pool()
    pairs = [phase_orders(pool, run_direct(pool, 12, WIDE, seed)) for seed in range(SEEDS)]
    leaders = np.bincount([second[0] for _, second in pairs], minlength=3) / SEEDS
    assert (leaders >= 0.2).all(), leaders
    same = np.mean([first == second for first, second in pairs])
    assert 0.05 <= same <= 0.35, same
    same_leader = np.mean([first[0] == second[0] for first, second in pairs])
    assert 0.15 <= same_leader <= 0.55, same_leader


# --------------------------------------------------------------------------------------------
# DIRECT: VReduce (Algorithm 2)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget, b_parallel, batches",
    [(31, 2, [2, 2, 1]), (30, 3, [3, 2]), (31, 4, [4, 1]), (24, 2, [2, 2]), (25, 3, [3, 1]), (30, 5, [5])],
)
def test_vreduce_runs_ceil_b_over_b_parallel_iterations(budget, b_parallel, batches):
    """VReduce with budget b makes m = ceil(b / B_parallel) parallel calls of
    min(B_parallel, budget left) examples each (b = floor(B / 2K) = 4 or 5 here).

    With ``h = 200`` the windows keep enough candidates for every planned iteration, so the
    first 3m calls are exactly three runs of ``batches``, each run inside one class's window.
    """
    pool = cyclic_pool(h=200)
    m = len(batches)
    for seed in range(5):
        calls = run_direct(pool, budget, b_parallel, seed)
        assert [c.size for c in calls[: 3 * m]] == batches * 3
        owners = [single_owner(pool, np.concatenate(calls[r * m : (r + 1) * m])) for r in range(3)]
        assert sorted(owners) == [0, 1, 2]
        for k, r in zip(owners, range(3)):
            assert np.isin(np.concatenate(calls[r * m : (r + 1) * m]), pool.hard[k]).all()


def test_vreduce_draws_uniformly_inside_the_version_space():
    """Each VReduce batch is drawn uniformly from the unlabeled examples strictly inside
    (I, J) (here exactly ``H[k]``), not the whole list, not the nearest or first candidates.

    b = 1 per class: 200 seeds x 3 classes = 600 draws over the 60 candidates (10 expected
    each); every candidate is drawn and none more than 30 times.
    """
    pool = cyclic_pool()
    counts = np.zeros(pool.probs.shape[0], dtype=int)
    for seed in range(SEEDS):
        calls = run_direct(pool, 6, WIDE, seed)
        for call in calls[:3]:
            assert call.size == 1 and np.isin(call, pool.hard[single_owner(pool, call)]).all()
            counts[call] += 1
    candidates = np.concatenate(pool.hard)
    assert counts.sum() == counts[candidates].sum() == 3 * SEEDS
    assert counts[candidates].min() >= 1 and counts[candidates].max() <= 30, counts[candidates]


@pytest.mark.parametrize("budget, b_parallel", [(31, 2), (30, 3), (31, 4), (60, 4)])
def test_vreduce_window_follows_the_labels_and_shrinks_geometrically(budget, b_parallel):
    """After each batch the window keeps the hypotheses of least loss (Algorithm 2's
    argmin of max(L(first), L(last))) and shrinks to width about W0 / c^t, c = W0^(1/m).

    In class k's window every bought label is k, so the loss falls to the right of each
    label: the next window starts at or after the last label of the current window, or
    ends where the current one ends when the width does not fit there. Either way its
    batch lies right of ``max(previous batch) + 1 - width``, and strictly inside a window of
    the scheduled width (rounding either way allowed). A window chosen at random, or by the
    largest loss, lands left of the labels.
    """
    pool = cyclic_pool(h=200)
    b = budget // 6
    m = -(-b // b_parallel)
    w0 = pool.border - (pool.t + 1)  # J - I
    widths = [w0 ** ((m - t) / m) for t in range(m + 1)]
    for seed in range(20):
        calls = run_direct(pool, budget, b_parallel, seed)
        for r in range(3):
            runs = calls[r * m : (r + 1) * m]
            k = single_owner(pool, np.concatenate(runs))
            pos = [np.array([pool.position(k, i) for i in batch]) for batch in runs]
            for t in range(1, m):
                width = int(np.ceil(widths[t])) + 1
                assert pos[t].max() - pos[t].min() <= width - 2, (seed, t, pos)
                # The new window lies inside the last one, which held pos[t - 1], and
                # starts at or after its last label unless the width does not fit there.
                assert pos[t].min() >= pos[t - 1].max() + 2 - width, (seed, t, pos)


def line_pool(n: int) -> np.ndarray:
    """K = 2 probabilities: class 0's list is the identity (position p = pool index p - 1),
    class 1's list is its reverse (position p' = n - index)."""
    p0 = np.linspace(0.95, 0.05, n)
    return np.stack([p0, 1 - p0], axis=1)


def test_vreduce_initial_version_space_hand_worked():
    """The first VReduce draws from the version space (I, J) of Algorithm 2, not the list.

    Positions 1 (k), 3 (other), 5 (k), 7 (other) labeled in class 0's list: a = 3, I = 1,
    z = 5, J = 7, so the candidates are positions 2, 4, 6 (pool indices 1, 3, 5). Class 1's
    list is the mirror image and gives the same three indices. With b = 1 the first draw is
    uniform over exactly those three, whichever class goes first.
    """
    n = 10
    truth = np.array([0, 0, 1, 1, 0, 0, 1, 1, 1, 1])
    observed = np.full(n, -1)
    observed[[0, 2, 4, 6]] = truth[[0, 2, 4, 6]]
    firsts = []
    for seed in range(60):
        recorder = Recorder(truth)
        paper_direct(WIDE).select(line_pool(n), observed, 4, recorder, np.random.default_rng(seed))
        assert recorder.calls[0].size == 1
        firsts.append(int(recorder.calls[0][0]))
    assert set(firsts) == {1, 3, 5}


# --------------------------------------------------------------------------------------------
# DIRECT: phase 2 (threshold, tie rule, visiting order)
# --------------------------------------------------------------------------------------------


def test_phase_two_starts_at_n_half_and_visits_j_hat_then_right_then_left():
    """Phase 2 buys from j_hat outwards, j_hat + 1 before j_hat - 1; today's tie rule puts
    j_hat at the plateau point closest to N / 2.

    N = 20, class 0 labeled at position 1 and class 1 at position 20 of class 0's list: S is
    flat on 1..19 in both lists, so j_hat = 10 in each. B = 3 leaves phase 1 nothing
    (floor(3 / 4) = 0) and gives the first class of phase 2 two labels: positions 10, 11 of
    its list, i.e. pool indices [9, 10] for class 0 or [10, 9] for class 1. The other class
    then has one label left: j_hat + 1 and j_hat are labeled, so it buys j_hat - 1.
    """
    n = 20
    truth = (np.arange(n) >= 10).astype(np.int64)
    observed = np.full(n, -1)
    observed[[0, n - 1]] = truth[[0, n - 1]]
    seen = set()
    for seed in range(20):
        recorder = Recorder(truth)
        paper_direct(WIDE).select(line_pool(n), observed, 3, recorder, np.random.default_rng(seed))
        calls = [c.tolist() for c in recorder.calls]
        assert calls in ([[9, 10], [11]], [[10, 9], [8]]), calls
        seen.add(calls[0][0])
    assert seen == {9, 10}


# --------------------------------------------------------------------------------------------
# GALAXY
# --------------------------------------------------------------------------------------------


def run_galaxy(probs, observed, truth, budget, seed, b_parallel=1) -> list[np.ndarray]:
    recorder = Recorder(truth)
    bought = make_strategy("galaxy", b_parallel=b_parallel).select(
        probs, observed, budget, recorder, np.random.default_rng(seed)
    )
    assert bought.size == budget
    return recorder.calls


def test_galaxy_round_robin_from_a_random_class_bisecting_each_list():
    """One query per call (even with b_parallel = 5); the classes take turns k0, k0 + 1, ...
    from a random k0; each turn bisects the current class's run of unlabeled nodes.

    In the cyclic pool class k's only run between different labels is ``H[k]``, between the
    last node labeled k (first ``A[k]``, position 11) and the border (position 32). Every
    answer is k, so class k's turns query positions (11 + 32) // 2 = 21, then 26, 29, 30.
    Over 200 seeds every class starts at least 20 % of the time.
    """
    pool = cyclic_pool()
    starts = []
    for seed in range(SEEDS):
        calls = run_galaxy(pool.probs, pool.observed, pool.truth, 12, seed, b_parallel=5)
        assert [c.size for c in calls] == [1] * 12
        k0 = int(pool.owner[calls[0][0]])
        starts.append(k0)
        last = {k: pool.t + 1 for k in range(3)}
        for step, call in enumerate(calls):
            k = (k0 + step) % 3
            last[k] = (last[k] + pool.border) // 2
            assert call[0] == pool.orders[k][last[k] - 1], (seed, step)
    shares = np.bincount(starts, minlength=3) / SEEDS
    assert (shares >= 0.2).all(), shares


def test_galaxy_bisects_the_shortest_run_between_different_labels_at_its_midpoint():
    """Bisection takes the *shortest* run of unlabeled nodes whose two labeled ends differ
    and queries its midpoint ``(a + b) // 2``.

    Class 0's list (identity, positions 1..40) is labeled + at 1, 4, 19 and - at 14, 32, 40:
    runs between different labels (4, 14), (14, 19), (19, 32) hold 9, 4 and 12 nodes; the gaps
    (1, 4) and (32, 40) have equal labels and do not count. Class 0 queries position
    (14 + 19) // 2 = 16 (index 15). Class 1's list is the mirror image: ends 22 and 27,
    midpoint 24, i.e. position 17 (index 16). The first query is one of the two, and both
    occur over the seeds.
    """
    n = 40
    labeled = np.array([0, 3, 13, 18, 31, 39])
    truth = np.zeros(n, dtype=np.int64)
    truth[[13, 31, 39]] = 1
    observed = np.full(n, -1)
    observed[labeled] = truth[labeled]
    firsts = {int(run_galaxy(line_pool(n), observed, truth, 1, seed)[0][0]) for seed in range(40)}
    assert firsts == {15, 16}


def test_galaxy_without_any_cut_queries_a_uniformly_random_unlabeled_node():
    """With no pair of differently-labeled nodes in any list the query is a uniformly random
    unlabeled node, not the first one of the pool or of a list.

    30 unlabeled nodes, 300 seeds: 10 expected picks each; every node is picked and none more
    than 30 times. Already labeled nodes are never picked.
    """
    n = 34
    truth = np.zeros(n, dtype=np.int64)
    observed = np.full(n, -1)
    observed[[0, 5, 17, 33]] = 0
    counts = np.zeros(n, dtype=int)
    for seed in range(300):
        counts[run_galaxy(line_pool(n), observed, truth, 1, seed)[0]] += 1
    assert counts[observed != -1].sum() == 0
    picked = counts[observed == -1]
    assert picked.min() >= 1 and picked.max() <= 30, picked


def test_galaxy_every_purchase_updates_every_class_graph():
    """A label bought on one class's turn is seen by every class's graph at once.

    Line pool of 64 (class 1's list is class 0's reversed), labels 0 at index 0 and 1 at
    index 63, truth switching at index 40. Both graphs share one run, between the largest
    index labeled 0 (lo) and the smallest labeled 1 (hi); class 0 queries its midpoint
    rounded down in its list (index (lo + hi) // 2), class 1 rounded down in the reversed
    list (index (lo + hi + 1) // 2). The queries must follow the run as *both* classes'
    labels shrink it, until the cut 39 | 40 is found.
    """
    n, cut = 64, 40
    truth = (np.arange(n) >= cut).astype(np.int64)
    observed = np.full(n, -1)
    observed[[0, n - 1]] = truth[[0, n - 1]]
    starts = set()
    for seed in range(10):
        calls = run_galaxy(line_pool(n), observed, truth, 6, seed)
        k0 = 0 if calls[0][0] == 31 else 1
        starts.add(k0)
        lo, hi = 0, n - 1
        for step, call in enumerate(calls):
            expected = (lo + hi + (k0 + step) % 2) // 2
            assert call[0] == expected, (seed, step, [int(c[0]) for c in calls])
            lo, hi = (expected, hi) if truth[expected] == 0 else (lo, expected)
        assert (lo, hi) == (cut - 1, cut)
    assert starts == {0, 1}


def allowed_queries(sorted_labels: np.ndarray, k: int) -> set[int] | None:
    """Positions GALAXY's rules allow on one list (None: no cut, any unlabeled node).

    Shortest run between differently-labeled neighbours -> its midpoint (a + b) // 2;
    else the unlabeled nodes nearest a cut (an adjacent labeled pair with different labels).
    """
    n = sorted_labels.size
    labeled = [p for p in range(1, n + 1) if sorted_labels[p - 1] != -1]
    sign = {p: sorted_labels[p - 1] == k for p in labeled}
    pairs = [(a, b) for a, b in zip(labeled, labeled[1:]) if sign[a] != sign[b]]
    runs = [(b - a - 1, a, b) for a, b in pairs if b - a > 1]
    if runs:
        shortest = min(r[0] for r in runs)
        return {(a + b) // 2 for length, a, b in runs if length == shortest}
    if not pairs:
        return None
    unlabeled = [p for p in range(1, n + 1) if sorted_labels[p - 1] == -1]
    if not unlabeled:
        return None
    distance = {p: min(min(abs(p - a), abs(p - b)) for a, b in pairs) for p in unlabeled}
    nearest = min(distance.values())
    return {p for p, d in distance.items() if d == nearest}


@pytest.mark.parametrize("seed", range(6))
def test_galaxy_every_query_is_one_the_rules_allow(seed):
    """Replays a whole GALAXY round on a random 3-class pool (labels unrelated to the
    probabilities): for one start class and then strict rotation, every query is the
    shortest-run midpoint, else a node nearest a cut, of the current class's list given all
    labels bought so far by every class (a node of any kind only when the list has no cut).
    """
    rng = np.random.default_rng(seed)
    n, K = 60, 3
    probs = rng.dirichlet(np.ones(K), size=n)
    truth = rng.integers(0, K, n)
    observed = np.full(n, -1)
    start = rng.choice(n, 6, replace=False)
    observed[start] = truth[start]
    calls = run_galaxy(probs, observed, truth, 40, seed)
    orders = [sorted_list(probs, k) for k in range(K)]

    def consistent(k0: int) -> bool:
        labels = observed.copy()
        for step, call in enumerate(calls):
            k = (k0 + step) % K
            allowed = allowed_queries(labels[orders[k]], k)
            position = int(np.flatnonzero(orders[k] == call[0])[0]) + 1
            if allowed is not None and position not in allowed:
                return False
            labels[call] = truth[call]
        return True

    assert any(consistent(k0) for k0 in range(K))


# --------------------------------------------------------------------------------------------
# Baselines: each one's defining rule, through select
# --------------------------------------------------------------------------------------------


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p)).sum(axis=1)


@pytest.mark.parametrize(
    "name, priority",
    [
        ("confidence", lambda p: -p.max(axis=1)),  # least confident first
        ("margin", lambda p: -np.diff(np.sort(p, axis=1)[:, -2:], axis=1)[:, 0]),  # smallest top1 - top2
        ("entropy", entropy),  # highest entropy first
        ("mlp", lambda p: 1 - p[:, -1]),  # most likely minority (not the last, majority class)
    ],
)
def test_uncertainty_baselines_buy_the_highest_priority_unlabeled_first(name, priority):
    """Least confidence, margin, entropy and most-likely-positive buy the unlabeled examples
    in decreasing order of their defining score, computed here with plain numpy.

    300 examples with continuous probabilities (no ties), 60 already labeled, budget 40 in
    calls of at most 7: the concatenated calls are the top 40 by that score, in order.
    """
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=300)
    truth = rng.integers(0, 3, 300)
    observed = np.full(300, -1)
    observed[rng.choice(300, 60, replace=False)] = 0
    recorder = Recorder(truth)
    make_strategy(name, b_parallel=7).select(probs, observed, 40, recorder, np.random.default_rng(0))
    unlabeled = np.flatnonzero(observed == -1)
    expected = unlabeled[np.argsort(-priority(probs)[unlabeled], kind="stable")[:40]]
    assert max(c.size for c in recorder.calls) <= 7
    np.testing.assert_array_equal(np.concatenate(recorder.calls), expected)


def test_random_baseline_buys_uniformly_from_the_unlabeled_pool():
    """Random sampling buys each unlabeled example with the same probability, b / U.

    12 examples, 2 labeled, budget 3: each of the 10 others is bought with probability 0.3,
    180 times in 600 seeds (sd about 11); bound 120-240. Labeled examples never.
    """
    n = 12
    observed = np.full(n, -1)
    observed[[4, 9]] = 1
    counts = np.zeros(n, dtype=int)
    for seed in range(600):
        recorder = Recorder(np.zeros(n, dtype=np.int64))
        make_strategy("random", b_parallel=2).select(
            np.full((n, 2), 0.5), observed, 3, recorder, np.random.default_rng(seed)
        )
        counts[np.concatenate(recorder.calls)] += 1
    assert counts[[4, 9]].sum() == 0
    free = counts[observed == -1]
    assert free.min() >= 120 and free.max() <= 240, free
