"""Grad-CAM: equals the class activation map on a GAP network, finds the object, restores state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from _visualize_helpers import TinyNet, dense_net, rgb_net
from cnnlab.errors import CnnlabError
from cnnlab.visualize import grad_cam, plot_cam


def _gap_net(filters: int = 3) -> TinyNet:
    torch.manual_seed(1)
    return TinyNet([
        nn.Sequential(nn.Conv2d(1, filters, 3, padding=1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(filters, 2),
    ])


def test_equals_class_activation_map_for_global_average_pooling() -> None:
    # Selvaraju et al. (2017), sec. 3.1: with GAP followed by one linear layer, Grad-CAM is CAM
    # (Zhou et al., 2016): relu(sum_k w_ck A_k), up to a positive constant.
    net = _gap_net().eval()
    x = torch.rand(1, 12, 12)
    with torch.no_grad():
        acts = net.layers[0](x[None])[0]  # (3, 12, 12)
    for cls in (0, 1):
        w = net.layers[3].weight[cls].detach()  # (3,)
        cam = torch.relu((w[:, None, None] * acts).sum(0)).numpy()
        expected = cam / cam.max() if cam.max() > 0 else cam
        res = grad_cam(net, x, cls)
        assert res.layer == 0 and res.target == cls
        np.testing.assert_allclose(res.heatmap, expected, atol=1e-5)


def test_mass_falls_on_the_only_region_that_carries_the_class() -> None:
    # hand-built detector of bright pixels: class 1 grows with brightness, class 0 shrinks
    net = _gap_net(filters=1)
    with torch.no_grad():
        net.layers[0][0].weight.fill_(1.0)
        net.layers[0][0].bias.zero_()
        net.layers[3].weight.copy_(torch.tensor([[-1.0], [1.0]]))
        net.layers[3].bias.zero_()
    x = torch.zeros(1, 16, 16)
    x[0, 2:6, 9:13] = 1.0  # the object: a 4x4 bright square, 6% of the image
    res = grad_cam(net, x)
    assert res.predicted == 1
    box = np.zeros((16, 16), bool)
    box[1:7, 8:14] = True  # the square plus the 3x3 kernel's one-pixel reach
    assert res.heatmap[box].sum() / res.heatmap.sum() == pytest.approx(1.0)
    assert res.heatmap.max() == pytest.approx(1.0)
    assert grad_cam(net, x, 0).heatmap.max() == 0.0  # no evidence for class 0 anywhere


def _squares(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    x = rng.normal(0.0, 0.15, (n, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 2, n)
    boxes = np.zeros((n, 16, 16), bool)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 12, 2)
        x[i, 0, r:r + 5, c:c + 5] += 1.0
        boxes[i, max(0, r - 2):r + 7, max(0, c - 2):c + 7] = True
    return torch.from_numpy(x), torch.from_numpy(y), boxes


def test_trained_model_looks_at_the_object(one_thread: None) -> None:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = TinyNet([
        nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU()), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()), nn.AdaptiveMaxPool2d(1),
        nn.Flatten(), nn.Linear(8, 2),
    ])
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    x, y, _ = _squares(96, rng)
    for _ in range(25):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    tx, ty, boxes = _squares(40, rng)
    assert (net(tx).argmax(1) == ty).float().mean() > 0.9
    shares = []
    for i in np.flatnonzero(ty.numpy()):
        heat = grad_cam(net, tx[i], 1).heatmap
        shares.append(heat[boxes[i]].sum() / max(heat.sum(), 1e-9))
    # the dilated box covers ~32% of the image; the class evidence must sit mostly inside it
    assert np.median(shares) > 0.75


def test_state_restored_with_dropout_and_inplace_relu() -> None:
    net = rgb_net().train()
    params = [p.requires_grad for p in net.parameters()]
    res = grad_cam(net, torch.rand(3, 16, 16))
    assert res.layer == 2 and res.heatmap.shape == (16, 16)
    assert res.heatmap.min() >= 0.0 and res.heatmap.max() <= 1.0
    assert all(m.training for m in net.modules())
    assert all(not m._forward_hooks for m in net.modules())
    assert [p.requires_grad for p in net.parameters()] == params
    assert all(p.grad is None for p in net.parameters())
    # eval mode during the pass: two calls agree despite dropout
    again = grad_cam(net, torch.rand(3, 16, 16) * 0 + 0.5)
    np.testing.assert_allclose(again.heatmap, grad_cam(net, torch.rand(3, 16, 16) * 0 + 0.5).heatmap)


def test_refuses_a_network_without_conv_and_bad_class() -> None:
    with pytest.raises(CnnlabError, match="needs a conv layer"):
        grad_cam(dense_net(), torch.rand(1, 8, 8))
    with pytest.raises(CnnlabError, match="class index 9 is out of range.*4 classes"):
        grad_cam(rgb_net(), torch.rand(3, 16, 16), 9)
    with pytest.raises(CnnlabError, match="layer 3 is a pool layer, not a conv layer; conv layers in this network: 0, 2"):
        grad_cam(rgb_net(), torch.rand(3, 16, 16), layer=3)


def test_plot_titles_name_the_class() -> None:
    net = rgb_net()
    res = grad_cam(net, torch.rand(3, 16, 16), 1)
    image = (np.random.default_rng(0).random((3, 16, 16)) * 255).astype(np.uint8)
    fig = plot_cam(image, res, ["cat", "dog", "fox", "owl"])
    assert "'dog'" in fig.axes[1].get_title()
