"""Helpers shared by evaluate, predict and export: what they need from a run, and how
images become the model's input.

A "run" here is anything shaped like ``cnnlab.train.Run`` (see :class:`RunLike`): tests pass a
small dataclass with a hand-built model; the CLI passes ``load_run(path)``.
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


def preprocess_batch(run: RunLike, images: np.ndarray, device: Any) -> torch.Tensor:
    """The run's own preprocessing (``run.preprocess`` when it has one) on ``device``."""
    preprocess = getattr(run, "preprocess", None)
    if preprocess is not None:
        return preprocess(images).to(device)  # (N, C, H, W) float32
    from cnnlab.data.normalise import normalise

    return normalise(images, run.mean, run.std, device)
