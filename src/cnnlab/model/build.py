"""Build a PyTorch model from a spec, using the analysis's numbers (never re-deriving them).

>>> import torch, cnnlab
>>> model = cnnlab.build("keras-mnist")
>>> model(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
>>> sum(p.numel() for p in model.parameters())
34826

``model.layers[i]`` is spec layer ``i``; its output shape is ``model.analysis.layers[i].output_shape``.
``summary(module, input_size)`` (in ``model_summary.py``) analyses any ``nn.Module``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from cnnlab.analysis import Analysis, LayerAnalysis, analyze
from cnnlab.model import layers as L
from cnnlab.model import pool_first
from cnnlab.model.summary import summary
from cnnlab.spec import (
    LRN,
    Act,
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Layer,
    Output,
    OutputKind,
    PadMode,
    Pool,
    PoolKind,
    Residual,
    Spec,
    load_spec,
)

__all__ = ["CnnlabNet", "activation_module", "build", "model_device", "summary"]


class CnnlabNet(nn.Module):
    """A network built from a spec: ``layers[i]`` is spec layer ``i``; ``forward`` returns logits."""

    def __init__(self, spec: Spec, analysis: Analysis, layers: list[nn.Module]) -> None:
        super().__init__()
        self.spec = spec
        self.analysis = analysis
        self.layers = nn.ModuleList(layers)
        # conv+ReLU then max-pool run as conv, pool, ReLU (same numbers, 4x fewer ReLU elements)
        self._pool_first = frozenset(pool_first.pool_first_pairs(self.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W) float32
        layers, i, n = self.layers, 0, len(self.layers)
        while i < n:
            if i in self._pool_first and pool_first.swappable(layers[i], layers[i + 1]) \
                    and pool_first.unobserved(layers[i], layers[i + 1]):
                x = pool_first.run_pair(layers[i], layers[i + 1], x)
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x  # (B, classes) logits

    def extra_repr(self) -> str:
        return f"name={self.spec.name!r}, input={self.spec.input}"


def build(spec: Spec | dict[str, Any] | str) -> CnnlabNet:
    """Return the ``nn.Module`` for ``spec`` (path, dict, bundled name or Spec); counts equal ``analyze``."""
    spec = load_spec(spec)
    analysis = analyze(spec)
    modules = [_module(layer, row) for layer, row in zip(spec.layers, analysis.layers, strict=True)]
    return CnnlabNet(spec, analysis, modules)


def activation_module(act: Act, slope: float = 0.01) -> nn.Module | None:
    """The ``nn`` module for an activation name (None for ``none``)."""
    table: dict[Act, Any] = {
        Act.RELU: nn.ReLU, Act.TANH: nn.Tanh, Act.SIGMOID: nn.Sigmoid, Act.GELU: nn.GELU,
        Act.LEAKY_RELU: lambda: nn.LeakyReLU(slope), Act.NONE: lambda: None,
    }
    return table[act]()


def _seq(**parts: nn.Module | None) -> nn.Sequential:
    return nn.Sequential(OrderedDict((k, v) for k, v in parts.items() if v is not None))


def _module(layer: Layer, row: LayerAnalysis) -> nn.Module:
    if isinstance(layer, Conv):
        return _conv(layer, row)
    if isinstance(layer, Pool):
        return _pool(layer, row)
    if isinstance(layer, (Dense, Output)):
        return _dense(layer, row)
    if isinstance(layer, Residual):
        return _residual(layer, row)
    if isinstance(layer, BatchNorm):
        c = row.resolved["channels"]
        if layer.ghost:
            bn: nn.Module = L.GhostBatchNorm(c, layer.ghost, dims=2 if row.resolved["dim"] == "2d" else 1)
        else:
            bn = nn.BatchNorm2d(c) if row.resolved["dim"] == "2d" else nn.BatchNorm1d(c)
        return _seq(bn=bn, act=activation_module(layer.activation))
    if isinstance(layer, GlobalPool):
        pool = nn.AdaptiveAvgPool2d(1) if layer.kind == PoolKind.AVG else nn.AdaptiveMaxPool2d(1)
        return _seq(pool=pool, flatten=nn.Flatten())  # (B, C, H, W) -> (B, C)
    if isinstance(layer, Flatten):
        return nn.Flatten()  # (B, C*H*W)
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, Activation):
        return activation_module(layer.kind, layer.slope) or nn.Identity()
    if isinstance(layer, LRN):
        return L.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    raise TypeError(f"no builder for {type(layer).__name__}")  # unreachable: every kind is handled


def _conv(layer: Conv, row: LayerAnalysis) -> nn.Sequential:
    top, bottom, left, right = row.resolved["padding"]
    symmetric = top == bottom and left == right
    pad = None if symmetric else nn.ZeroPad2d((left, right, top, bottom))
    padding = (top, left) if symmetric else (0, 0)
    conv: nn.Module
    if layer.connections is not None:
        conv = L.TableConv2d(layer.connections, layer.kernel, layer.stride, padding, layer.dilation, layer.bias)
    else:
        conv = nn.Conv2d(
            row.resolved["in_channels"], layer.filters, layer.kernel, stride=layer.stride, padding=padding,
            dilation=layer.dilation, groups=layer.groups, bias=layer.bias,
        )
    return _seq(pad=pad, conv=conv, act=activation_module(layer.activation))


def _pool(layer: Pool, row: LayerAnalysis) -> nn.Sequential:
    top, bottom, left, right = row.resolved["padding"]
    stride = layer.resolved_stride
    pool: nn.Module
    if top == bottom and left == right:
        cls: Any = nn.MaxPool2d if layer.kind == PoolKind.MAX else nn.AvgPool2d
        # Keras 'same' average pooling does not count the padding; explicit padding keeps PyTorch's default
        extra = {} if layer.kind == PoolKind.MAX else {"count_include_pad": layer.padding != PadMode.SAME}
        pool = cls(layer.size, stride, padding=(top, left), ceil_mode=layer.ceil, **extra)
    else:
        pool = L.PadPool2d(layer.kind.value, layer.size, stride, (top, bottom, left, right))
    c = row.input_shape[0]
    affine = L.ChannelAffine(c) if layer.trainable else None
    return _seq(pool=pool, affine=affine, act=activation_module(layer.activation))


def _dense(layer: Dense | Output, row: LayerAnalysis) -> nn.Sequential:
    n = row.resolved["in_features"]
    flat = nn.Flatten() if row.resolved["flatten"] else None  # (B, C, H, W) -> (B, C*H*W)
    if isinstance(layer, Output):
        if layer.kind == OutputKind.RBF:
            return _seq(flatten=flat, rbf=L.RBFOutput(n, layer.classes, layer.trainable))
        linear = nn.Linear(n, layer.classes, bias=layer.bias)
        if not layer.trainable:
            linear.requires_grad_(False)
        return _seq(flatten=flat, linear=linear)
    return _seq(flatten=flat, linear=nn.Linear(n, layer.units, bias=layer.bias),
                act=activation_module(layer.activation))


def _residual(layer: Residual, row: LayerAnalysis) -> L.Residual:
    inner = [c for c in row.children if c.kind != "shortcut"]
    branch = nn.ModuleList(_module(sub, r) for sub, r in zip(layer.layers, inner, strict=True))
    shortcut: nn.Module = nn.Identity()
    if row.resolved["shortcut"] == "conv":
        c_in, k = row.input_shape[0], row.output_shape[0]
        shortcut = nn.Sequential(
            nn.Conv2d(c_in, k, 1, stride=row.resolved["stride"], bias=False), nn.BatchNorm2d(k)
        )
    return L.Residual(branch, shortcut, activation_module(layer.activation) or nn.Identity())


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with none)."""
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")
