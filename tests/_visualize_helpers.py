"""Tiny models and images shared by the visualize/report tests (not a test module)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """A stand-in for ``cnnlab.model.build``: ``layers[i]`` is spec layer ``i``."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def rgb_net(classes: int = 4) -> TinyNet:
    """conv(3->8, 5x5) relu / pool / conv(8->16, 3x3) relu / pool / flatten / dense: input 3x16x16."""
    torch.manual_seed(0)
    return TinyNet([
        nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU()),
        nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True)),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(16 * 4 * 4, classes),
    ])


def dense_net() -> TinyNet:
    return TinyNet([nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 3)])
