"""Feature maps: values and shapes equal PyTorch's own layer outputs; hooks and modes are restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _visualize_helpers import dense_net, rgb_net
from cnnlab.errors import CnnlabError
from cnnlab.visualize import feature_maps, plot_feature_maps, spatial_layers


def _reference(net, x: torch.Tensor, upto: int) -> torch.Tensor:
    with torch.no_grad():
        for layer in list(net.layers)[: upto + 1]:
            x = layer(x)
    return x[0]


def test_default_layers_are_conv_and_pool_with_torch_values() -> None:
    net = rgb_net().eval()
    x = torch.rand(3, 16, 16)
    maps = feature_maps(net, x)
    assert [m.layer for m in maps] == [0, 1, 2, 3] == spatial_layers(net)
    assert [m.kind for m in maps] == ["conv", "pool", "conv", "pool"]
    assert [m.shape for m in maps] == [(8, 16, 16), (8, 8, 8), (16, 8, 8), (16, 4, 4)]
    for m in maps:
        np.testing.assert_allclose(m.values, _reference(net, x[None], m.layer).numpy(), atol=1e-6)


def test_hooks_removed_and_train_mode_restored_even_on_error() -> None:
    net = rgb_net().train()
    feature_maps(net, torch.rand(3, 16, 16), [2])
    assert net.training and all(m.training for m in net.modules())
    assert all(not m._forward_hooks for m in net.modules())
    with pytest.raises(RuntimeError):
        feature_maps(net, torch.rand(5, 16, 16), [0])  # wrong channel count fails inside torch
    assert net.training and all(not m._forward_hooks for m in net.modules())


def test_bad_layer_and_no_spatial_layer() -> None:
    with pytest.raises(CnnlabError, match="out of range"):
        feature_maps(rgb_net(), torch.rand(3, 16, 16), [7])
    with pytest.raises(CnnlabError, match="no conv or pool"):
        feature_maps(dense_net(), torch.rand(1, 8, 8))


def test_captions_carry_the_output_shape() -> None:
    net = rgb_net()
    maps = feature_maps(net, torch.rand(3, 16, 16), [0, 3])
    image = (np.random.default_rng(0).random((3, 16, 16)) * 255).astype(np.uint8)
    fig = plot_feature_maps(maps, image, max_channels=4)
    titles = [ax.texts[0].get_text() for ax in fig.axes]  # the caption above each row
    assert titles[1].startswith("layer 0 · conv · output 8×16×16")
    assert "first 4 of 8 channels" in titles[1]
    assert titles[2].startswith("layer 3 · pool · output 16×4×4")


def test_shapes_match_the_analysis_of_a_built_spec() -> None:
    import cnnlab.analysis as analysis_mod
    import cnnlab.model as model_mod

    spec = {"input": [3, 20, 20], "layers": [
        {"conv": {"filters": 6, "kernel": 3}}, {"pool": {"size": 2}},
        {"conv": {"filters": 4, "kernel": 3, "padding": 1}}, "flatten", {"output": 3}]}
    analysis = analysis_mod.analyze(spec)
    model = model_mod.build(spec)
    kinds = [layer.kind for layer in analysis.layers]
    maps = feature_maps(model, torch.rand(3, 20, 20), kinds=kinds)
    assert maps, "expected conv/pool layers"
    for m in maps:
        assert m.shape == tuple(analysis.layers[m.layer].output_shape)


def test_flat_layers_are_drawn_as_one_strip_of_values() -> None:
    net = rgb_net().eval()
    x = torch.rand(3, 16, 16)
    maps = feature_maps(net, x, [4, 6])  # flatten (256 values) and the logits (4)
    assert [m.shape for m in maps] == [(256,), (4,)]
    with torch.no_grad():
        np.testing.assert_allclose(maps[1].values, net(x[None])[0].numpy(), atol=1e-6)
    fig = plot_feature_maps(maps)
    strip = fig.axes[1].images[0].get_array()
    assert strip.shape == (1, 4)
    assert int(np.argmax(strip)) == int(np.argmax(maps[1].values))  # scaled, order kept
    assert fig.axes[1].texts[0].get_text() == "layer 6 · dense · output 4"
