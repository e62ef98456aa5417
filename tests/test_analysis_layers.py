"""The custom modules compute what the papers / Keras define, checked against hand-written references.

Run: .venv/bin/pytest tests/test_analysis_layers.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.model import build
from cnnlab.model import layers as L


def test_lrn_uses_the_papers_alpha() -> None:
    """AlexNet 2012: b = a / (k + α·Σ_{j in window} a_j²)^β, window of n channels centred on i."""
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3, 3)
    n, alpha, beta, k = 5, 1e-2, 0.75, 2.0
    sq = x * x
    expected = torch.empty_like(x)
    for i in range(7):
        lo, hi = max(0, i - n // 2), min(7, i + n // 2 + 1)
        expected[:, i] = x[:, i] / (k + alpha * sq[:, lo:hi].sum(dim=1)) ** beta
    assert torch.allclose(L.LocalResponseNorm(n, alpha, beta, k)(x), expected, atol=1e-6)


def test_connection_table_conv_equals_a_masked_full_conv() -> None:
    torch.manual_seed(0)
    table = ((0, 1), (1, 2), (0, 2), (0, 1, 2))
    conv = L.TableConv2d(table, (3, 3), (1, 1), (1, 1), (1, 1), bias=True)
    full = torch.zeros(4, 3, 3, 3)
    for j, maps in enumerate(table):
        for pos, m in enumerate(maps):
            full[j, m] = conv.weights[j][0, pos]
    x = torch.randn(2, 3, 6, 5)
    expected = F.conv2d(x, full, conv.bias, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-5)
    assert sum(p.numel() for p in conv.parameters()) == 9 * 9 + 4  # 3·3·(2+2+2+3) + 4 biases


def test_same_average_pooling_ignores_padding_like_keras() -> None:
    """TensorFlow 'same' average pooling divides by the number of real pixels in each window."""
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    pool = L.PadPool2d("avg", (2, 2), (2, 2), (0, 1, 0, 1))  # 3x3 -> 2x2, pad bottom/right
    out = pool(x)
    assert out.tolist() == [[[[3.0, 4.5], [7.5, 9.0]]]]  # means of {1,2,4,5}, {3,6}, {7,8}, {9}
    x = -torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    assert L.PadPool2d("max", (2, 2), (2, 2), (0, 1, 0, 1))(x).tolist() == [[[[-1.0, -3.0], [-7.0, -9.0]]]]


def test_rbf_output_is_negative_squared_distance_and_frozen() -> None:
    rbf = L.RBFOutput(4, 3, trainable=False)
    x = torch.randn(2, 4)
    expected = -((x[:, None, :] - rbf.weight[None]) ** 2).sum(-1)
    assert torch.allclose(rbf(x), expected)
    assert not rbf.weight.requires_grad


def test_trainable_subsampling_is_average_times_coefficient_plus_bias() -> None:
    model = build({"input": [2, 4, 4], "layers": [{"pool": {"kind": "avg", "size": 2, "trainable": True}},
                                                   {"output": 2}]})
    block = model.layers[0]
    with torch.no_grad():
        block.affine.weight.copy_(torch.tensor([2.0, -1.0]))
        block.affine.bias.copy_(torch.tensor([0.5, 1.0]))
    x = torch.randn(1, 2, 4, 4)
    expected = F.avg_pool2d(x, 2) * torch.tensor([2.0, -1.0]).view(1, 2, 1, 1) + torch.tensor([0.5, 1.0]).view(
        1, 2, 1, 1)
    assert torch.allclose(block(x), expected)
