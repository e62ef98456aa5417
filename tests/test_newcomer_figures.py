"""Issue 16: every figure's text fits its canvas, for any number of classes and any name length.

Each figure is encoded as the report and ``cnnlab show`` encode it (``figure_png``), then every text
matplotlib drew is measured with ``Text.get_window_extent`` against the figure's canvas.
Run: ``PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_newcomer_figures.py`` (~10 s).
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from cnnlab.visualize import (
    CamResult,
    curves_data,
    figure_png,
    plot_cam,
    plot_cam_grid,
    plot_confusion,
    plot_curves,
    plot_mistakes,
)

LONG = "golden_retriever_puppies_in_the_garden"
CASES = {"2 short": ["a", "b"], "2 long": [LONG + "_a", LONG + "_b"], "50": [f"class{i}" for i in range(50)],
         "12 long": [f"{LONG}_{i}" for i in range(12)]}


def clipped(fig: Figure) -> list[str]:
    """The texts matplotlib drew that cross the canvas edge (undrawn off-view tick labels excluded)."""
    figure_png(fig)  # the same path as the report and `cnnlab show`
    renderer = fig.canvas.get_renderer()
    skip: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            drawn = {id(t) for t in axis._update_ticks()}
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if id(tick) not in drawn or not ax.axison:  # set_axis_off: no ticks drawn
                    skip.update((id(tick.label1), id(tick.label2)))
    box = fig.bbox
    bad = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or id(t) in skip:
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < box.x0 - 1 or bb.y0 < box.y0 - 1 or bb.x1 > box.x1 + 1 or bb.y1 > box.y1 + 1:
            bad.append(t.get_text())
    return bad


@pytest.mark.parametrize(("case", "lang"), [(c, "en") for c in sorted(CASES)] + [("2 short", "pt"), ("2 long", "pt")])
def test_confusion_text_fits(case: str, lang: str) -> None:
    classes = CASES[case]
    k = len(classes)
    matrix = np.arange(k * k).reshape(k, k) * 1000
    fig = plot_confusion(matrix, classes, lang=lang)
    assert clipped(fig) == []


def cam(k: int, target: int = 0, predicted: int = 1) -> CamResult:
    probs = np.full(k, 1.0 / k, np.float32)
    return CamResult(heatmap=np.random.default_rng(0).random((8, 8)), layer=3, target=target, predicted=predicted,
                     probabilities=probs)


@pytest.mark.parametrize("case", ["2 long", "50"])
def test_cam_and_mistake_text_fits(case: str) -> None:
    classes = CASES[case]
    k = len(classes)
    images = np.random.default_rng(0).integers(0, 255, (3, 3, 8, 8), dtype=np.uint8)
    assert clipped(plot_cam(images[0], cam(k), classes)) == []
    assert clipped(plot_cam_grid(images[:1], [cam(k)], np.array([0]), classes)) == []
    labels, preds = np.array([0, 1, 0]), np.array([1, 0, 1])
    probs = np.full((3, k), 1.0 / k, np.float32)
    for n in (1, 3):  # one mistake: the narrowest grid, under the widest title
        assert clipped(plot_mistakes(images, labels, preds, probs, np.arange(n), classes, total=123456)) == []


def test_curves_text_fits() -> None:
    metrics = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 0.5, "val_acc": 0.4 + e / 100}
               for e in range(1, 4)]
    for lang in ("en", "pt"):
        assert clipped(plot_curves(curves_data(metrics), lang=lang)) == []


def test_the_two_class_confusion_title_is_whole() -> None:
    """The title stays whole (a smaller font, not a cut word): 'recall on the diagonal'."""
    fig = plot_confusion(np.array([[5, 1], [2, 7]]), ["cat", "dog"])
    figure_png(fig)
    assert any(ax.get_title().endswith("(recall on the diagonal)") for ax in fig.axes)
