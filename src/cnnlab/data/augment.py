"""Batch augmentation: random zoom-in (crop + nearest resize), rotation and scale (about the centre,
nearest neighbour, zero fill), translation (zero padding + crop), flip.

The random draws for a batch come from a ``numpy.random.Generator`` the loader seeds from
``(seed, epoch, batch_index, rank)``; the same draws are then applied either with numpy (a CPU
batch, no torch intra-op threads on tiny tensors) or with torch on the batch's device (CUDA). Both
are pure copies of uint8 pixels, so CPU and GPU runs see exactly the same crops and flips.

>>> import numpy as np
>>> x = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
>>> aug = Augment(translate=1, hflip=True)
>>> d = Draw(offsets=np.array([[0], [2]]), flips=np.array([True]))   # shift down 1, left 1; mirror
>>> aug.apply_numpy(x, d)[0, 0].tolist()
[[0, 0, 0, 0], [0, 3, 2, 1], [0, 7, 6, 5], [0, 11, 10, 9]]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class Draw:
    """One batch's random choices: ``offsets`` (2, B) in ``0..2t`` (row, col), ``flips`` (B,) bool;
    ``crops`` (4, B) ``(top, left, height, width)`` of the zoom crop, or None without zoom;
    ``angles`` and ``scales`` (B,) of the rotation/scale about the centre, or None without them."""

    offsets: np.ndarray
    flips: np.ndarray
    crops: np.ndarray | None = None
    angles: np.ndarray | None = None  # (B,) degrees, counter-clockwise; None without rotate
    scales: np.ndarray | None = None  # (B,) factors (> 1 enlarges); None without scale


@dataclass(frozen=True)
class Augment:
    """``translate``: shift by up to that many pixels (zero fill); ``hflip``: mirror about half the images;
    ``zoom``: enlarge a random crop by a factor drawn from ``[1, 1 + zoom]`` back to full size
    (nearest neighbour, the same pixels as ``torch.nn.functional.interpolate(mode="nearest-exact")``),
    before the shift and flip. ``rotate``: turn each image by an angle drawn uniformly from
    ``[-rotate, +rotate]`` degrees (positive: counter-clockwise as displayed, like ``np.rot90`` and PIL's
    ``Image.rotate``) about its centre ``((H-1)/2, (W-1)/2)``; ``scale``: enlarge (> 1) or shrink each
    image about its centre by a factor drawn from ``[1 - scale, 1 + scale]``. Rotation and scale come
    after the zoom crop and before the shift and flip, sample the nearest pixel and fill with zeros
    what falls outside; zoom, rotation and scale together are one gather of each pixel.
    ``zoom=0``, ``rotate=0`` and ``scale=0`` (the defaults) draw nothing extra: results stay as before."""

    translate: int = 0
    hflip: bool = False
    zoom: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0

    def __post_init__(self) -> None:
        from cnnlab.errors import DataError

        if int(self.translate) < 0:
            raise DataError(f"augment translate must be >= 0 pixels, got {self.translate}")
        if not 0 <= float(self.zoom) <= 1:
            raise DataError(f"augment zoom must be a fraction from 0 to 1 (0.2: up to 1.2x), got {self.zoom}")
        if not 0 <= float(self.rotate) <= 180:
            raise DataError(f"augment rotate must be a number of degrees from 0 to 180 (10: angles drawn from "
                            f"-10 to +10; 0: off), got {self.rotate}")
        if not 0 <= float(self.scale) < 1:
            raise DataError(f"augment scale must be a fraction from 0 up to (not including) 1 (0.1: factors "
                            f"drawn from 0.9 to 1.1; 0: off), got {self.scale}")

    @property
    def active(self) -> bool:
        return self.translate > 0 or self.hflip or self.zoom > 0 or self.rotate > 0 or self.scale > 0

    def draw(self, batch: int, rng: np.random.Generator, size: tuple[int, int] | None = None) -> Draw:
        """The random choices for ``batch`` images, always drawn in the same order: shift, flip, zoom,
        rotate, scale (each only when on, so switching a later one on leaves the earlier draws as they were).

        ``size`` (H, W) of the images is needed only with ``zoom``.
        """
        t = int(self.translate)
        offsets = rng.integers(0, 2 * t + 1, size=(2, batch)) if t else np.full((2, batch), 0)
        flips = rng.random(batch) < 0.5 if self.hflip else np.zeros(batch, bool)
        crops = None
        if self.zoom > 0:
            if size is None:
                raise ValueError("Augment.draw needs the image size (H, W) when zoom > 0")
            h, w = size
            factor = 1.0 + float(self.zoom) * rng.random(batch)  # (B,) in [1, 1 + zoom)
            ch = np.clip(np.rint(h / factor), 1, h).astype(np.int64)  # (B,) crop height
            cw = np.clip(np.rint(w / factor), 1, w).astype(np.int64)
            top = np.floor(rng.random(batch) * (h - ch + 1)).astype(np.int64)
            left = np.floor(rng.random(batch) * (w - cw + 1)).astype(np.int64)
            crops = np.stack([top, left, ch, cw])  # (4, B)
        angles = (2 * rng.random(batch) - 1) * float(self.rotate) if self.rotate > 0 else None  # (B,) degrees
        scales = 1 + (2 * rng.random(batch) - 1) * float(self.scale) if self.scale > 0 else None  # (B,)
        return Draw(offsets.astype(np.int64), flips, crops, angles, scales)

    def __call__(self, x: Any, rng: np.random.Generator) -> Any:
        """Augment ``x`` (B, C, H, W): a numpy array, or a torch tensor on any device."""
        d = self.draw(int(x.shape[0]), rng, (int(x.shape[2]), int(x.shape[3])))
        return self.apply_numpy(x, d) if isinstance(x, np.ndarray) else self.apply_torch(x, d)

    def apply_numpy(self, x: np.ndarray, d: Draw) -> np.ndarray:
        b, c, h, w = x.shape
        if d.angles is not None or d.scales is not None:
            n = h * w + 1  # each channel plane flat, plus a zero slot for sources outside the image
            flat = np.zeros((b * c, n), x.dtype)  # (B*C, H*W+1)
            flat[:, :h * w] = x.reshape(b * c, h * w)
            flat_1d = flat.reshape(-1)
            warped = np.empty((b, c, h * w), x.dtype)  # (B, C, H*W)
            for lo, hi, index in _warp_chunks(d, h, w):  # index (k, H*W), k images at a time (cache-sized)
                planes = (np.arange(lo * c, hi * c, dtype=np.int64) * n).reshape(hi - lo, c, 1)  # plane starts
                index = index[:, None, :] + planes  # (k, C, H*W): flat positions in ``flat``
                np.take(flat_1d, index, out=warped[lo:hi])
            x = warped.reshape(b, c, h, w)
        elif d.crops is not None:
            index = np.broadcast_to(_zoom_index(d.crops, h, w)[:, None, :], (b, c, h * w))  # (B, C, H*W)
            x = np.take_along_axis(x.reshape(b, c, h * w), index, axis=2).reshape(b, c, h, w)
        t = int(self.translate)
        if t:
            padded = np.zeros((b, c, h + 2 * t, w + 2 * t), x.dtype)  # (B, C, H+2t, W+2t)
            padded[:, :, t:t + h, t:t + w] = x
            windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (B, C, 2t+1, 2t+1, H, W), a view
            x = windows[np.arange(b), :, d.offsets[0], d.offsets[1]]  # (B, C, H, W), one gather
        if d.flips.any():
            x = x.copy() if not t else x
            x[d.flips] = x[d.flips, :, :, ::-1]
        return x

    def apply_torch(self, x: Any, d: Draw) -> Any:
        import torch

        b, c, h, w = x.shape
        if d.angles is not None or d.scales is not None:
            flat = torch.nn.functional.pad(x.reshape(b, c, h * w), (0, 1))  # (B, C, H*W+1), last slot zero
            index = torch.from_numpy(warp_index(d, h, w)).to(x.device)  # (B, H*W) int64
            x = torch.gather(flat, 2, index[:, None, :].expand(b, c, h * w)).view(b, c, h, w)
        elif d.crops is not None:
            index = torch.from_numpy(_zoom_index(d.crops, h, w)).to(x.device)  # (B, H*W)
            x = torch.gather(x.reshape(b, c, h * w), 2, index[:, None, :].expand(b, c, h * w)).view(b, c, h, w)
        t = int(self.translate)
        if t:
            padded = torch.nn.functional.pad(x, (t, t, t, t))  # (B, C, H+2t, W+2t), zeros
            index = torch.from_numpy(_window_index(h, w, t)[d.offsets[0], d.offsets[1]]).to(x.device)  # (B, H*W)
            flat = padded.flatten(2)  # (B, C, (H+2t)*(W+2t))
            x = torch.gather(flat, 2, index[:, None, :].expand(b, c, h * w)).view(b, c, h, w)
        if d.flips.any():
            flips = torch.from_numpy(d.flips).to(x.device)  # (B,)
            x = torch.where(flips[:, None, None, None], x.flip(3), x)
        return x

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"translate": int(self.translate), "hflip": bool(self.hflip)}
        if self.zoom > 0:
            out["zoom"] = float(self.zoom)
        if self.rotate > 0:
            out["rotate"] = float(self.rotate)
        if self.scale > 0:
            out["scale"] = float(self.scale)
        return out


def _zoom_index(crops: np.ndarray, h: int, w: int) -> np.ndarray:
    """Flat source positions (B, H*W) of each crop ``(top, left, ch, cw)`` enlarged to (H, W).

    Output pixel ``i`` reads crop pixel ``floor((i + 0.5) * ch / H)`` (the centre rule of
    ``nearest-exact``), in integers: ``((2i + 1) * ch) // (2H)``.
    """
    rows, cols = _zoom_maps(crops, h, w)  # (B, H), (B, W)
    return (rows[:, :, None] * w + cols[:, None, :]).reshape(len(rows), h * w)  # (B, H*W)


def _zoom_maps(crops: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Source row (B, H) and column (B, W) of each output row and column of the enlarged crops."""
    top, left, ch, cw = crops  # each (B,)
    rows = top[:, None] + ((2 * np.arange(h)[None, :] + 1) * ch[:, None]) // (2 * h)  # (B, H)
    cols = left[:, None] + ((2 * np.arange(w)[None, :] + 1) * cw[:, None]) // (2 * w)  # (B, W)
    return rows, cols


# pixels per chunk of the warp: (k, H, W) float64 temporaries under 120 KiB stay in the CPU cache and
# below glibc's default 128 KiB mmap threshold, so they are not page-faulted afresh on every batch
# (measured on MNIST batches of 128: 0 page faults and ~0.6 ms per index, against ~760 faults and 2-6 ms
# for whole-batch temporaries in a process whose malloc has not grown; bench/augment_speed.py)
_CHUNK_PIXELS = 15_000


def warp_index(d: Draw, h: int, w: int) -> np.ndarray:
    """Flat source positions (B, H*W) of zoom, then rotation and scale about the centre; ``H*W`` (one
    past the image: a zero slot) where the source falls outside. See ``_warp_chunks``."""
    out = np.empty((len(d.offsets[0]), h * w), np.int64)  # (B, H*W)
    for lo, hi, index in _warp_chunks(d, h, w):
        out[lo:hi] = index
    return out


def _warp_chunks(d: Draw, h: int, w: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(lo, hi, index)``: the flat source positions (hi - lo, H*W) of images ``lo:hi``, a few at a time.

    Output pixel (i, j) at offset (y, x) = (i - (H-1)/2, j - (W-1)/2) from the centre reads the
    (zoomed) image at the centre plus (x cos a - y sin a, x sin a + y cos a) / s (column, row), rounded
    to the nearest pixel (halves up): a counter-clockwise turn by ``a`` as displayed (rows grow downwards).
    Sources outside the image read position ``H*W``; with zoom, the source pixel of the enlarged crop is
    then looked up in the crop's own nearest map (the pixels of zoom applied first, then the turn).
    """
    b = len(d.offsets[0])
    angles = np.zeros(b) if d.angles is None else np.radians(np.asarray(d.angles, np.float64))  # (B,)
    inv = np.ones(b) if d.scales is None else 1.0 / np.asarray(d.scales, np.float64)  # (B,)
    cos = (np.cos(angles) * inv)[:, None, None]  # (B, 1, 1)
    sin = (np.sin(angles) * inv)[:, None, None]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y = (np.arange(h) - cy)[None, :, None]  # (1, H, 1)
    x = (np.arange(w) - cx)[None, None, :]  # (1, 1, W)
    zoom = _zoom_maps(d.crops, h, w) if d.crops is not None else None  # (B, H), (B, W)
    step = max(1, _CHUNK_PIXELS // (h * w))
    for lo in range(0, b, step):
        hi = min(b, lo + step)
        k = hi - lo
        cols = (cx + 0.5 + x * cos[lo:hi]) - y * sin[lo:hi]  # (k, H, W) float64: source column + 0.5
        rows = (cy + 0.5 + x * sin[lo:hi]) + y * cos[lo:hi]  # (k, H, W) source row + 0.5
        np.floor(cols, out=cols)  # nearest pixel, halves up
        np.floor(rows, out=rows)
        outside = (rows < 0) | (rows >= h) | (cols < 0) | (cols >= w)  # (k, H, W) bool
        if zoom is not None:  # rotated pixel of the enlarged crop -> pixel of the original image
            np.clip(rows, 0, h - 1, out=rows)
            np.clip(cols, 0, w - 1, out=cols)
            rows += (np.arange(k) * h)[:, None, None]  # row r of image lo+m -> row m*H + r of the maps
            cols += (np.arange(k) * w)[:, None, None]
            rows = np.take(zoom[0][lo:hi], rows.astype(np.int64)).astype(np.float64)  # exact integers
            cols = np.take(zoom[1][lo:hi], cols.astype(np.int64)).astype(np.float64)
        rows *= w
        rows += cols  # (k, H, W): flat source position, an exact integer in float64
        rows[outside] = h * w  # the zero slot
        yield lo, hi, rows.astype(np.int64).reshape(k, h * w)


@lru_cache(maxsize=16)
def _window_index(h: int, w: int, t: int) -> np.ndarray:
    """``[oy, ox]`` -> flat positions (H*W,) in the padded (H+2t, W+2t) image of the crop at (oy, ox)."""
    pw = w + 2 * t
    base = (np.arange(h)[:, None] * pw + np.arange(w)[None, :]).reshape(-1)  # (H*W,)
    shifts = np.arange(2 * t + 1)
    index = base[None, None, :] + shifts[:, None, None] * pw + shifts[None, :, None]
    return index  # (2t+1, 2t+1, H*W)
