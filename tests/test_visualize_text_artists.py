"""text_artists: the texts a drawing can show, without walking the ticks of axis-off image cells.

The fast walk must not change a single pixel: each figure is encoded once with it and once with the
reference walk (``fig.findobj(Text)``, every tick created), and the PNG bytes must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.text import Text

from cnnlab.visualize import fit, plot_confusion, plot_mistakes
from cnnlab.visualize._common import figure_png, new_figure
from cnnlab.visualize.fit import text_artists


def _reference(fig):  # noqa: ANN001, ANN202 - the walk before the fast path
    return fig.findobj(Text)


def _mistakes_figure():  # noqa: ANN202
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 1, 10, 10), dtype=np.uint8)
    labels = np.arange(12) % 3
    preds = (labels + 1) % 3
    probs = np.full((12, 3), 0.1, np.float32)
    probs[np.arange(12), preds] = 0.8
    classes = ["cat", "a_very_long_class_name_that_needs_shrinking", "dog"]
    return plot_mistakes(images, labels, preds, probs, np.arange(8), classes)


def _confusion_figure():  # noqa: ANN202
    return plot_confusion(np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]]), ["ant", "bee", "a_long_name_of_a_class"])


def test_axis_off_cells_keep_their_own_texts_but_not_their_ticks() -> None:
    fig = new_figure(3, 2)
    on, off = fig.subplots(1, 2)
    on.set_xticks([0, 1], ["left", "right"])
    on.set_title("on")
    off.set_title("off")
    off.text(0.5, 0.5, "inside")
    off.set_axis_off()
    fig.suptitle("whole")
    got = text_artists(fig)
    assert {"on", "off", "inside", "whole", "left", "right"} <= {t.get_text() for t in got}
    off_axis = {id(t) for axis in (off.xaxis, off.yaxis) for t in axis.findobj(Text)}
    assert off_axis and not off_axis & {id(t) for t in got}  # the off cell's tick labels are left out
    everything = fig.findobj(Text)  # the reference walk
    assert {id(t) for t in everything} - off_axis == {id(t) for t in got}  # and nothing else is


@pytest.mark.parametrize("make", [_mistakes_figure, _confusion_figure])
def test_png_bytes_equal_the_reference_walk(make, monkeypatch) -> None:  # noqa: ANN001
    fast = figure_png(make(), 90)
    monkeypatch.setattr(fit, "text_artists", _reference)  # fonts.py imports it from fit at call time
    slow = figure_png(make(), 90)
    assert fast == slow
