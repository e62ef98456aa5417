"""Training curves: loss and accuracy per epoch, train against validation, from ``metrics.jsonl``.

>>> rows = [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.7, "train_acc": 0.7, "val_acc": 0.8},
...         {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "train_acc": 0.85, "val_acc": 0.83}]
>>> c = curves_data(rows)
>>> c.epochs.tolist(), c.best_epoch
([1, 2], 2)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.errors import RunError
from cnnlab.i18n import tr
from cnnlab.visualize._common import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SERIES = ("train_loss", "val_loss", "train_acc", "val_acc")


@dataclass(frozen=True)
class Curves:
    """Per-epoch series as float arrays (NaN where a value is missing)."""

    epochs: np.ndarray
    series: dict[str, np.ndarray]

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the highest validation accuracy (else the lowest validation loss)."""
        for key, pick in (("val_acc", np.nanargmax), ("val_loss", np.nanargmin)):
            values = self.series[key]
            if np.isfinite(values).any():
                return int(self.epochs[int(pick(values))])
        return None


def curves_data(metrics: Sequence[Mapping[str, Any]]) -> Curves:
    """Collect the four series from the per-epoch rows of ``metrics.jsonl``."""
    if not metrics:
        raise RunError("this run has no finished epoch yet (metrics.jsonl is empty); nothing to plot")
    epochs = np.array([int(row.get("epoch", k + 1)) for k, row in enumerate(metrics)])
    series = {key: np.array([_number(row.get(key)) for row in metrics], dtype=np.float64) for key in SERIES}
    return Curves(epochs, series)


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def plot_curves(curves: Curves, *, lang: str = "en") -> Figure:
    """Two panels: loss (left) and accuracy (right), train solid, validation dashed; best epoch marked."""
    fig = new_figure(9.0, 3.4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    _panel(loss_ax, curves, "loss", tr("visualize.curves.loss", lang), lang)
    _panel(acc_ax, curves, "acc", tr("visualize.curves.accuracy", lang), lang)
    best = curves.best_epoch
    if best is not None and len(curves.epochs) > 1:
        for ax in (loss_ax, acc_ax):
            ax.axvline(best, color="#999", linestyle=":", linewidth=1)
        acc_ax.annotate(tr("visualize.curves.best", lang, epoch=best), xy=(best, 0.02),
                        xycoords=("data", "axes fraction"), fontsize=8, color="#555", ha="center")
    return fig


def _panel(ax: Axes, curves: Curves, what: str, title: str, lang: str) -> None:
    marker = "o" if len(curves.epochs) <= 30 else None
    for split, style, colour in (("train", "-", "#1f77b4"), ("val", "--", "#d62728")):
        values = curves.series[f"{split}_{what}"]
        if np.isfinite(values).any():
            ax.plot(curves.epochs, values, style, color=colour, marker=marker, markersize=3,
                    label=tr(f"visualize.curves.{split}", lang))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(tr("visualize.curves.epoch", lang))
    ax.grid(alpha=0.3)
    if what == "acc":
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    if len(curves.epochs) <= 12:
        ax.set_xticks(curves.epochs)
    if ax.lines:
        ax.legend(fontsize=8)


def save_curves(metrics: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, lang: str = "en") -> Path:
    """Plot the curves of ``metrics`` (rows of ``metrics.jsonl``) and save them as PNG."""
    return save_figure(plot_curves(curves_data(metrics), lang=lang), path)
