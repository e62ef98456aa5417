"""Bring an in-memory uint8 ``(N, C, H, W)`` array (IDX, CIFAR) to the spec's input shape.

Nothing is copied when the shape already matches. Otherwise each image goes through the same
Pillow policy as files (:func:`cnnlab.data.decode.to_mode` and :func:`~cnnlab.data.decode.fit`).

>>> import numpy as np
>>> conform(np.zeros((2, 1, 28, 28), np.uint8), (3, 32, 32), "crop").shape
(2, 3, 32, 32)
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnlab.data.decode import fit, to_mode
from cnnlab.data.progress import ProgressFn, make_progress
from cnnlab.data.types import Resize


def conform(images: np.ndarray, input_shape: tuple[int, int, int], resize: str | Resize,
            progress: bool | ProgressFn | None = None) -> np.ndarray:
    """Return ``images`` as uint8 ``input_shape``-shaped rows (the same object when it already fits)."""
    n, c, h, w = images.shape
    tc, th, tw = (int(v) for v in input_shape)
    if (c, h, w) == (tc, th, tw):
        return images
    if (h, w) == (th, tw):
        return _channels(images, tc)
    policy = Resize.parse(resize)
    out = np.empty((n, tc, th, tw), np.uint8)
    mode = "L" if tc == 1 else "RGB"
    bar = make_progress(progress, n, f"resizing to {th}x{tw}")
    try:
        for i in range(n):
            src = images[i, 0] if c == 1 else images[i].transpose(1, 2, 0)  # (H, W) or (H, W, 3)
            img = to_mode(Image.fromarray(np.ascontiguousarray(src)), mode)
            arr = np.asarray(fit(img, (tw, th), policy), np.uint8)
            out[i] = arr[None] if tc == 1 else arr.transpose(2, 0, 1)
            if i % 1000 == 999:
                bar.update(i + 1)
        bar.update(n)
    finally:
        bar.close()
    return out


def grey(images: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(N, 3, H, W)`` -> ``(N, 1, H, W)`` exactly as Pillow's ``convert("L")`` (the decoder's path).

    ITU-R 601-2 luma in Pillow's 16-bit fixed point (``libImaging/Convert.c``, ``L24``), so arrays
    (IDX, CIFAR) and decoded image files of the same pixels give the same grey values.
    """
    rgb = images.astype(np.uint32)
    luma = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16  # (N, H, W)
    return luma[:, None].astype(np.uint8)


def _channels(images: np.ndarray, target: int) -> np.ndarray:
    c = images.shape[1]
    if c == target:
        return images
    if c == 1 and target == 3:
        return np.ascontiguousarray(np.repeat(images, 3, axis=1))  # grey replicated into R, G, B
    if c == 3 and target == 1:
        return grey(images)
    raise ValueError(f"cannot convert {c} channels to {target}")
