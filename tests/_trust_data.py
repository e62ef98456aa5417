"""A tiny two-class colour image folder for the run-trust tests: bright even rows vs bright even columns
(12x12 RGB PNGs, pixel noise), so a small multi-channel conv net learns it in a few steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def stripes_folder(root: Path, n: int = 40, seed: int = 0) -> Path:
    """``root/rows/*.png`` and ``root/cols/*.png``, ``n`` each; returns ``root``."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(("rows", "cols")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 90, size=(12, 12, 3))
            if label == 0:
                img[::2] += 150
            else:
                img[:, ::2] += 150
            Image.fromarray(img.astype(np.uint8)).save(folder / f"{i}.png")
    return root


# The net the kill-and-resume tests train: multi-channel convs on RGB input (a memory-format bug shows),
# BatchNorm (running statistics to restore) and dropout (RNG state to restore).
RESUME_SPEC = """name: {name}
input: [3, 12, 12]
layers:
  - conv: {{filters: 6, kernel: 3, padding: 1}}
  - batchnorm
  - conv: {{filters: 8, kernel: 3, padding: 1}}
  - pool: 2
  - flatten
  - dropout: 0.3
  - output: 2
"""
