"""Confusion matrix, in counts and normalised per true class (rows = true, columns = predicted).

>>> import numpy as np
>>> normalise_rows(np.array([[3, 1], [0, 0]])).tolist()
[[0.75, 0.25], [0.0, 0.0]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.i18n import tr
from cnnlab.visualize._common import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ANNOTATE_MAX = 20  # above this many classes the cells carry colour only


def normalise_rows(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its total (a row with no samples stays all zero)."""
    counts = np.asarray(confusion, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], *, lang: str = "en") -> Figure:
    """Counts (left) and row-normalised recall (right), both coloured by the normalised value."""
    matrix = np.asarray(confusion)
    k = len(classes)
    if matrix.shape != (k, k):
        raise CnnlabError(f"confusion matrix is {matrix.shape} but there are {k} classes")
    side = min(7.5, max(3.2, 0.42 * k + 1.6))
    fig = new_figure(2 * side + 0.6, side)
    left, right = fig.subplots(1, 2)
    norm = normalise_rows(matrix)
    _matrix(left, norm, [f"{int(v)}" for v in matrix.ravel()], classes, tr("visualize.confusion.counts", lang), lang)
    _matrix(right, norm, [_share(v) for v in norm.ravel()], classes,
            tr("visualize.confusion.normalised", lang), lang)
    return fig


def _share(value: float) -> str:
    """A cell of the normalised panel: empty for none, ``<1%`` for a few, else a whole percentage."""
    if value == 0:
        return ""
    return "<1%" if value < 0.005 else f"{value:.0%}"


def _matrix(ax: Axes, norm: np.ndarray, labels: list[str], classes: Sequence[str], title: str, lang: str) -> None:
    k = len(classes)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(tr("visualize.confusion.predicted", lang))
    ax.set_ylabel(tr("visualize.confusion.true", lang))
    if k <= 40:
        short = [c if len(c) <= 12 else c[:11] + "…" for c in classes]
        ax.set_xticks(range(k), short, rotation=45 if max(map(len, short)) > 3 else 0, ha="right" if
                      max(map(len, short)) > 3 else "center", fontsize=8)
        ax.set_yticks(range(k), short, fontsize=8)
    if k <= ANNOTATE_MAX:
        size = 9 if k <= 10 else 6
        for idx, text in enumerate(labels):
            r, c = divmod(idx, k)
            colour = "white" if norm[r, c] > 0.55 else ("#222" if norm[r, c] > 0 else "#b8b8b8")
            ax.text(c, r, text, ha="center", va="center", fontsize=size, color=colour)


def save_confusion(confusion: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str], *,
                   lang: str = "en") -> Path:
    """Plot ``confusion`` and save it as PNG."""
    return save_figure(plot_confusion(confusion, classes, lang=lang), path)
