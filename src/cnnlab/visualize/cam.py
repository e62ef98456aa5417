"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class lies.

For the chosen conv layer with activations ``A`` ``(K, h, w)`` and class score ``y_c``:
``weights_k = mean_ij dy_c/dA_kij`` and ``cam = ReLU(sum_k weights_k * A_k)``, upsampled to the
input size and scaled to [0, 1].

>>> import torch, torch.nn as nn
>>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
>>> res = grad_cam(net, torch.rand(1, 8, 8))
>>> res.heatmap.shape
(8, 8)
"""

from __future__ import annotations

import os
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
    conv_layer_indices,
    display_image,
    eval_mode,
    grid_figure,
    layer_kind,
    model_layers,
    new_figure,
    save_figure,
)

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import nn


@dataclass(frozen=True)
class CamResult:
    """A Grad-CAM heat map ``(H, W)`` in [0, 1] at input resolution, for class ``target``."""

    heatmap: np.ndarray
    layer: int
    target: int
    predicted: int
    probabilities: np.ndarray

    @property
    def probability(self) -> float:
        """The model's probability for the explained class."""
        return float(self.probabilities[self.target])


def grad_cam(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    target: int | None = None,
    *,
    layer: int | None = None,
) -> CamResult:
    """Grad-CAM of one preprocessed image ``(C, H, W)`` for class ``target`` (default: the prediction).

    ``layer`` defaults to the last conv layer (the usual choice: high-level yet still spatial).
    """
    import torch
    import torch.nn.functional as F

    convs = conv_layer_indices(model)
    if not convs:
        raise CnnlabError(
            "Grad-CAM needs a conv layer, and this network has none (only dense layers); "
            "use `cnnlab show maps` or add a conv layer to the spec"
        )
    kinds = [layer_kind(m) for m in model_layers(model)]
    index = convs[-1] if layer is None else check_layer_index(layer, len(kinds), convs, "conv layer", kinds)
    x = as_batch(image).detach().clone().requires_grad_(True)  # (1, C, H, W); grad keeps A in the graph
    with eval_mode(model), torch.enable_grad(), capture_outputs(model, [index], keep_graph=True) as outs:
        logits = model(x)  # (1, K)
        probs = torch.softmax(logits.detach().float(), dim=1)[0]  # (K,)
        predicted = int(probs.argmax())
        cls = predicted if target is None else _check_target(target, logits.shape[1])
        activation = outs[index]  # (1, k, h, w)
        (grads,) = torch.autograd.grad(logits[0, cls], activation)  # (1, k, h, w)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (1, k, 1, 1)
    cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0]  # (H, W)
    peak = float(cam.max())
    heat = (cam / peak).numpy() if peak > 0 else np.zeros(tuple(cam.shape), dtype=np.float32)
    return CamResult(heat.astype(np.float32), index, cls, predicted, probs.numpy())


def _check_target(target: int, classes: int) -> int:
    if not 0 <= target < classes:
        raise CnnlabError(f"class index {target} is out of range: the model has {classes} classes (0..{classes - 1})")
    return target


def draw_cam(ax: Axes, image: np.ndarray, cam: CamResult, *, alpha: float = 0.45) -> None:
    """Overlay ``cam`` on ``image`` ``(C, H, W)`` in ``ax`` (used by the report's grids too)."""
    shown = display_image(image)
    grey = shown.mean(axis=2) if shown.ndim == 3 else shown  # (H, W): colour would fight the heat map
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
    ax.imshow(cam.heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_axis_off()


def plot_cam(
    image: np.ndarray,
    cam: CamResult,
    classes: list[str] | None = None,
    *,
    lang: str = "en",
) -> Figure:
    """Input on the left, Grad-CAM overlay on the right, titled with the class and its probability."""
    fig = new_figure(7.0, 3.8)
    left, right = fig.subplots(1, 2)
    left.imshow(display_image(image), cmap="gray", interpolation="nearest")
    left.set_title(tr("visualize.cam.input", lang), fontsize=10)
    left.set_axis_off()
    draw_cam(right, image, cam)
    label = classes[cam.target] if classes else str(cam.target)
    right.set_title(tr("visualize.cam.title", lang, label=label, prob=cam.probability, layer=cam.layer),
                    fontsize=10)
    if cam.target != cam.predicted:
        pred = classes[cam.predicted] if classes else str(cam.predicted)
        fig.supxlabel(tr("visualize.cam.predicted", lang, label=pred,
                         prob=float(cam.probabilities[cam.predicted])), fontsize=8)
    return fig


def save_cam(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    display: np.ndarray,
    path: str | os.PathLike[str],
    target: int | None = None,
    *,
    classes: list[str] | None = None,
    layer: int | None = None,
    lang: str = "en",
) -> Path:
    """Compute Grad-CAM for ``image`` (preprocessed) and save the overlay on ``display`` as PNG."""
    cam = grad_cam(model, image, target, layer=layer)
    return save_figure(plot_cam(display, cam, classes, lang=lang), path)


def plot_cam_grid(
    images: np.ndarray,
    cams: list[CamResult],
    labels: np.ndarray,
    classes: list[str],
    *,
    lang: str = "en",
) -> Figure:
    """Several examples side by side: the input on top, its Grad-CAM overlay below, titled
    ``true → predicted (p)`` in green when right and red when wrong. ``images`` is uint8 ``(N, C, H, W)``."""
    n = len(cams)
    fig, axes = grid_figure(2, max(n, 1), 1.55, 1.55, top=0.1, caption_h=0.24)
    for k, cam in enumerate(cams):
        true = int(labels[k])
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(display_image(images[k]), cmap="gray", interpolation="nearest")
        right = cam.predicted == true
        caption(top, tr("visualize.cam.example", lang, true=_short(classes, true), pred=_short(classes, cam.predicted),
                        prob=float(cam.probabilities[cam.predicted])), size=8.5,
                color="#1a7f37" if right else "#c0392b")
        draw_cam(bottom, images[k], cam)
    return fig


def _short(classes: list[str], index: int) -> str:
    name = classes[index] if 0 <= index < len(classes) else str(index)
    return name if len(name) <= 10 else name[:9] + "…"
