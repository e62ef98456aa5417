"""Helpers shared by evaluate, predict, export and lr-find: what they need from a run, and how
images become the model's input.

A "run" here is anything shaped like ``cnnlab.train.Run`` (see :class:`RunLike`): tests pass a
small dataclass with a hand-built model; the CLI passes ``load_run(path)``.

>>> normalise(np.full((1, 1, 2, 2), 255, np.uint8), mean=(0.5,), std=(0.25,)).flatten().tolist()
[2.0, 2.0, 2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch


class RunLike(Protocol):
    """The parts of ``cnnlab.train.Run`` that the using commands read."""

    model: Any  # torch.nn.Module taking (B, C, H, W) float32, returning logits (B, K)
    classes: Sequence[str]
    mean: Sequence[float]
    std: Sequence[float]
    input_shape: tuple[int, int, int]
    resize: str


def normalise(
    images: np.ndarray, mean: Sequence[float], std: Sequence[float], device: Any = "cpu"
) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 ``(x/255 - mean)/std`` on ``device`` (the training formula).

    Computed as ``x * (1/(255 std)) - mean/std`` in place, as ``cnnlab.data.BatchLoader`` does.
    """
    import torch

    std_t = torch.tensor([float(v) for v in std], dtype=torch.float32)
    mean_t = torch.tensor([float(v) for v in mean], dtype=torch.float32)
    scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1).to(device)  # (1, C, 1, 1)
    shift = (mean_t / std_t).view(1, -1, 1, 1).to(device)  # (1, C, 1, 1)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)  # (N, C, H, W) uint8
    return x.float().mul_(scale).sub_(shift)  # (N, C, H, W) float32


def preprocess_batch(run: RunLike, images: np.ndarray, device: Any) -> torch.Tensor:
    """The run's own preprocessing (``run.preprocess`` when it has one) on ``device``."""
    preprocess = getattr(run, "preprocess", None)
    if preprocess is not None:
        return preprocess(images).to(device)  # (N, C, H, W) float32
    return normalise(images, run.mean, run.std, device)


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with none)."""
    import torch

    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
