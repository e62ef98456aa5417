"""``BatchLoader``: batches straight from the uint8 array, shuffled by index, deterministic.

The order of an epoch is a function of ``(seed, epoch)`` only and the augmentation of a batch of
``(seed, epoch, batch_index)`` only (plus the rank, fixed for a process), so
``loader.iter_from(k)`` after an interruption yields exactly the batches ``k, k+1, ...`` that the
uninterrupted run would have seen. No per-sample Python: a batch is one ``np.take`` of rows, one
transfer, one normalisation (and augmentation) on the target device.

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
from cnnlab.data.types import ImageSet
from cnnlab.errors import DataError


class BatchLoader:
    """Yield ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` normalised ``(x/255 - mean)/std``, ``y`` int64."""

    def __init__(self, imageset: ImageSet, batch_size: int, *, shuffle: bool, seed: int = 0,
                 mean: Sequence[float], std: Sequence[float], device: str | torch.device = "cpu",
                 augment: Augment | None = None, drop_last: bool = False, rank: int = 0,
                 world_size: int = 1) -> None:
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside 0..{world_size - 1} (world_size {world_size})")
        channels = imageset.images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise DataError(f"mean/std have {len(mean)}/{len(std)} values but the images have {channels} channel(s)")
        if any(float(s) <= 0 for s in std):
            raise DataError(f"std must be positive per channel, got {tuple(std)}")
        self.imageset = imageset
        self.images = imageset.images  # (N, C, H, W) uint8, maybe a memmap
        self.labels = np.ascontiguousarray(imageset.labels, dtype=np.int64)  # (N,)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.rank, self.world_size = int(rank), int(world_size)
        self.device = torch.device(device)
        self.augment = augment if augment is not None and augment.active else None
        std_t = torch.tensor([float(s) for s in std], dtype=torch.float32)
        mean_t = torch.tensor([float(m) for m in mean], dtype=torch.float32)
        # x/255 - mean) / std == x * scale - shift, one multiply and one subtract per pixel
        self._scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1).to(self.device)  # (1, C, 1, 1)
        self._shift = (mean_t / std_t).view(1, -1, 1, 1).to(self.device)  # (1, C, 1, 1)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order (and augmentation) the next iteration yields."""
        self.epoch = int(epoch)

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
        pin = self.device.type == "cuda"
        for k in range(max(0, start), stop):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            xb = torch.from_numpy(np.take(self.images, idx, axis=0))  # (B, C, H, W) uint8
            yb = torch.from_numpy(self.labels[idx])  # (B,)
            if pin:
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb = xb.to(self.device, non_blocking=pin)
            yb = yb.to(self.device, non_blocking=pin)
            if self.augment is not None:
                xb = self.augment(xb, self._generator(epoch, k))
            x = xb.to(torch.float32).mul_(self._scale).sub_(self._shift)  # (B, C, H, W)
            yield x, yb

    def _generator(self, epoch: int, batch_index: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, epoch, batch_index, self.rank]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
