"""See what a network learned: filters, feature maps, Grad-CAM, curves, confusion matrix, mistakes.

Each picture has a compute function that returns data (arrays, small dataclasses), a ``plot_*``
function that returns a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state), and a ``save_*``
shortcut that writes a PNG atomically. In a notebook::

    from cnnlab.train import load_run
    from cnnlab.visualize import filter_grid, plot_filters, grad_cam, plot_cam
    run = load_run("runs/cats")
    plot_filters(filter_grid(run.model))            # displays inline in Jupyter
    x = run.preprocess(img[None])[0]                 # img: uint8 (C, H, W) from cnnlab.data.load_image
    plot_cam(img, grad_cam(run.model, x), run.classes)

The ``cnnlab show ...`` commands are thin wrappers over these functions.
"""

from __future__ import annotations

from cnnlab.visualize._common import figure_png, new_figure, save_figure
from cnnlab.visualize.cam import CamResult, draw_cam, grad_cam, plot_cam, plot_cam_grid, save_cam
from cnnlab.visualize.confusion import normalise_rows, plot_confusion, save_confusion
from cnnlab.visualize.curves import Curves, curves_data, plot_curves, save_curves
from cnnlab.visualize.filters import FilterGrid, filter_grid, plot_filters, save_filters
from cnnlab.visualize.lr_find import plot_lr_find
from cnnlab.visualize.maps import (
    FeatureMaps,
    feature_maps,
    plot_feature_maps,
    save_feature_maps,
    spatial_layers,
)
from cnnlab.visualize.mistakes import plot_mistakes, save_mistakes, top_mistakes

__all__ = [
    "CamResult", "Curves", "FeatureMaps", "FilterGrid",
    "curves_data", "draw_cam", "feature_maps", "figure_png", "filter_grid", "grad_cam", "new_figure",
    "normalise_rows", "plot_cam", "plot_cam_grid", "plot_confusion", "plot_curves", "plot_feature_maps", "plot_filters", "plot_lr_find",
    "plot_mistakes", "save_cam", "save_confusion", "save_curves", "save_feature_maps", "save_figure",
    "save_filters", "save_mistakes", "spatial_layers", "top_mistakes",
]
