"""A tiny ten-class grey image folder for the study tests: class k is a bright horizontal bar at row
2 + 2k of a 28x28 image with pixel noise, so LeNet-sized networks learn it in a few steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def bars_folder(root: Path, per_class: int = 20, seed: int = 0) -> Path:
    """``root/c0/*.png`` .. ``root/c9/*.png``, ``per_class`` each; returns ``root``."""
    rng = np.random.default_rng(seed)
    for k in range(10):
        folder = root / f"c{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, size=(28, 28))
            img[4 + 2 * k: 6 + 2 * k, 4:24] += 180
            Image.fromarray(img.astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root
