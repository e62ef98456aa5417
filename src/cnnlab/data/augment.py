"""Batch augmentation as tensor operations: random translation (pad + crop) and horizontal flip.

Randomness comes from a ``torch.Generator`` the caller seeds per batch, so a batch's augmentation
is a function of ``(seed, epoch, batch_index)`` only. The random numbers are drawn on the CPU and
moved to the batch's device, so CPU and CUDA runs see the same crops and flips.

>>> import torch
>>> x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
>>> Augment(translate=0, hflip=False)(x, torch.Generator().manual_seed(0)).equal(x)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augment:
    """``translate``: shift by up to that many pixels (zero fill); ``hflip``: mirror half the images."""

    translate: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        if int(self.translate) < 0:
            from cnnlab.errors import DataError

            raise DataError(f"augment translate must be >= 0 pixels, got {self.translate}")

    @property
    def active(self) -> bool:
        return self.translate > 0 or self.hflip

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Augment ``x`` (B, C, H, W) of any dtype; returns a new tensor of the same shape."""
        b, _, h, w = x.shape
        if self.translate > 0:
            t = int(self.translate)
            offsets = torch.randint(0, 2 * t + 1, (2, b), generator=gen).to(x.device)  # (2, B)
            padded = torch.nn.functional.pad(x, (t, t, t, t))  # (B, C, H+2t, W+2t), zeros
            rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B, H)
            cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B, W)
            bi = torch.arange(b, device=x.device)[:, None, None, None]  # (B, 1, 1, 1)
            ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]  # (1, C, 1, 1)
            x = padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)
        if self.hflip:
            flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)  # (B,)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def to_dict(self) -> dict[str, object]:
        return {"translate": int(self.translate), "hflip": bool(self.hflip)}
