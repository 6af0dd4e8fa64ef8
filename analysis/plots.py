"""The report's figures (PNG, matplotlib with the Agg backend).

matplotlib is imported only when a figure is drawn, so the tables work without it:
:func:`pyplot` returns ``None`` when it is missing and the report says so.

Every figure uses the same visual code: one colour per strategy, one line style per
``b_parallel``, a shared legend below the panels, and shaded or barred ± one standard error
over seeds. Panel titles name the dataset, which is a features file's stem and can be long:
a title wider than its panel is wrapped onto more lines, so titles never run into each other.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from analysis.budget import BudgetSummary, b_parallel_series, robustness_series
from analysis.curves import Groups, Method, mean_curve, strategies
from direct_ray.strategies import STRATEGY_NAMES

_LINESTYLES = ("-", "--", ":", "-.")
_PANEL = (4.6, 3.4)  # inches per panel
_MIN_WIDTH = 9.2  # inches: room for the title and a legend of a few columns
_LEGEND_ENTRY_WIDTH = 2.25  # inches per legend column (labels like "confidence, b_parallel=5")
_DPI = 110
_TITLE_SHARE = 0.95  # of its panel's width that a panel title may take


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or ``None`` if matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class _Style:
    """Colours per strategy and line styles per b_parallel, fixed for the whole report."""

    def __init__(self, strategy_names: Sequence[str], b_parallels: Sequence[int]) -> None:
        plt = pyplot()
        cmap = plt.get_cmap("tab20")
        palette = [cmap(2 * i) for i in range(10)] + [cmap(2 * i + 1) for i in range(10)]
        # Registry order first, so a strategy keeps its colour from one study to the next.
        order = list(STRATEGY_NAMES) + sorted(set(strategy_names) - set(STRATEGY_NAMES))
        self.colors = {s: palette[order.index(s) % len(palette)] for s in strategy_names}
        self.lines = {b: _LINESTYLES[i % len(_LINESTYLES)] for i, b in enumerate(sorted(b_parallels))}

    def of(self, method: Method) -> dict:
        return {"color": self.colors[method.strategy], "linestyle": self.lines[method.b_parallel]}


def _style_for(groups: Groups) -> _Style:
    return _Style(strategies(groups), sorted({m.b_parallel for ms in groups.values() for m in ms}))


def _grid(plt, n_panels: int, ncols: int):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(_PANEL[0] * ncols, _MIN_WIDTH), _PANEL[1] * nrows + 0.9), squeeze=False,
        layout="constrained",
    )
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _fit(text_artist, width: float, renderer) -> None:
    """Wrap ``text_artist`` onto as many lines as it needs to be at most ``width`` pixels wide.

    Breaks at spaces and hyphens where it can, inside a word (a long file stem) where it must.
    """
    text = " ".join(text_artist.get_text().split())
    text_artist.set_text(text)
    measured = text_artist.get_window_extent(renderer).width
    if measured <= width or not text:
        return
    chars = max(1, int(len(text) * width / measured))
    while True:
        text_artist.set_text(textwrap.fill(text, width=chars, break_long_words=True))
        if chars == 1 or text_artist.get_window_extent(renderer).width <= width:
            return
        chars -= 1


def fit_titles(fig, heading=None) -> None:
    """Wrap every panel title to its panel's width, and ``heading`` (the figure's title) to the
    figure's; the layout is computed first, so the widths are the ones the saved figure has."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if ax.get_visible() and ax.get_title():
            _fit(ax.title, _TITLE_SHARE * ax.get_window_extent(renderer).width, renderer)
    if heading is not None:
        _fit(heading, _TITLE_SHARE * fig.bbox.width, renderer)


def _finish(plt, fig, axes, path: Path, title: str, legend_rows: int = 1) -> Path:
    """Shared legend below the panels (``legend_rows`` rows when it fits), title, titles fitted, save, close."""
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if labels:
        fits = max(1, int(fig.get_size_inches()[0] // _LEGEND_ENTRY_WIDTH))
        ncol = min(fits, math.ceil(len(labels) / max(1, legend_rows)))
        fig.legend([handles[label] for label in labels], labels, loc="outside lower center",
                   ncol=ncol, fontsize="small", frameon=False)
    fit_titles(fig, fig.suptitle(title))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def _n_b_parallel(groups: Groups) -> int:
    return len({m.b_parallel for ms in groups.values() for m in ms})


def _curve_figure(groups: Groups, metric: str, ylabel: str, path: Path, title: str, balanced_reference: bool) -> Path:
    plt = pyplot()
    style = _style_for(groups)
    fig, axes = _grid(plt, len(groups), ncols=3)
    for ax, (setting, methods) in zip(axes, groups.items()):
        for method, trials in methods.items():
            curve = mean_curve(trials, metric)
            ax.plot(curve.n_labeled, curve.mean, label=method.label, marker=".", markersize=4, **style.of(method))
            if curve.n_seeds > 1:
                ax.fill_between(curve.n_labeled, curve.mean - curve.se, curve.mean + curve.se,
                                color=style.colors[method.strategy], alpha=0.15, linewidth=0)
        if balanced_reference:
            xs = np.array(ax.get_xlim())
            k = setting.num_classes
            ax.plot(xs, xs * (k - 1) / k, color="0.6", linestyle=":", linewidth=1,
                    label="class-balanced picks ((K-1)/K of labels)")
            ax.set_xlim(*xs)
        ax.set_title(setting.label, fontsize="medium")
        ax.set_xlabel("labels bought (n_labeled)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    return _finish(plt, fig, axes, path, title, legend_rows=_n_b_parallel(groups))


def learning_curves(groups: Groups, path: Path) -> Path:
    """Balanced accuracy versus labels bought, one panel per setting, one line per method."""
    return _curve_figure(groups, "balanced_accuracy", "balanced accuracy (test)", path,
                         "Learning curves: mean over seeds, band = ± 1 standard error", balanced_reference=False)


def minority_labels(groups: Groups, path: Path) -> Path:
    """Minority-class labels bought (by true class) versus labels bought, with the balanced reference."""
    return _curve_figure(groups, "n_minority_labels", "minority-class labels bought", path,
                         "Minority labels bought: mean over seeds, band = ± 1 standard error", balanced_reference=True)


def _errorbar(ax, xs, estimates, label, style, **extra) -> None:
    means = np.array([e.mean for e in estimates])
    ses = np.array([0.0 if math.isnan(e.se) else e.se for e in estimates])
    ax.errorbar(xs, means, yerr=ses, label=label, marker="o", markersize=4, capsize=3, **style, **extra)


def noise_robustness(groups: Groups, summaries: Sequence[BudgetSummary], path: Path) -> Path | None:
    """Balanced accuracy at the budget and normalised AUC versus noise rate, one row per
    (dataset, noise model); ``None`` when the study has no noise model besides ``none``."""
    series = robustness_series(summaries)
    if not series:
        return None
    plt = pyplot()
    style = _style_for(groups)
    fig, axes = _grid(plt, 2 * len(series), ncols=2)
    for row, ((dataset, noise_model), methods) in enumerate(series.items()):
        acc_ax, auc_ax = axes[2 * row], axes[2 * row + 1]
        budget = next(iter(methods.values()))[0].budget
        for method, items in methods.items():
            rates = [i.setting.noise_rate for i in items]
            _errorbar(acc_ax, rates, [i.accuracy for i in items], method.label, style.of(method))
            _errorbar(auc_ax, rates, [i.auc for i in items], method.label, style.of(method))
        acc_ax.set_title(f"{dataset}, {noise_model}: balanced accuracy at {budget.high} labels", fontsize="medium")
        auc_ax.set_title(f"{dataset}, {noise_model}: area under curve, {budget.low}-{budget.high} labels",
                         fontsize="medium")
        for ax, ylabel in ((acc_ax, "balanced accuracy"), (auc_ax, "normalised AUC (mean bal. acc.)")):
            ax.set_xticks(sorted({i.setting.noise_rate for items in methods.values() for i in items}))
            ax.set_xlabel("noise rate")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    return _finish(plt, fig, axes, path, "Noise robustness: mean over seeds, bars = ± 1 standard error",
                   legend_rows=_n_b_parallel(groups))


def b_parallel_effect(groups: Groups, summaries: Sequence[BudgetSummary], path: Path, metric: str) -> Path | None:
    """Per setting, one strategy per line: ``metric`` (``"accuracy"`` at the budget or
    ``"select_seconds"`` per round) versus ``b_parallel``.

    A hollow marker is a run whose strategy could not use the parallel annotators (its
    ``effective_b_parallel`` is below ``b_parallel``: GALAXY runs sequentially); the legend
    says so. ``None`` when the study has a single ``b_parallel``.
    """
    if _n_b_parallel(groups) < 2:
        return None
    series = b_parallel_series(summaries)
    plt = pyplot()
    style = _style_for(groups)
    fig, axes = _grid(plt, len(series), ncols=3)
    for ax, (setting, by_strategy) in zip(axes, series.items()):
        budget = next(iter(by_strategy.values()))[0].budget
        for strategy, items in by_strategy.items():
            xs = [i.method.b_parallel for i in items]
            values = [getattr(i, metric) for i in items]
            sequential = [i.effective_b_parallel < i.method.b_parallel for i in items]
            label = strategy
            if any(sequential):
                effective = sorted({i.effective_b_parallel for i in items})
                label += f" (ran with effective b_parallel {', '.join(map(str, effective))})"
            _errorbar(ax, xs, values, label, {"color": style.colors[strategy], "linestyle": "-"})
            hollow = [(x, v.mean) for x, v, seq in zip(xs, values, sequential) if seq]
            if hollow:
                ax.plot(*zip(*hollow), linestyle="none", marker="o", markersize=9, markerfacecolor="white",
                        markeredgecolor=style.colors[strategy], zorder=3)
        ax.set_xticks(sorted({m.b_parallel for m in groups[setting]}))
        ax.set_xlabel("b_parallel (annotators asked at once)")
        if metric == "accuracy":
            ax.set_ylabel(f"balanced accuracy at {budget.high} labels")
        else:
            ax.set_ylabel("selection time per round (s)")
            ax.set_ylim(bottom=0)
        ax.set_title(setting.label, fontsize="medium")
        ax.grid(alpha=0.3)
    what = "balanced accuracy at the budget" if metric == "accuracy" else "selection time per round"
    return _finish(plt, fig, axes, path, f"b_parallel vs {what} (mean ± 1 SE over seeds; hollow: ran sequentially)")


def all_figures(groups: Groups, summaries: Sequence[BudgetSummary], out_dir: Path) -> Mapping[str, Path]:
    """Draw every figure that applies to the study into ``out_dir``; ``{name: path}``."""
    figures: dict[str, Path | None] = {
        "learning_curves": learning_curves(groups, out_dir / "learning_curves.png"),
        "minority_labels": minority_labels(groups, out_dir / "minority_labels.png"),
        "noise_robustness": noise_robustness(groups, summaries, out_dir / "noise_robustness.png"),
        "b_parallel": b_parallel_effect(groups, summaries, out_dir / "b_parallel.png", "accuracy"),
        "b_parallel_time": b_parallel_effect(groups, summaries, out_dir / "b_parallel_time.png", "select_seconds"),
    }
    return {name: p for name, p in figures.items() if p is not None}


__all__ = ["all_figures", "b_parallel_effect", "learning_curves", "minority_labels", "noise_robustness", "pyplot"]
