"""``BatchLoader``: batches straight from the uint8 array, shuffled by index, deterministic.

The order of an epoch is a function of ``(seed, epoch)`` only and the augmentation of a batch of
``(seed, epoch, batch_index)`` only (plus the rank, fixed for a process), so
``loader.iter_from(k)`` after an interruption yields exactly the batches ``k, k+1, ...`` that the
uninterrupted run would have seen. No per-sample Python: a batch is one ``np.take`` of uint8 rows;
on the CPU, augmentation and normalisation are numpy operations on the whole batch (torch's
intra-op threads cost more than they save on batch-sized tensors). On CUDA/MPS a data set that fits
(uint8 pixels + labels at most ``device_fraction`` of the free device memory, see ``fits_on_device``:
MNIST, Fashion-MNIST, CIFAR) is copied to the device once and each batch is gathered there by index;
a larger one goes batch by batch (a pinned uint8 copy). Either way augmentation and normalisation run
on the device with torch operations; the batches (and their order) are the same.

>>> import numpy as np
>>> from cnnlab.data.types import ImageSet
>>> s = ImageSet(np.zeros((10, 1, 2, 2), np.uint8), np.arange(10) % 2, ["a", "b"], ["?"] * 10)
>>> loader = BatchLoader(s, 4, shuffle=True, seed=0, mean=(0.0,), std=(1.0,))
>>> len(loader), [tuple(x.shape) for x, _ in loader]
(3, [(4, 1, 2, 2), (4, 1, 2, 2), (2, 1, 2, 2)])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from cnnlab.data.augment import Augment
from cnnlab.data.normalise import scale_shift
from cnnlab.data.types import ImageSet
from cnnlab.errors import DataError

DEVICE_FRACTION = 0.25  # keep a data set on the GPU when it needs at most this share of the free memory


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = DEVICE_FRACTION) -> bool:
    """Whether ``nbytes`` of data may live on a device with ``free_bytes`` free (``fraction`` 0: never).

    >>> fits_on_device(47_000_000, 80_000_000_000), fits_on_device(30, 100), fits_on_device(10, 100, 0.0)
    (True, False, False)
    """
    return fraction > 0 and 0 <= nbytes <= fraction * free_bytes


def free_device_memory(device: torch.device) -> int:
    """Free bytes on a CUDA/MPS device (0 when unknown, or for the CPU)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "mps":
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    except (RuntimeError, AttributeError):  # no driver, or an older torch without these calls
        return 0
    return 0


class BatchLoader:
    """Yield ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` normalised ``(x/255 - mean)/std``, ``y`` int64."""

    def __init__(self, imageset: ImageSet, batch_size: int, *, shuffle: bool, seed: int = 0,
                 mean: Sequence[float], std: Sequence[float], device: str | torch.device = "cpu",
                 augment: Augment | None = None, drop_last: bool = False, rank: int = 0,
                 world_size: int = 1, device_fraction: float = DEVICE_FRACTION) -> None:
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside 0..{world_size - 1} (world_size {world_size})")
        self._scale_np, self._shift_np = scale_shift(mean, std, imageset.images.shape[1])
        self.imageset = imageset
        self.images = imageset.images  # (N, C, H, W) uint8, maybe a memmap
        self.labels = np.ascontiguousarray(imageset.labels, dtype=np.int64)  # (N,)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.rank, self.world_size = int(rank), int(world_size)
        self.device = torch.device(device)
        self.augment = augment if augment is not None and augment.active else None
        self._scale = torch.from_numpy(self._scale_np).to(self.device)
        self._shift = torch.from_numpy(self._shift_np).to(self.device)
        self.epoch = 0
        # the whole data set on the device (CUDA/MPS, when it fits), else None: batches travel one by one
        self.device_images: torch.Tensor | None = None  # (N, C, H, W) uint8
        self.device_labels: torch.Tensor | None = None  # (N,) int64
        if self.device.type in ("cuda", "mps"):
            nbytes = int(self.images.nbytes) + int(self.labels.nbytes)
            if fits_on_device(nbytes, free_device_memory(self.device), device_fraction):
                pixels = np.require(self.images, requirements=["C", "W"])  # a memmap is read-only: copy it
                self.device_images = torch.from_numpy(pixels).to(self.device)
                self.device_labels = torch.from_numpy(self.labels).to(self.device)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order (and augmentation) the next iteration yields."""
        self.epoch = int(epoch)

    def set_batch_size(self, batch_size: int, drop_last: bool | None = None) -> None:
        """Batch size (and last-batch rule) of the next iterations (a batch schedule changes them per epoch).

        The order stays a function of ``(seed, epoch)``: batch ``k`` is positions ``k*B .. (k+1)*B-1`` of it.
        """
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if drop_last is not None:
            self.drop_last = bool(drop_last)

    def indices(self) -> np.ndarray:
        """This rank's sample indices for the current epoch, in yield order."""
        n = len(self.labels)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        if self.world_size == 1:
            return order
        if not self.shuffle:  # evaluation: disjoint contiguous shards, every sample exactly once
            return np.array_split(order, self.world_size)[self.rank]
        total = math.ceil(n / self.world_size) * self.world_size  # training: equal shards
        padded = np.resize(order, total)  # repeats the start of the permutation
        return padded[self.rank:total:self.world_size]

    def __len__(self) -> int:
        n = len(self.indices()) if self.world_size > 1 else len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, batch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``batch_index, batch_index + 1, ...`` of the current epoch."""
        order = self.indices()
        n_batches = len(order) // self.batch_size if self.drop_last else math.ceil(len(order) / self.batch_size)
        return self._batches(order, int(batch_index), n_batches, self.epoch)

    def _batches(self, order: np.ndarray, start: int, stop: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.device_images is not None:
            yield from self._resident_batches(order, start, stop, epoch)
            return
        on_cpu = self.device.type == "cpu"
        for k in range(max(0, start), stop):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            xb = np.take(self.images, idx, axis=0)  # (B, C, H, W) uint8, a fresh copy
            yb = torch.from_numpy(self.labels[idx])  # (B,)
            draw = self.augment.draw(len(idx), self._rng(epoch, k)) if self.augment is not None else None
            if on_cpu:
                # numpy on the CPU: torch intra-op threads cost more than they save on batch-sized tensors
                if draw is not None and self.augment is not None:
                    xb = self.augment.apply_numpy(xb, draw)
                xf = xb.astype(np.float32)
                np.multiply(xf, self._scale_np, out=xf)
                np.subtract(xf, self._shift_np, out=xf)
                yield torch.from_numpy(xf), yb
            else:
                xt = torch.from_numpy(xb).pin_memory().to(self.device, non_blocking=True)
                if draw is not None and self.augment is not None:
                    xt = self.augment.apply_torch(xt, draw)
                x = xt.to(torch.float32).mul_(self._scale).sub_(self._shift)  # (B, C, H, W) on device
                yield x, yb.pin_memory().to(self.device, non_blocking=True)

    def _resident_batches(self, order: np.ndarray, start: int, stop: int,
                          epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches gathered on the device from ``device_images``: no host copy, no transfer per batch."""
        assert self.device_images is not None and self.device_labels is not None
        order_t = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64)).to(self.device)  # (n,) once
        for k in range(max(0, start), stop):
            idx = order_t[k * self.batch_size:(k + 1) * self.batch_size]  # (B,) on the device
            xt = self.device_images.index_select(0, idx)  # (B, C, H, W) uint8
            if self.augment is not None:
                xt = self.augment.apply_torch(xt, self.augment.draw(len(idx), self._rng(epoch, k)))
            x = xt.to(torch.float32).mul_(self._scale).sub_(self._shift)  # (B, C, H, W) float32
            yield x, self.device_labels.index_select(0, idx)

    def _rng(self, epoch: int, batch_index: int) -> np.random.Generator:
        """The augmentation random stream of one batch: a function of (seed, epoch, batch, rank)."""
        return np.random.Generator(np.random.Philox(key=_mix(self.seed, epoch, batch_index, self.rank)))


def _mix(*values: int) -> int:
    """A 64-bit hash of small integers (splitmix64 steps); cheap enough to call per batch."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = h * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h
