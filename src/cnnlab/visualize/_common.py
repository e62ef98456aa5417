"""Shared helpers of the picture modules: Agg figures, PNG output, layer lookup, hooks, eval mode.

Nothing here touches ``matplotlib.pyplot``: figures are ``matplotlib.figure.Figure`` objects bound to
an Agg canvas, so importing cnnlab never changes a notebook's backend or leaks global figure state.

>>> fig = new_figure(2, 1)
>>> png = figure_png(fig)
>>> png[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.utils.io import atomic_path

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import nn

DEFAULT_DPI = 100


def new_figure(width: float, height: float, dpi: int = DEFAULT_DPI, *,
               layout: Literal["constrained", "compressed", "tight"] | None = "constrained") -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global state).

    Image grids pass ``layout=None`` and place their axes themselves: constrained layout measures every
    title and tick label and costs most of the drawing time of a grid of 16 small images.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int | None = None) -> bytes:
    """Encode ``fig`` as PNG bytes: every text made drawable (``fonts.prepare_text``), then fitted
    inside the canvas (``fit.fit_text``)."""
    from PIL import Image

    from cnnlab.visualize.fit import fit_text
    from cnnlab.visualize.fonts import prepare_text

    if dpi and dpi != fig.dpi:
        fig.set_dpi(dpi)
    prepare_text(fig)
    fit_text(fig)  # measures on the real renderer, and leaves the final drawing on the canvas
    rgba = np.asarray(fig.canvas.buffer_rgba())  # type: ignore[attr-defined]  # (H, W, 4): that drawing, not a new one
    picture = Image.fromarray(rgba, "RGBA")
    white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
    buf = io.BytesIO()
    Image.alpha_composite(white, picture).convert("RGB").save(buf, format="png")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int | None = None) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (never a half-written file); returns the path."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise CnnlabError(f"output file {str(target)!r} must end in .png (pictures are written as PNG)")
    data = figure_png(fig, dpi)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def model_layers(model: nn.Module) -> Sequence[nn.Module]:
    """The per-spec-layer modules of a built model (``model.layers``; a bare ``nn.Sequential`` also works)."""
    from torch import nn

    layers = getattr(model, "layers", None)
    if isinstance(layers, (nn.ModuleList, nn.Sequential)):
        return list(layers)
    if isinstance(model, nn.Sequential):
        return list(model)
    raise CnnlabError(
        f"model {type(model).__name__} has no 'layers' list; build it with cnnlab.model.build(spec) "
        "or pass an nn.Sequential"
    )


def check_layer_index(index: int, count: int, allowed: Sequence[int] | None = None, what: str = "layer",
                      kinds: Sequence[str] | None = None) -> int:
    """Return ``index`` (negative counts from the end) or raise a message listing the valid choices."""
    resolved = index + count if index < 0 else index
    choices = list(range(count)) if allowed is None else list(allowed)
    if resolved in choices:
        return resolved
    if 0 <= resolved < count:
        kind = f"a {kinds[resolved]} layer" if kinds is not None else "not usable here"
        raise CnnlabError(f"layer {index} is {kind}, not a {what}; {what}s in this network: {_compact(choices)}; "
                          "see `cnnlab summary` for the layer numbers")
    raise CnnlabError(
        f"layer index {index} is out of range: this network has {count} layers (0..{count - 1}); "
        f"{what}s here: {_compact(choices)}; see `cnnlab summary` for the layer numbers"
    )


def _compact(values: Sequence[int]) -> str:
    if not values:
        return "none"
    if len(values) > 12:
        return ", ".join(map(str, values[:10])) + f", … {values[-1]}"
    return ", ".join(map(str, values))


def find_conv(module: nn.Module) -> nn.Conv2d | None:
    """The first ``nn.Conv2d`` inside ``module`` (the module itself included), else ``None``."""
    from torch import nn

    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            return sub
    return None


def conv_layer_indices(model: nn.Module) -> list[int]:
    """Indices of the spec layers that contain a 2-D convolution."""
    return [i for i, layer in enumerate(model_layers(model)) if find_conv(layer) is not None]


def layer_kind(module: nn.Module) -> str:
    """A short, readable kind for a layer module (``conv``, ``pool``, ``dense``…) when no analysis is at hand."""
    from torch import nn

    kinds: list[tuple[type, str]] = [
        (nn.Conv2d, "conv"), (nn.MaxPool2d, "pool"), (nn.AvgPool2d, "pool"),
        (nn.AdaptiveAvgPool2d, "pool"), (nn.AdaptiveMaxPool2d, "pool"), (nn.Linear, "dense"),
        (nn.Flatten, "flatten"), (nn.BatchNorm2d, "batchnorm"), (nn.Dropout, "dropout"),
    ]
    for sub in module.modules():
        for cls, name in kinds:
            if isinstance(sub, cls):
                return name
    return type(module).__name__.lower()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore every submodule's train/eval flag afterwards, even on error."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


@contextlib.contextmanager
def capture_outputs(
    model: nn.Module, indices: Sequence[int], *, keep_graph: bool = False
) -> Iterator[dict[int, torch.Tensor]]:
    """Record the output of ``model.layers[i]`` for each ``i`` during forward passes in the block.

    With ``keep_graph`` the recorded tensors stay in the autograd graph (Grad-CAM); the layer's output
    is replaced by a clone so that a later in-place op (``ReLU(inplace=True)``) cannot alter the record.
    Hooks are removed when the block ends, even on error.
    """
    layers = model_layers(model)
    captured: dict[int, torch.Tensor] = {}
    handles = []

    def make_hook(i: int):  # noqa: ANN202 - torch hook signature
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor | None:
            if keep_graph:
                captured[i] = output
                return output.clone()
            captured[i] = output.detach().clone()
            return None

        return hook

    try:
        for i in indices:
            handles.append(layers[i].register_forward_hook(make_hook(i)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def as_batch(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 ``(1, C, H, W)`` tensor from a ``(C, H, W)`` or ``(1, C, H, W)`` array/tensor."""
    import torch

    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    if x.ndim == 3:
        x = x.unsqueeze(0)  # (1, C, H, W)
    if x.ndim != 4 or x.shape[0] != 1:
        raise CnnlabError(f"expected one image shaped (C, H, W) or (1, C, H, W); received {tuple(x.shape)}")
    return x.float()


def display_image(image: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)`` uint8/float image as ``(H, W)`` (grey) or ``(H, W, 3)`` floats in [0, 1] for imshow."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 3:
        raise CnnlabError(f"expected an image shaped (C, H, W); received {arr.shape}")
    if np.asarray(image).dtype == np.uint8:
        arr = arr / 255.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if arr.shape[0] == 1:
        return arr[0]  # (H, W)
    if arr.shape[0] == 3:
        return np.transpose(arr, (1, 2, 0))  # (H, W, 3)
    return arr.mean(axis=0)  # (H, W): several channels shown as their mean


def caption(ax: Axes, text: str, *, size: float = 8, color: str = "#222", left: bool = False) -> None:
    """A title above ``ax`` drawn as plain text (cheaper to lay out than ``set_title``)."""
    ax.text(0.0 if left else 0.5, 1.02, text, transform=ax.transAxes, fontsize=size, color=color,
            ha="left" if left else "center", va="bottom")


def grid_figure(rows: int, cols: int, cell_w: float, cell_h: float, *, top: float = 0.45,
                caption_h: float = 0.0, dpi: int = DEFAULT_DPI) -> tuple[Figure, np.ndarray]:
    """A figure holding a ``rows x cols`` grid of image axes with room for captions, placed by hand.

    ``cell_w``/``cell_h`` are the image size in inches; ``caption_h`` the room above each image;
    ``top`` the room for a figure title. Returns the figure and the axes array ``(rows, cols)``.
    """
    gap = 0.08
    width = cols * (cell_w + gap) + gap
    height = rows * (cell_h + caption_h + gap) + top + gap
    fig = new_figure(width, height, dpi, layout=None)
    axes = np.empty((rows, cols), dtype=object)
    for r in range(rows):
        for c in range(cols):
            x0 = gap + c * (cell_w + gap)
            y0 = height - top - (r + 1) * (cell_h + caption_h + gap) + gap
            axes[r, c] = fig.add_axes((x0 / width, y0 / height, cell_w / width, cell_h / height))
            axes[r, c].set_axis_off()
    return fig, axes


def mosaic(tiles: np.ndarray, cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Lay out ``tiles`` ``(N, h, w)`` or ``(N, h, w, 3)`` in a grid with ``cols`` columns and padding.

    >>> mosaic(np.zeros((3, 2, 2)), cols=2, pad=1).shape
    (5, 5)
    """
    n, h, w = tiles.shape[:3]
    rows = max(1, -(-n // cols))
    extra = tiles.shape[3:]
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, *extra), fill, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = tiles[k]
    return out
