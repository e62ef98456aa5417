"""The report's pictures, computed from a run and its evaluation (each returns a ``Picture`` or ``None``).

Used by ``collect.py``; each function draws with ``cnnlab.visualize`` and encodes a PNG at a modest
resolution so that an MNIST report stays well under 2 MB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.i18n import tr
from cnnlab.report.types import Picture
from cnnlab.visualize import (
    curves_data,
    feature_maps,
    figure_png,
    filter_grid,
    grad_cam,
    plot_cam_grid,
    plot_confusion,
    plot_curves,
    plot_feature_maps,
    plot_filters,
    plot_mistakes,
    spatial_layers,
    top_mistakes,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.analysis.types import Analysis
    from cnnlab.inference.evaluation import EvalResult

REPORT_DPI = 90
CAM_EXAMPLES = 6
MAP_LAYERS = 8  # a deep network (VGG-16: 18 conv/pool layers) shows 8 of them, first and last included
MISTAKES = 16


def preload() -> None:
    """Import matplotlib's drawing modules and find the fallback fonts now, in this process: a child
    forked afterwards (``cnnlab.report.concurrent``) inherits them instead of importing them a
    second time (≈ 190 modules, about a CPU second on a loaded machine). Changes no picture."""
    from matplotlib import figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401 - imported for its side effect
    from PIL import Image

    from cnnlab.visualize.fonts import families

    Image.preinit()  # the image plugins PIL loads at the first PNG save
    families()


def picture(fig: Figure, key: str, title: str, caption: str = "") -> Picture:
    """Encode ``fig`` as PNG and wrap it with its size and texts."""
    png = figure_png(fig, REPORT_DPI)
    width = int.from_bytes(png[16:20], "big")  # PNG IHDR: width, height (big-endian)
    height = int.from_bytes(png[20:24], "big")
    return Picture(key, title, caption, png, width, height)


def curves_picture(metrics: list[dict[str, Any]], lang: str) -> Picture | None:
    if not metrics:
        return None
    return picture(plot_curves(curves_data(metrics), lang=lang), "curves", tr("report.curves.title", lang),
                   tr("report.curves.caption", lang))


def confusion_picture(res: EvalResult, lang: str) -> Picture:
    return picture(plot_confusion(res.confusion, res.classes, lang=lang), "confusion",
                   tr("report.confusion.title", lang), tr("report.confusion.caption", lang))


def filter_pictures(model: Any, analysis: Analysis, lang: str) -> list[Picture]:
    """The first conv layer's kernels, and the second conv layer's (first 16 filters) when there is one."""
    convs = analysis.conv_layers
    out = []
    for k, index in enumerate(convs[:2]):
        grid = filter_grid(model, index, max_filters=64 if k == 0 else 16)
        fig = plot_filters(grid, lang=lang, kind=analysis.layers[index].kind)
        caption = tr("report.filters.first" if k == 0 else "report.filters.deeper", lang)
        out.append(picture(fig, f"filters-{index}", tr("report.filters.title", lang, layer=index), caption))
    return out


def cam_examples(res: EvalResult, n: int = CAM_EXAMPLES) -> list[int]:
    """Indices to explain: correct predictions (one per class first), then the worst mistakes."""
    correct = np.flatnonzero(res.predictions == res.labels)
    chosen: list[int] = []
    seen: set[int] = set()
    for i in correct:
        if int(res.labels[i]) not in seen and len(chosen) < n - 2:
            chosen.append(int(i))
            seen.add(int(res.labels[i]))
    for i in correct:
        if len(chosen) >= n - 2:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    chosen += [int(i) for i in top_mistakes(res.losses, res.predictions, res.labels, n - len(chosen))]
    return chosen


def maps_picture(run: Any, images: np.ndarray, index: int, analysis: Analysis, lang: str) -> Picture | None:
    """Feature maps of one correctly classified image after each conv/pool layer (8 channels each)."""
    kinds = [row.kind for row in analysis.layers]
    x = run.preprocess(np.array(images[index : index + 1]))[0].cpu()  # (C, H, W); a writable copy of a memmap slice
    maps = feature_maps(run.model, x, pick_evenly(spatial_layers(run.model, kinds), MAP_LAYERS), kinds=kinds)
    fig = plot_feature_maps(maps, images[index], max_channels=8, lang=lang)
    return picture(fig, "maps", tr("report.maps.title", lang), tr("report.maps.caption", lang))


def pick_evenly(items: list[int], n: int) -> list[int]:
    """At most ``n`` items spread evenly, first and last kept.

    >>> pick_evenly(list(range(18)), 4)
    [0, 6, 11, 17]
    """
    if len(items) <= n:
        return list(items)
    return [items[round(k * (len(items) - 1) / (n - 1))] for k in range(n)]


def cam_picture(run: Any, images: np.ndarray, res: EvalResult, chosen: list[int], lang: str) -> Picture | None:
    """Grad-CAM of the chosen images for their predicted class, at the last conv layer."""
    if not chosen:
        return None
    batch = run.preprocess(images[chosen]).cpu()  # (n, C, H, W)
    cams = [grad_cam(run.model, batch[k]) for k in range(len(chosen))]
    fig = plot_cam_grid(images[chosen], cams, res.labels[chosen], res.classes, lang=lang)
    return picture(fig, "cam", tr("report.cam.title", lang), tr("report.cam.caption", lang, layer=cams[0].layer))


def mistakes_picture(images: np.ndarray, res: EvalResult, lang: str) -> Picture | None:
    idx = top_mistakes(res.losses, res.predictions, res.labels, MISTAKES)
    if len(idx) == 0:
        return None
    fig = plot_mistakes(images, res.labels, res.predictions, res.probabilities, idx, res.classes, lang=lang)
    return picture(fig, "mistakes", tr("report.mistakes.title", lang), tr("report.mistakes.caption", lang))
