"""Filter grids: one tile per filter, per-filter normalisation, limits, bad layer indices."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

from _visualize_helpers import dense_net, rgb_net
from cnnlab.errors import CnnlabError
from cnnlab.visualize import filter_grid, plot_filters, save_filters


def test_first_rgb_layer_has_one_colour_tile_per_filter() -> None:
    net = rgb_net()
    grid = filter_grid(net)  # default: the first conv layer
    weight = net.layers[0][0].weight.detach().numpy()  # (8, 3, 5, 5), read straight from torch
    assert grid.layer == 0 and grid.colour
    tiles = grid.tiles()
    assert tiles.shape == (8, 5, 5, 3)
    for k in range(8):
        w = weight[k]
        expected = (w - w.min()) / (w.max() - w.min())  # each filter scaled to its own [0, 1]
        np.testing.assert_allclose(tiles[k], np.transpose(expected, (1, 2, 0)), atol=1e-6)


def test_deeper_layer_is_shown_per_input_channel_and_limited() -> None:
    net = rgb_net()
    grid = filter_grid(net, 2, max_filters=10, max_channels=4)
    assert not grid.colour
    assert (grid.shown_filters, grid.total_filters) == (10, 16)
    assert (grid.shown_channels, grid.total_channels) == (4, 8)
    # one strip per filter: 4 slices of width 3 separated by 1-pixel gaps
    assert grid.tiles().shape == (10, 3, 4 * 3 + 3)
    fig = plot_filters(grid)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == [str(k) for k in range(10)]  # every tile labelled with its filter index
    assert any("10 of 16" in t.get_text() for t in fig.texts)  # the figure title


def test_pool_layer_index_and_out_of_range_are_refused_with_choices() -> None:
    net = rgb_net()
    with pytest.raises(CnnlabError, match=r"layer 1 is a pool layer, not a conv layer; conv layers in this network: 0, 2"):
        filter_grid(net, 1)
    with pytest.raises(CnnlabError, match=r"out of range.*7 layers"):
        filter_grid(net, 42)


def test_network_without_conv_has_no_filters() -> None:
    with pytest.raises(CnnlabError, match="no conv layers"):
        filter_grid(dense_net())


def test_save_writes_a_png_and_leaves_no_pyplot_figure(tmp_path) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    backend = matplotlib.get_backend()
    out = save_filters(rgb_net(), tmp_path / "f.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > 100
    assert plt.get_fignums() == before
    assert matplotlib.get_backend() == backend
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]  # no temp file left behind


def test_save_refuses_a_non_png_name(tmp_path) -> None:
    with pytest.raises(CnnlabError, match=r"\.png"):
        save_filters(rgb_net(), tmp_path / "f.jpg")
    assert not list(tmp_path.iterdir())
