"""Figures stay legible when a dataset's name (a features file's stem) is long."""

from __future__ import annotations

import itertools

import pytest

from analysis import plots
from analysis.budget import budget_summaries
from analysis.curves import group_curves, trial_curves
from direct_ray.results.read import read_table
from tests.unit.analysis.synthetic import realistic_study

LONG_STEM = "embeddings-resnet50-simclr-imagenet-pretrained-fold3-of-5-k2"  # 60 characters


def _draw(root, out_dir) -> dict:
    """Every figure of the study in ``root``, as open matplotlib figures by name (closed by the caller)."""
    plt = plots.pyplot()
    groups = group_curves(trial_curves(read_table(root)))
    kept = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt, "close", kept.append)  # keep each figure open after it is saved
        names = list(plots.all_figures(groups, budget_summaries(groups, None), out_dir))
    return dict(zip(names, kept))


@pytest.fixture(scope="module")
def long_names(tmp_path_factory):
    assert len(LONG_STEM) == 60
    root = realistic_study(tmp_path_factory.mktemp("long"), strategies=("direct", "random"), rounds=3,
                           datasets=((LONG_STEM, 2), ("digits-k2", 2)))
    figures = _draw(root, tmp_path_factory.mktemp("figures"))
    yield figures
    for fig in figures.values():
        plots.pyplot().close(fig)


@pytest.mark.parametrize("name", ["learning_curves", "minority_labels", "noise_robustness", "b_parallel",
                                  "b_parallel_time"])
def test_long_dataset_names_wrap_inside_their_panels(long_names, name):
    fig = long_names[name]
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.get_title():
            continue
        title, panel = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert panel.x0 <= title.x0 and title.x1 <= panel.x1, (ax.get_title(), title, panel)
        boxes.append((ax.get_title(), title))
    assert len(boxes) >= 2
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), (a, b)
    assert any(LONG_STEM[:20] in title and "\n" in title for title, _ in boxes)  # wrapped, not dropped
    heading = [t for t in fig.texts if t.get_text() == fig.get_suptitle()][0]
    assert heading.get_window_extent(renderer).width <= fig.bbox.width


def test_short_titles_stay_on_one_line(tmp_path):
    figures = _draw(realistic_study(tmp_path / "short", strategies=("direct", "random"), rounds=3), tmp_path)
    try:
        titles = [ax.get_title() for ax in figures["learning_curves"].axes if ax.get_visible()]
        assert titles and all("\n" not in t for t in titles)
    finally:
        for fig in figures.values():
            plots.pyplot().close(fig)
