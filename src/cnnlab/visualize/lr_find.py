"""Render an ``LRFindResult`` as a PNG: loss against learning rate (log scale), suggestion marked.

Used by ``cnnlab lr-find``. matplotlib's Agg backend is used
through a bare ``Figure`` (no pyplot global state), and the PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.i18n import tr
from cnnlab.utils.io import atomic_path
from cnnlab.visualize.fonts import prepare_text

if TYPE_CHECKING:
    from cnnlab.train.lr_find import LRFindResult


def plot_lr_find(result: LRFindResult, path: str | Path, *, title: str = "", lang: str = "en") -> Path:
    """Draw raw and smoothed loss vs lr, mark the suggestion and the minimum, save to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lrs = np.asarray(result.lrs)
    if len(lrs):
        ax.plot(lrs, result.losses, color="#9ab", linewidth=0.8, label=tr("use.lr.plot.raw", lang))
        ax.plot(lrs, result.smoothed, color="#1f5fa8", linewidth=2.0, label=tr("use.lr.plot.smoothed", lang))
        ax.set_ylim(*_y_limits(np.asarray(result.smoothed), np.asarray(result.losses)))
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="#d2462a", linestyle="--", linewidth=1.4,
                   label=tr("use.lr.plot.suggestion", lang, lr=f"{result.suggestion:.2g}", method=result.method))
    if result.lr_at_min is not None:
        ax.axvline(result.lr_at_min, color="#888", linestyle=":", linewidth=1.0,
                   label=tr("use.lr.plot.minimum", lang, lr=f"{result.lr_at_min:.2g}"))
    ax.set_xscale("log")
    ax.set_xlabel(tr("use.lr.plot.xlabel", lang))
    ax.set_ylabel(tr("use.lr.plot.ylabel", lang))
    ax.set_title(title or tr("use.lr.plot.title", lang))
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    prepare_text(fig)  # a spec named in any script: drawable, no glyph warnings
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _y_limits(smoothed: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    """Keep the useful part visible: a diverging tail must not squash the descent."""
    finite = smoothed[np.isfinite(smoothed)]
    if not len(finite):
        return 0.0, 1.0
    low = float(min(finite.min(), np.nanmin(raw[np.isfinite(raw)]) if np.isfinite(raw).any() else finite.min()))
    high = float(finite[0]) * 1.5 if finite[0] > 0 else float(finite.max())
    high = max(high, float(finite.max()) if finite.max() < 2 * finite[0] else high)
    pad = 0.05 * max(high - low, 1e-6)
    return max(0.0, low - pad), high + pad
