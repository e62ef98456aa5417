"""Small stand-ins for the using-commands tests (test_use_*.py): a run-like object and tiny data.

Nothing here trains for long or touches the real datasets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data import ImageSet


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the shared CI machine is often busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class FakeRun:
    """The attributes of ``cnnlab.train.Run`` that evaluate/predict/export read."""

    model: nn.Module
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    resize: str = "crop"
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.ascontiguousarray(images)).float() / 255  # (N, C, H, W)
        m = torch.tensor(self.mean).view(1, -1, 1, 1)
        s = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x - m) / s


def TinySet(images: np.ndarray, labels: Any, classes: list[str], sources: list[str]) -> ImageSet:  # noqa: N802
    """The data layer's own ``ImageSet`` (so contract drift shows up here)."""
    return ImageSet(images=images, labels=np.asarray(labels, np.int64), classes=list(classes), sources=list(sources))


def tiny_cnn(in_ch: int, size: int, k: int, seed: int = 0) -> nn.Module:
    """Conv + BN + dropout + linear: covers the layers whose eval/train behaviour differs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_ch, 4, 3, padding=1),  # (B, 4, S, S)
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 4, S/2, S/2)
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * (size // 2) ** 2, k),  # (B, K)
    )


def random_set(n: int, shape: tuple[int, int, int], classes: list[str], seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = rng.integers(0, len(classes), size=n).astype(np.int64)
    return TinySet(images, labels, list(classes), [f"img{i}.png" for i in range(n)])


def stripes_set(n: int, size: int = 8, seed: int = 0, flip: float = 0.0) -> ImageSet:
    """Two easy classes: bright left half ("left") vs bright right half ("right"), with pixel noise;
    a fraction ``flip`` of the labels is then flipped (so the loss cannot reach zero)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    images = rng.integers(0, 60, size=(n, 1, size, size)).astype(np.int64)
    half = size // 2
    for i, y in enumerate(labels):
        cols = slice(0, half) if y == 0 else slice(half, size)
        images[i, 0, :, cols] += 160
    flipped = rng.random(n) < flip
    labels[flipped] = 1 - labels[flipped]
    return TinySet(images.astype(np.uint8), labels, ["left", "right"], [f"s{i}" for i in range(n)])
