"""PyTorch modules that ``nn`` lacks: Keras-style asymmetric 'same' pooling, LeNet-1998 pieces, residual block.

Every module here takes ``(B, C, H, W)`` float tensors. Built by ``cnnlab.model.build``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadPool2d(nn.Module):
    """Pooling with explicit (possibly asymmetric) padding, as Keras 'same' does.

    Max pooling pads with −inf (padding never wins); average pooling divides by the number of
    real pixels in each window (padding not counted), like TensorFlow.
    """

    def __init__(self, kind: str, kernel: tuple[int, int], stride: tuple[int, int],
                 pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride = kind, kernel, stride
        top, bottom, left, right = pads
        self.pad = (left, right, top, bottom)  # F.pad order: last dim first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            x = F.pad(x, self.pad, value=float("-inf"))  # (B, C, H+t+b, W+l+r)
            return F.max_pool2d(x, self.kernel, self.stride)
        ones = torch.ones_like(x[:1, :1])  # (1, 1, H, W)
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride)  # (B, C, H', W')
        count = F.avg_pool2d(F.pad(ones, self.pad), self.kernel, self.stride)  # (1, 1, H', W')
        return total / count

    def extra_repr(self) -> str:
        return f"kind={self.kind}, kernel={self.kernel}, stride={self.stride}, pad(l,r,t,b)={self.pad}"


class ChannelAffine(nn.Module):
    """LeNet-1998 trainable subsampling after pooling: ``y[c] = a[c]·x[c] + b[c]`` (2 params per map)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)  # (B, C, H, W)


class TableConv2d(nn.Module):
    """Convolution where output map j reads only the input maps ``connections[j]`` (LeNet-1998 C3).

    Holds exactly ``kh·kw·Σ|connections[j]|`` weights (+ one bias per map), so its parameter count
    equals the paper's.
    """

    def __init__(self, connections: tuple[tuple[int, ...], ...], kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], bias: bool) -> None:
        super().__init__()
        self.connections = [list(c) for c in connections]
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.empty(1, len(c), *kernel)) for c in connections]
        )
        self.bias = nn.Parameter(torch.empty(len(connections))) if bias else None
        for w in self.weights:
            nn.init.kaiming_uniform_(w, a=5**0.5)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -0.1, 0.1)
        for j, c in enumerate(self.connections):
            self.register_buffer(f"index_{j}", torch.tensor(c, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = []
        for j, w in enumerate(self.weights):
            picked = x.index_select(1, getattr(self, f"index_{j}"))  # (B, |conn_j|, H, W)
            maps.append(F.conv2d(picked, w, None, self.stride, self.padding, self.dilation))  # (B, 1, H', W')
        y = torch.cat(maps, dim=1)  # (B, K, H', W')
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


class RBFOutput(nn.Module):
    """LeNet-1998 Euclidean RBF output: ``logit_i = −‖x − w_i‖²`` (fixed ±1 codes by default)."""

    def __init__(self, n_in: int, classes: int, trainable: bool) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1998)
        codes = torch.randint(0, 2, (classes, n_in), generator=g).float() * 2 - 1
        self.weight = nn.Parameter(codes, requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.unsqueeze(1) - self.weight.unsqueeze(0)  # (B, K, N)
        return -(diff * diff).sum(dim=2)  # (B, K)


class Residual(nn.Module):
    """``act(branch(x) + shortcut(x))``; ``branch[i]`` is the spec's residual layer i."""

    def __init__(self, branch: nn.ModuleList, shortcut: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.branch:
            y = layer(y)  # (B, C', H', W')
        return self.act(y + self.shortcut(x))  # (B, C', H', W')


class GhostBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Ghost batch normalisation (Hoffer, Hubara & Soudry 2017): in training, a batch is split into
    virtual batches of ``ghost`` samples, each normalised with its own statistics, and the running
    statistics are updated once per virtual batch, in order: exactly ``BatchNorm`` applied to each
    virtual batch in turn (a last virtual batch of one sample joins the one before it). In
    evaluation it is plain BatchNorm. State names equal BatchNorm's."""

    def __init__(self, num_features: int, ghost: int, dims: int = 2) -> None:
        super().__init__(num_features)
        self.ghost, self.dims = int(ghost), int(dims)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        allowed = (4,) if self.dims == 2 else (2, 3)  # as BatchNorm2d / BatchNorm1d
        if x.dim() not in allowed:
            raise ValueError(f"expected a {' or '.join(map(str, allowed))}-D input (got {x.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.ghost:
            return super().forward(x)
        parts = list(x.split(self.ghost))
        if parts[-1].shape[0] == 1:  # a lone last sample has no batch statistics: it joins the one before
            parts[-2:] = [torch.cat(parts[-2:])]
        return torch.cat([super(GhostBatchNorm, self).forward(part) for part in parts])  # (B, ...)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost={self.ghost}"


class LocalResponseNorm(nn.LocalResponseNorm):
    """AlexNet-2012 LRN with the paper's α (PyTorch divides α by ``size``, so we multiply it back)."""

    def __init__(self, size: int, alpha: float, beta: float, k: float) -> None:
        super().__init__(size, alpha=alpha * size, beta=beta, k=k)
