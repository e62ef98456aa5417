"""The validation images the model gets most wrong: highest loss first, with true/predicted labels.

>>> import numpy as np
>>> top_mistakes(np.array([0.1, 2.0, 0.5, 3.0]), np.array([0, 1, 0, 0]), np.array([0, 0, 0, 1]), 5).tolist()
[3, 1]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.i18n import integer, tr
from cnnlab.visualize._common import caption, display_image, grid_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def top_mistakes(losses: np.ndarray, predictions: np.ndarray, labels: np.ndarray, n: int = 16) -> np.ndarray:
    """Indices of up to ``n`` misclassified samples, highest loss first (ties: lower index first)."""
    losses = np.asarray(losses, dtype=np.float64)
    wrong = np.flatnonzero(np.asarray(predictions) != np.asarray(labels))
    order = np.lexsort((wrong, -losses[wrong]))  # primary: loss descending; secondary: index
    return wrong[order][:n]


def plot_mistakes(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    indices: np.ndarray,
    classes: Sequence[str],
    *,
    total: int | None = None,
    lang: str = "en",
) -> Figure:
    """A grid of ``images[indices]`` (uint8 ``(N, C, H, W)``) captioned ``true / predicted (p)``."""
    n = len(indices)
    cols = min(8, max(1, n))
    rows = max(1, -(-n // cols))
    fig, grid = grid_figure(rows, cols, 1.2, 1.2, caption_h=0.38)
    axes = grid.ravel()
    for ax, idx in zip(axes, indices, strict=False):
        true, pred = int(labels[idx]), int(predictions[idx])
        ax.imshow(display_image(images[idx]), cmap="gray", interpolation="nearest")
        caption(ax, tr("visualize.mistakes.caption", lang, true=_name(classes, true), pred=_name(classes, pred),
                       prob=float(probabilities[idx, pred]), ptrue=float(probabilities[idx, true])),
                size=7.5, color="#a00")
    if n == 0:
        axes[0].text(0.5, 0.5, tr("visualize.mistakes.none", lang), ha="center", va="center")
    seen = len(labels) if total is None else total
    fig.suptitle(tr("visualize.mistakes.title", lang, n=n, total=integer(seen, lang)), fontsize=10, y=0.995, va="top")
    return fig


def _name(classes: Sequence[str], index: int) -> str:
    name = classes[index] if 0 <= index < len(classes) else str(index)
    return name if len(name) <= 10 else name[:9] + "…"


def save_mistakes(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray,
                  losses: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str], *, n: int = 16,
                  lang: str = "en") -> Path:
    """Pick the ``n`` highest-loss mistakes and save their grid as PNG."""
    idx = top_mistakes(losses, predictions, labels, n)
    return save_figure(plot_mistakes(images, labels, predictions, probabilities, idx, classes, lang=lang), path)
