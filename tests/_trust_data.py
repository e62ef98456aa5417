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
