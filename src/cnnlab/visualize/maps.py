"""Feature maps: what each conv/pool layer outputs for one image, captioned with the layer's shape.

>>> import torch, torch.nn as nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2))
>>> maps = feature_maps(net, torch.zeros(1, 8, 8), layers=[0, 1])
>>> [m.shape for m in maps]
[(4, 8, 8), (4, 4, 4)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.i18n import tr
from cnnlab.visualize._common import (
    as_batch,
    caption,
    capture_outputs,
    check_layer_index,
    display_image,
    eval_mode,
    layer_kind,
    model_layers,
    mosaic,
    new_figure,
    save_figure,
)

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import nn

SPATIAL_KINDS = ("conv", "pool", "residual")
FLAT_MAX = 512  # values drawn for a flat (dense/flatten) layer


@dataclass(frozen=True)
class FeatureMaps:
    """The activations of one layer for one image: ``values`` is ``(C, H, W)`` float32."""

    layer: int
    kind: str
    values: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.values.shape)


def layer_kinds(model: nn.Module) -> list[str]:
    """Each layer's kind: from the model's own analysis (``cnnlab.model.build``), else guessed from modules."""
    rows = getattr(getattr(model, "analysis", None), "layers", None)
    layers = model_layers(model)
    if isinstance(rows, list) and len(rows) == len(layers):
        return [str(row.kind) for row in rows]
    return [layer_kind(m) for m in layers]


def spatial_layers(model: nn.Module, kinds: Sequence[str] | None = None) -> list[int]:
    """Indices of the conv, pool and residual layers (``kinds`` from an analysis win over guessing)."""
    found = kinds if kinds is not None else layer_kinds(model)
    return [i for i, k in enumerate(found) if k in SPATIAL_KINDS]


def feature_maps(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    layers: Sequence[int] | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> list[FeatureMaps]:
    """Run one preprocessed image ``(C, H, W)`` through ``model`` and return the outputs of ``layers``.

    ``layers`` defaults to every conv/pool/residual layer. ``kinds`` (``analysis.layers[i].kind``) names the
    layers in captions. The model's train/eval flags are restored and the hooks removed afterwards.
    """
    import torch

    count = len(model_layers(model))
    names = list(kinds) if kinds is not None else layer_kinds(model)
    chosen = spatial_layers(model, names) if layers is None else [check_layer_index(i, count, what="layer") for i in layers]
    if not chosen:
        raise CnnlabError("this network has no conv or pool layers, so there are no feature maps to show")
    x = as_batch(image)  # (1, C, H, W)
    with eval_mode(model), torch.no_grad(), capture_outputs(model, chosen) as outs:
        model(x)
    result = []
    for i in chosen:
        values = outs[i][0].float().cpu().numpy()  # (C, H, W) or (N,)
        result.append(FeatureMaps(i, names[i], values))
    return result


def plot_feature_maps(
    maps: Sequence[FeatureMaps],
    image: np.ndarray | None = None,
    *,
    max_channels: int = 16,
    lang: str = "en",
) -> Figure:
    """One row per layer: up to ``max_channels`` channels, each scaled to its own range.

    ``image`` (``(C, H, W)``, uint8 or float) is drawn first as the reference input.
    """
    width, margin, caption_h = 10.0, 0.1, 0.28
    most = max((len(m.values) if m.values.ndim == 3 else 1 for m in maps), default=1)
    tile = (width - 2 * margin) / max(6, min(max_channels, most))  # inches per channel tile
    rows: list[tuple[str, FeatureMaps | None]] = ([("input", None)] if image is not None else [])
    rows += [("layer", fm) for fm in maps]
    height = len(rows) * (tile + caption_h) + margin
    fig = new_figure(width, height, layout=None)
    for r, (_, fm) in enumerate(rows):
        bottom = height - (r + 1) * (tile + caption_h)
        ax = fig.add_axes((margin / width, bottom / height, 1 - 2 * margin / width, tile * 0.92 / height))
        ax.set_anchor("W")
        if fm is None:
            ax.imshow(display_image(image), cmap="gray", interpolation="nearest")  # type: ignore[arg-type]
            caption(ax, tr("visualize.maps.input", lang), size=9, left=True)
            ax.set_axis_off()
        else:
            _draw_row(ax, fm, max_channels, lang)
    return fig


def _draw_row(ax: Axes, fm: FeatureMaps, max_channels: int, lang: str) -> None:
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="white")
    shape = "×".join(str(d) for d in fm.shape)
    text = tr("visualize.maps.caption", lang, layer=fm.layer, kind=fm.kind, shape=shape)
    if fm.values.ndim != 3:  # a flat layer (dense, flatten): one strip of its values, scaled together
        flat = fm.values.reshape(-1)[:FLAT_MAX]  # (n,)
        lo, hi = float(flat.min()), float(flat.max())
        strip = ((flat - lo) / (hi - lo if hi > lo else 1.0))[None, :]  # (1, n)
        ax.imshow(strip, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_anchor("C")
        if flat.size < fm.values.size:
            text += " · " + tr("visualize.maps.more_values", lang, shown=flat.size, total=fm.values.size)
        caption(ax, text, size=9, left=True)
        ax.set_axis_off()
        return
    values = fm.values  # (C, H, W)
    shown = values[:max_channels]
    lo3 = shown.min(axis=(1, 2), keepdims=True)
    hi3 = shown.max(axis=(1, 2), keepdims=True)
    tiles = (shown - lo3) / np.where(hi3 > lo3, hi3 - lo3, 1.0)  # (c, H, W) in [0, 1]
    pad = max(1, values.shape[1] // 8)
    ax.imshow(mosaic(tiles, cols=len(tiles), pad=pad, fill=np.nan), cmap=cmap, vmin=0, vmax=1,
              interpolation="nearest")
    if len(shown) < len(values):
        text += " · " + tr("visualize.maps.more", lang, shown=len(shown), total=len(values))
    caption(ax, text, size=9, left=True)
    ax.set_axis_off()


def save_feature_maps(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    path: str | os.PathLike[str],
    layers: Sequence[int] | None = None,
    *,
    display: np.ndarray | None = None,
    lang: str = "en",
) -> Path:
    """Compute, draw and save the feature maps of ``image`` as PNG; returns the path written."""
    maps = feature_maps(model, image, layers)
    return save_figure(plot_feature_maps(maps, display, lang=lang), path)
