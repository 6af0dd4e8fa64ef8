"""DIRECT (Nuggehalli, Zhang, Jain, Nowak): DImension REduction for aCTive learning.

One call of :meth:`Direct.select` is one round of the paper's Algorithm 1 with
``B_train = budget``:

* **Phase 1** (find the optimal separation thresholds): for each class ``k`` in a random
  permutation, :func:`vreduce` (Algorithm 2) with ``b = floor(budget / (2K))`` on class
  ``k``'s sorted list (section 4.1, see :mod:`.reduction` for the positions convention).
* **Phase 2** (annotate rare and uncertain examples): the rest of the round's budget is
  split as evenly as possible over the classes, in a new random permutation; for each
  class the threshold ``j_hat`` is recomputed from all observed labels and the unlabeled
  examples nearest the cut are bought (positions ``j_hat, j_hat + 1, j_hat - 1, ...``).
  A class whose list runs out passes its leftover on to the next class.

A label bought for one class counts as labeled in every class's list. Round 0 (the
uniformly random initial set) is not part of ``select``: the caller draws it.

How Algorithm 2 is read here (each point is where the paper leaves room):

* A window ``(I, J)`` holds the hypotheses ``h_I .. h_{J-1}``; its width ``J - I`` counts
  them, so ``c = (J - I) ** (1/m)`` leaves exactly one after ``m`` iterations. Candidates
  are the unlabeled positions strictly inside, the examples that separate those hypotheses.
* Widths follow ``round(W0 / c**t)`` (see :func:`shrink_schedule`).
* A placement is scored by the losses of its first and last hypothesis, ties broken by the
  total loss inside, then at random (see :func:`best_window` for why).
* When no candidate is left the buying stops and the budget goes back to the round, but the
  remaining shrink steps still run (they need no labels).

Every open choice above and in Algorithm 1 is an option of :class:`Direct` (its docstring
says what the paper says, what the authors' code does and what was measured);
``direct_paper`` (:class:`DirectPaper`) fixes them to the paper's reading.

Cost per round: one sort per class (the floor; see :func:`~.reduction.class_order`), a few
O(N) gathers per class, and O(sum of window widths) for VReduce, about ``W0 * c / (c - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, get_args

import numpy as np

from direct_ray.strategies.base import UNLABELED, Strategy
from direct_ray.strategies.reduction import (
    TIE_RULES,
    LabelView,
    TieRule,
    class_order,
    labeled_positions,
    near_optimal_window,
    nearest_unlabeled,
    prefix_sums,
    row_max,
    signed_weights,
    threshold_estimate,
    version_space,
)


@dataclass(frozen=True)
class VReduceResult:
    """What one :func:`vreduce` call did (positions are 1-based, windows as in :mod:`.reduction`).

    ``windows[t]`` is the window the ``t``-th batch was drawn from and ``batches[t]`` the pool
    indices bought in that single parallel call; ``window`` is the final window.
    """

    initial_window: tuple[int, int]
    window: tuple[int, int]
    windows: tuple[tuple[int, int], ...]
    batches: tuple[np.ndarray, ...]
    iterations: int
    """``m = ceil(b / b_parallel)``, the planned number of iterations."""
    spent: int

    @property
    def stopped_early(self) -> bool:
        """True when the window ran out of unlabeled candidates before ``m`` iterations."""
        return len(self.batches) < self.iterations


def shrink_schedule(initial_width: int, iterations: int) -> list[int]:
    """Window widths after each of the ``m`` iterations: ``round(W0 / c**t)``, ``c = W0**(1/m)``.

    The paper shrinks by the fixed factor ``c`` each iteration so that the last window holds a
    single hypothesis. Rounding the *exact* geometric sequence (instead of rounding
    ``width / c`` again at every step, which can stall, e.g. at width 2 when ``c < 4/3``)
    keeps that promise: the widths never increase and the last one is exactly 1.
    """
    w0, m = initial_width, iterations
    return [max(1, int(w0 ** ((m - t) / m) + 0.5)) for t in range(1, m + 1)]


def best_window(sorted_window_labels: np.ndarray, k: int, width: int, rng: np.random.Generator) -> int:
    """Offset ``a`` of the sub-window ``[I + a, I + a + width)`` minimising ``max(L(first), L(last))``.

    ``sorted_window_labels`` are the labels at positions ``I+1 .. J-1`` (``-1`` unlabeled).
    The sub-window holds hypotheses ``h_{I+a} .. h_{I+a+width-1}``; it is scored by the loss
    of its first and last hypothesis (Algorithm 2's ``max{L(i), L(j)}`` with ``[i, j]`` the
    hypotheses kept, so that a width-1 window is scored by its only hypothesis and the last
    step picks an empirical risk minimiser). Since ``L = n_k - S``, this maximises
    ``min(S(first), S(last))`` using prefix sums relative to ``S(I)``: O(J - I).

    Ties are broken first by the smallest total loss of the hypotheses inside the
    sub-window, then uniformly at random with ``rng``. The endpoint losses are step
    functions, so ties are the rule, and a purely random choice among them lets the window
    slide off a region that no label has ruled out: on a noise-free list of 10^4 with the
    cut at position 337 (b = 100, b_parallel = 10) purely random ties end on the true cut in
    about a third of the seeds, this rule in 99 %.
    """
    s = prefix_sums(signed_weights(sorted_window_labels, k))  # s[r] = S(I + r) - S(I)
    score = np.minimum(s[: s.size - width + 1], s[width - 1 :])
    ties = np.flatnonzero(score == score.max())
    if ties.size > 1:
        total = prefix_sums(s)  # total[a + width] - total[a] = sum of S over the sub-window
        mass = total[ties + width] - total[ties]
        ties = ties[mass == mass.max()]
    return int(ties[rng.integers(ties.size)]) if ties.size > 1 else int(ties[0])


def vreduce(
    view: LabelView,
    order: np.ndarray,
    k: int,
    budget: int,
    rng: np.random.Generator,
    slack: Optional[int] = None,
) -> VReduceResult:
    """VReduce (DIRECT paper, Algorithm 2) on class ``k``'s list ``order``; buys at most ``budget``.

    Starts from :func:`~.reduction.version_space` (``slack=None``) or from
    :func:`~.reduction.near_optimal_window` with that ``slack``; runs ``m = ceil(budget / b_parallel)``
    iterations. Each draws ``min(b_parallel, budget left)`` unlabeled examples strictly inside
    the window, uniformly without replacement, buys them in one parallel call, then shrinks
    the window to the next width of :func:`shrink_schedule` at the offset chosen by
    :func:`best_window`. After all ``m`` iterations the window holds one hypothesis.

    Once the window has no unlabeled example left (every hypothesis in it is fully
    evaluated), buying stops early and the unspent budget is the caller's; the remaining
    shrink steps still run, without buying, so the final window still holds one hypothesis
    (an empirical risk minimiser of the last window).
    """
    n = order.size
    budget = min(int(budget), view.remaining)
    positions, is_k = labeled_positions(view.labels[order], k)
    lo, hi = version_space(positions, is_k, n) if slack is None else near_optimal_window(positions, is_k, n, slack)
    initial = (lo, hi)
    m = -(-budget // view.b_parallel)
    windows: list[tuple[int, int]] = []
    batches: list[np.ndarray] = []
    left = budget
    for width in shrink_schedule(hi - lo, m):
        inside = order[lo : hi - 1]  # positions lo+1 .. hi-1
        window_labels = view.labels[inside]
        free = np.flatnonzero(window_labels == UNLABELED)
        if free.size:
            take = min(view.b_parallel, left, free.size)
            picked = free[rng.choice(free.size, size=take, replace=False)]
            window_labels[picked] = view.buy(inside[picked])
            windows.append((lo, hi))
            batches.append(inside[picked])
            left -= take
        lo += best_window(window_labels, k, width, rng)
        hi = lo + width
    return VReduceResult(initial, (lo, hi), tuple(windows), tuple(batches), m, budget - left)


def annotate_near_threshold(
    view: LabelView, order: np.ndarray, k: int, count: int, tie: TieRule = "half"
) -> int:
    """Phase 2 for one class: buy up to ``count`` unlabeled examples nearest ``j_hat``.

    ``j_hat`` is recomputed from every label observed so far, ties broken by ``tie`` (see
    :func:`~.reduction.threshold_estimate`). Purchases go out in batches of
    at most ``b_parallel``. Returns how many were bought (fewer only if the list ran out).
    """
    sorted_labels = view.labels[order]
    positions, is_k = labeled_positions(sorted_labels, k)
    j_hat = threshold_estimate(positions, is_k, order.size, tie)
    unlabeled = np.flatnonzero(sorted_labels == UNLABELED) + 1
    chosen = order[nearest_unlabeled(unlabeled, j_hat, count) - 1]
    view.buy_all(chosen)
    return int(chosen.size)


ClassOrder = Literal["random", "fewest_first", "most_first"]
"""The order classes are visited in: a fresh random permutation, or by how many observed
labels each class has (fewest or most first, ties by class index)."""
VersionSpace = Literal["paper", "near_optimal"]
"""VReduce's start: :func:`~.reduction.version_space` or :func:`~.reduction.near_optimal_window`."""
CLASS_ORDERS: tuple[str, ...] = get_args(ClassOrder)
VERSION_SPACES: tuple[str, ...] = get_args(VersionSpace)


def _check_choice(option: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{option} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _check_int(option: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{option} must be an integer >= {minimum}, got {value!r}")


def class_visit_order(labels: np.ndarray, num_classes: int, order: ClassOrder, rng: np.random.Generator) -> list[int]:
    """Classes in the order ``order`` says; only ``"random"`` draws from ``rng``."""
    if order == "random":
        return rng.permutation(num_classes).tolist()
    counts = np.bincount(labels[labels != UNLABELED].astype(np.int64), minlength=num_classes)
    keys = counts if order == "fewest_first" else -counts
    return np.argsort(keys, kind="stable").tolist()


class Direct(Strategy):
    """DIRECT, one round of Algorithm 1 per :meth:`select` (see the module docstring).

    ``b_parallel`` is ``B_parallel``: each VReduce iteration sends that many queries at once.
    Exactly ``budget`` labels are bought (fewer only when the pool runs out).

    The paper leaves several choices open; each is an option (``direct_paper`` fixes them
    to the paper's reading). "Minority share" below is the share of a round's labels whose
    true class is a minority class, from ``python -m direct_ray.benchmarks.direct_variants``
    (planted pools, N = 10,000, ~90 % in the last class, budget 200, 5 seeds); "AUC" is the
    mean balanced accuracy of ``python -m direct_ray.benchmarks.direct_learning`` (digits
    and a synthetic features pool). docs/direct.md has the tables and commands.

    ``threshold_tie``
        Which maximiser of ``S`` is phase 2's cut ``j_hat`` (see
        :func:`~.reduction.threshold_estimate`). Paper: Algorithm 1 says closest to N/2
        (``"half"``), section 3 says largest for the minority class, lowest otherwise
        (``"minority"``). Authors' code: lowest (``"lowest"``). Measured: with the paper's
        start, ``"lowest"`` raises the minority share over ``"half"`` most at K = 10
        (0.37 -> 0.46 clean, 0.27 -> 0.41 noisy, B_parallel 10); on these pools
        ``"minority"`` equals ``"half"`` (a rare class's gap lies below N/2). In the
        learning studies (each with the near-optimal start) ``"lowest"`` lost 0.005-0.02 AUC
        to the paper's reading on digits K = 3 and 5, about 2 standard errors in three of
        eight settings, while ``"half"`` stayed within 2 SE everywhere; ``"midpoint"`` (the
        default) is within 2 SE of the paper in all but one of sixteen settings (digits
        K = 3, clean, B_parallel 10: -0.007 +- 0.003) and, unlike ``"half"``, keeps the
        minority share at or above the authors' code in every planted setting.
    ``phase1_fraction``, ``phase1_cap``
        Phase 1 gives each class ``min(phase1_cap, floor(phase1_fraction * B) // K)``
        labels (``phase1_cap=None``: no cap). Paper: ``floor(B / 2K)`` (fraction 0.5, no
        cap). Authors' code: the same with a cap of 60 per class (``min_budget_per_class``;
        with ``B >= 120 K`` it also runs phase 1 on only ``B // 120`` classes, not done here);
        what phase 1 does not spend goes to phase 2. Measured: the cap changes nothing at
        budget 200 (``B / 2K <= 50``); at budget 1,000, K = 2, B_parallel 1, 20 % noise,
        the paper's phase 1 buys 320 labels at 2.7 % minority, capped at 60 it buys 96 at
        40 %. The default keeps the paper's budget: its start already keeps phase 1 short
        there (59 labels at 45 %).
    ``version_space``, ``version_space_slack``
        VReduce's start. Paper (and authors' code): from the last labeled k before the first
        labeled not-k to the first labeled not-k after the last labeled k (``"paper"``);
        under noise one flipped label far down the list stretches it over most of the list.
        ``"near_optimal"``: every hypothesis within ``version_space_slack`` of the best
        empirical loss (:func:`~.reduction.near_optimal_window`); on labels the list
        separates it is the paper's window widened by ``slack`` labeled examples each side,
        so it holds every empirical risk minimiser and VReduce's guarantees on clean labels
        stand. Measured (with ``"lowest"`` ties, slack 0): minority share 0.41 -> 0.62
        at K = 10, B_parallel 10, 20 % noise, and ahead in every planted setting; slack 1 and
        2 are ahead of slack 0 in some settings and behind in others, and slack 0 (the
        default) is exactly the paper's window on separated labels. In the learning studies
        the near-optimal start with the paper's ties never differed from the paper by 2 SE.
    ``phase1_order``, ``phase2_order``
        Class order of each phase. Paper: a random permutation (``"random"``). Authors'
        code: phase 1 by the number of labels each class already has (``"most_first"``
        among the classes it runs; when it drops classes it keeps the fewest-labeled),
        phase 2 random. Measured: ``"most_first"`` with the cap (``authors_like`` in the
        benchmark) against the cap alone moves the minority share by -0.10 to +0.02, lower in
        8 of 12 settings, so the default keeps the paper's random orders.
    """

    name = "direct"

    def __init__(
        self,
        b_parallel: int = 1,
        *,
        threshold_tie: TieRule = "midpoint",
        phase1_fraction: float = 0.5,
        phase1_cap: Optional[int] = None,
        version_space: VersionSpace = "near_optimal",
        version_space_slack: int = 0,
        phase1_order: ClassOrder = "random",
        phase2_order: ClassOrder = "random",
    ) -> None:
        super().__init__(b_parallel)
        _check_choice("threshold_tie", threshold_tie, TIE_RULES)
        if isinstance(phase1_fraction, bool) or not isinstance(phase1_fraction, (int, float, np.floating)) or not (
            0.0 <= phase1_fraction <= 1.0
        ):
            raise ValueError(f"phase1_fraction must be a number in [0, 1], got {phase1_fraction!r}")
        if phase1_cap is not None:
            _check_int("phase1_cap", phase1_cap, 0)
        _check_choice("version_space", version_space, VERSION_SPACES)
        _check_int("version_space_slack", version_space_slack, 0)
        _check_choice("phase1_order", phase1_order, CLASS_ORDERS)
        _check_choice("phase2_order", phase2_order, CLASS_ORDERS)
        self.threshold_tie: TieRule = threshold_tie
        self.phase1_fraction = float(phase1_fraction)
        self.phase1_cap = None if phase1_cap is None else int(phase1_cap)
        self.version_space: VersionSpace = version_space
        self.version_space_slack = int(version_space_slack)
        self.phase1_order: ClassOrder = phase1_order
        self.phase2_order: ClassOrder = phase2_order

    def phase1_budget(self, budget: int, num_classes: int) -> int:
        """Labels per class in phase 1: ``min(cap, floor(fraction * B) // K)``."""
        per_class = int(self.phase1_fraction * budget) // num_classes
        return per_class if self.phase1_cap is None else min(per_class, self.phase1_cap)

    def _select(self, probs, buyer, rng, embeddings: Optional[np.ndarray]) -> None:
        if buyer.asynchronous:  # annotators who each take a query when free: see .async_reduce
            from direct_ray.strategies.async_reduce import direct_round

            return direct_round(self, probs, buyer, rng)
        view = LabelView(buyer)
        num_classes = probs.shape[1]
        maxima = row_max(probs)
        orders: dict[int, np.ndarray] = {}
        per_class = self.phase1_budget(buyer.budget, num_classes)
        slack = None if self.version_space == "paper" else self.version_space_slack
        for k in class_visit_order(view.labels, num_classes, self.phase1_order, rng):
            orders[k] = class_order(probs, k, maxima)
            vreduce(view, orders[k], k, per_class, rng, slack)
        rest = view.remaining
        carry = 0
        for rank, k in enumerate(class_visit_order(view.labels, num_classes, self.phase2_order, rng)):
            quota = rest // num_classes + (rank < rest % num_classes) + carry
            carry = quota - annotate_near_threshold(view, orders[k], k, quota, self.threshold_tie) if quota else 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(b_parallel={self.b_parallel}, threshold_tie={self.threshold_tie!r}, "
            f"phase1_fraction={self.phase1_fraction}, phase1_cap={self.phase1_cap}, "
            f"version_space={self.version_space!r}, version_space_slack={self.version_space_slack}, "
            f"phase1_order={self.phase1_order!r}, phase2_order={self.phase2_order!r})"
        )


# The paper's reading of every open choice: what ``direct_paper`` fixes.
PAPER_OPTIONS: dict = dict(
    threshold_tie="half",
    phase1_fraction=0.5,
    phase1_cap=None,
    version_space="paper",
    version_space_slack=0,
    phase1_order="random",
    phase2_order="random",
)


class DirectPaper(Direct):
    """DIRECT exactly as the paper's Algorithm 1 and 2 read (ties closest to N/2, phase 1
    ``floor(B / 2K)`` per class, the paper's version space, random class orders).

    Kept so that published numbers can be reproduced: for the same generator it buys the
    same examples, in the same order, as DIRECT did before its choices became options.
    """

    name = "direct_paper"

    def __init__(self, b_parallel: int = 1) -> None:
        super().__init__(b_parallel, **PAPER_OPTIONS)
