"""The one home of the input normalisation: uint8 pixels -> float32 ``(x/255 - mean)/std``.

Computed as ``x * scale - shift`` with ``scale = 1/(255 std)`` and ``shift = mean/std`` (one multiply,
one subtract per pixel). Training batches (``BatchLoader``), ``Run.preprocess`` and everything that
feeds a trained model (evaluate, predict, export, visualize) use these, so they agree bit for bit.

>>> scale, shift = scale_shift((0.5,), (0.25,))
>>> float(255 * scale[0, 0, 0, 0] - shift[0, 0, 0, 0])
2.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.errors import DataError

if TYPE_CHECKING:
    import torch


def scale_shift(mean: Sequence[float], std: Sequence[float], channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)``, each float32 ``(1, C, 1, 1)``; checks ``mean``/``std`` per channel."""
    if channels is not None and (len(mean) != channels or len(std) != channels):
        raise DataError(f"mean/std have {len(mean)}/{len(std)} values but the images have {channels} channel(s)")
    values = [float(v) for v in (*mean, *std)]
    if not all(math.isfinite(v) for v in values) or any(float(s) <= 0 for s in std):
        raise DataError(f"the normalisation must be finite with a positive std per channel; got mean "
                        f"{tuple(mean)}, std {tuple(std)}")
    std_a = np.asarray([float(v) for v in std], np.float32).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
    mean_a = np.asarray([float(v) for v in mean], np.float32).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
    return (1.0 / (255.0 * std_a)).astype(np.float32), (mean_a / std_a).astype(np.float32)


def normalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float], device: Any = "cpu") -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 normalised tensor on ``device``.

    A read-only or non-contiguous array (a cached memmap) is copied once; others are shared.
    """
    import torch

    scale, shift = scale_shift(mean, std, images.shape[1])
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)  # (N, C, H, W) uint8
    return x.to(torch.float32).mul_(torch.from_numpy(scale).to(device)).sub_(torch.from_numpy(shift).to(device))
