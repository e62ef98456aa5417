"""Convolution kernels as image grids: what the first layers look for (edges, colour blobs).

The first layer of an RGB network is shown in colour (one tile per filter); deeper layers show each
filter as a strip of its per-input-channel slices. Every filter is normalised to its own range.

>>> import torch.nn as nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 5), nn.ReLU())
>>> grid = filter_grid(net, 0)
>>> grid.weights.shape, grid.colour
((8, 3, 5, 5), True)
>>> fig = plot_filters(grid)   # a matplotlib Figure; save_figure(fig, "filters.png") writes it
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.i18n import tr
from cnnlab.visualize._common import (
    check_layer_index,
    conv_layer_indices,
    find_conv,
    layer_kind,
    model_layers,
    mosaic,
    new_figure,
    save_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn

STRIP_GAP = np.nan  # drawn light blue between the channel slices of one filter
OUTER_GAP = 2.0  # above vmax: drawn white between filters


@dataclass(frozen=True)
class FilterGrid:
    """The kernels of one conv layer, ready to draw.

    ``weights`` is ``(F, C, kh, kw)`` for the filters and channels shown, each filter scaled to [0, 1].
    """

    layer: int
    weights: np.ndarray
    colour: bool
    total_filters: int
    total_channels: int

    @property
    def shown_filters(self) -> int:
        return int(self.weights.shape[0])

    @property
    def shown_channels(self) -> int:
        return int(self.weights.shape[1])

    def tiles(self) -> np.ndarray:
        """One tile per filter: ``(F, kh, kw, 3)`` in colour, ``(F, kh, kw)`` for one channel,
        else ``(F, kh, C*(kw+1)-1)`` — the channel slices side by side, separated by a white column."""
        w = self.weights  # (F, C, kh, kw)
        if self.colour:
            return np.transpose(w, (0, 2, 3, 1))  # (F, kh, kw, 3)
        if w.shape[1] == 1:
            return w[:, 0]  # (F, kh, kw)
        return np.stack([mosaic(f, cols=f.shape[0], pad=1, fill=STRIP_GAP) for f in w])  # (F, kh, C*(kw+1)-1)


def filter_grid(
    model: nn.Module,
    layer: int | None = None,
    *,
    max_filters: int = 64,
    max_channels: int = 8,
) -> FilterGrid:
    """Collect the kernels of conv layer ``layer`` (default: the first conv layer) of ``model``.

    Shows at most ``max_filters`` filters and, for deeper layers, ``max_channels`` input channels.
    """
    convs = conv_layer_indices(model)
    if not convs:
        raise CnnlabError("this network has no conv layers, so it has no filters to show")
    count = len(model_layers(model))
    kinds = [layer_kind(m) for m in model_layers(model)]
    index = convs[0] if layer is None else check_layer_index(layer, count, convs, "conv layer", kinds)
    conv = find_conv(model_layers(model)[index])
    assert conv is not None
    weight = conv.weight.detach().float().cpu().numpy()  # (F, C/groups, kh, kw)
    total_f, total_c = weight.shape[:2]
    colour = total_c == 3 and index == convs[0]
    shown = weight[:max_filters] if colour else weight[:max_filters, :max_channels]
    lo = shown.min(axis=(1, 2, 3), keepdims=True)
    hi = shown.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    normalised = ((shown - lo) / span).astype(np.float32)  # (F, C, kh, kw) in [0, 1]
    return FilterGrid(index, normalised, colour, int(total_f), int(total_c))


def plot_filters(grid: FilterGrid, *, lang: str = "en", kind: str = "conv") -> Figure:
    """Draw ``grid`` as one image: a tile per filter, labelled with its index, titled with the layer."""
    tiles = grid.tiles()
    n = grid.shown_filters
    th, tw = tiles.shape[1:3]
    cols = _columns(n, tw / th)
    pad = max(2, th // 2)
    image = mosaic(tiles, cols=cols, pad=pad, fill=1.0 if grid.colour else OUTER_GAP)
    scale = 0.28 if grid.colour or grid.weights.shape[1] == 1 else 0.11  # inches per kernel pixel
    aspect = image.shape[0] / image.shape[1]
    img_w = min(10.5, max(3.5, cols * tw * scale))
    img_h = img_w * aspect
    if img_h > 12.0:
        img_h, img_w = 12.0, 12.0 / aspect
    width, height = max(img_w + 0.3, 7.0), img_h + 1.0
    fig = new_figure(width, height, layout=None)
    ax = fig.add_axes(((width - img_w) / 2 / width, 0.5 / height, img_w / width, img_h / height))
    from matplotlib import colormaps

    cmap = None if grid.colour else colormaps["gray"].with_extremes(bad="#9dbbe0", over="white")
    ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if n <= 64:
        size = 7 if cols <= 8 else 5.5
        for k in range(n):
            r, c = divmod(k, cols)
            ax.text(c * (tw + pad) - 0.5, r * (th + pad) - 0.55, str(k), fontsize=size, color="#444", va="bottom")
    kh, kw = grid.weights.shape[2:]
    title = tr("visualize.filters.title", lang, layer=grid.layer, kind=kind, shown=n,
               total=grid.total_filters, kh=kh, kw=kw)
    fig.text(0.5, 1 - 0.08 / height, title, ha="center", va="top", fontsize=10)
    fig.text(0.5, 0.04 / height, _note(grid, lang), ha="center", va="bottom", fontsize=7.5, color="#555",
             wrap=True)
    return fig


def _note(grid: FilterGrid, lang: str) -> str:
    if grid.colour:
        note = tr("visualize.filters.colour_note", lang)
    elif grid.weights.shape[1] == 1:
        note = tr("visualize.filters.grey_note", lang)
    else:
        note = tr("visualize.filters.channels_note", lang, shown=grid.shown_channels,
                  total=grid.total_channels, last=grid.shown_channels - 1)
    if grid.shown_filters < grid.total_filters:
        note += " · " + tr("visualize.filters.more", lang, shown=grid.shown_filters, total=grid.total_filters)
    return note


def _columns(n: int, aspect: float) -> int:
    """Columns that make the grid roughly 3:2 landscape for tiles of width/height ``aspect``."""
    cols = max(1, round(math.sqrt(n * 1.5 / max(aspect, 1e-6))))
    return min(n, cols, 16)


def save_filters(
    model: nn.Module, path: str | os.PathLike[str], layer: int | None = None, *, lang: str = "en", **kw: int
) -> Path:
    """Compute, draw and save the filter grid of ``layer`` as PNG; returns the path written."""
    grid = filter_grid(model, layer, **kw)
    fig = plot_filters(grid, lang=lang)
    return save_figure(fig, path)
