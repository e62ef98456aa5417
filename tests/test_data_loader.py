"""BatchLoader and Augment: determinism, exact resume, sharding, normalisation, augmentation.

Run: ``.venv/bin/pytest tests/test_data_loader.py``. Images are filled with their own index so
each yielded row can be traced back to the sample it came from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.data import Augment, BatchLoader, ImageSet
from cnnlab.errors import DataError


def indexed_set(n: int = 37, c: int = 1, h: int = 6, w: int = 5) -> ImageSet:
    images = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None], c * h * w, axis=1).reshape(n, c, h, w)
    labels = np.arange(n) % 3
    return ImageSet(images, labels, ["a", "b", "c"], [f"img{i}" for i in range(n)])


def ids(x: torch.Tensor) -> list[int]:
    """Recover sample ids from un-normalised batches (mean 0, std 1 -> x*255 = id)."""
    return [int(v) for v in torch.round(x[:, 0, 0, 0] * 255).tolist()]


def loader(s: ImageSet, batch_size: int = 8, **kw: object) -> BatchLoader:
    args: dict[str, object] = {"shuffle": True, "seed": 7, "mean": (0.0,) * s.shape[0], "std": (1.0,) * s.shape[0]}
    args.update(kw)
    return BatchLoader(s, batch_size, **args)  # type: ignore[arg-type]


def test_epoch_is_a_permutation_and_labels_follow_images() -> None:
    s = indexed_set()
    seen: list[int] = []
    for x, y in loader(s):
        got = ids(x)
        assert y.tolist() == [i % 3 for i in got]
        seen += got
    assert sorted(seen) == list(range(37))
    assert seen != list(range(37))  # shuffled


def test_order_depends_on_seed_and_epoch_only() -> None:
    s = indexed_set()
    a, b = loader(s), loader(s)
    a.set_epoch(3)
    b.set_epoch(3)
    assert [ids(x) for x, _ in a] == [ids(x) for x, _ in b]
    b.set_epoch(4)
    assert [ids(x) for x, _ in a] != [ids(x) for x, _ in b]
    c = loader(s, seed=8)
    c.set_epoch(3)
    assert [ids(x) for x, _ in a] != [ids(x) for x, _ in c]


def test_iter_from_reproduces_the_uninterrupted_run_bit_for_bit() -> None:
    s = indexed_set(n=50, h=8, w=8)
    aug = Augment(translate=2, hflip=True)
    full = loader(s, augment=aug)
    full.set_epoch(5)
    batches = list(full)
    resumed = loader(s, augment=aug)  # a fresh process after a crash
    resumed.set_epoch(5)
    tail = list(resumed.iter_from(3))
    assert len(tail) == len(batches) - 3
    for (x1, y1), (x2, y2) in zip(batches[3:], tail, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_normalisation_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    s = ImageSet(images, np.zeros(10, np.int64), ["a"], ["?"] * 10)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    x, _ = next(iter(BatchLoader(s, 10, shuffle=False, mean=mean, std=std)))
    ref = (images / 255.0 - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    assert x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_evaluation_shards_cover_every_sample_once(world: int) -> None:
    s = indexed_set(n=37)
    got: list[int] = []
    for rank in range(world):
        got += [i for x, _ in loader(s, shuffle=False, rank=rank, world_size=world) for i in ids(x)]
    assert sorted(got) == list(range(37))  # no padding, no duplicates, nothing lost


def test_training_shards_are_equal_and_cover_everything() -> None:
    s = indexed_set(n=37)
    shards = [loader(s, rank=r, world_size=4).indices() for r in range(4)]
    assert {len(sh) for sh in shards} == {10}  # ceil(37 / 4)
    assert set(np.concatenate(shards).tolist()) == set(range(37))


def test_len_and_drop_last() -> None:
    s = indexed_set(n=37)
    assert len(loader(s)) == 5 and len(list(loader(s))) == 5  # ceil(37/8)
    dl = loader(s, drop_last=True)
    assert len(dl) == 4 and [len(y) for _, y in dl] == [8, 8, 8, 8]


def shifted(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Reference translation with zero fill: out[y, x] = img[y - dy, x - dx]."""
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
    yi, xi = slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[..., ys, xs] = img[..., yi, xi]
    return out


def test_translate_is_a_zero_filled_shift_within_range() -> None:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.integers(1, 256, (64, 2, 7, 9), dtype=np.uint8))
    out = Augment(translate=2)(x, np.random.default_rng(0)).numpy()
    shifts = set()
    for i in range(64):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if np.array_equal(out[i], shifted(x[i].numpy(), dy, dx))]
        assert match, f"row {i} is not a shift of its input"
        shifts.add(match[0])
    assert len(shifts) > 10  # the offsets vary per sample


def test_hflip_mirrors_about_half() -> None:
    x = torch.arange(200 * 4, dtype=torch.uint8).reshape(200, 1, 1, 4)
    out = Augment(hflip=True)(x, np.random.default_rng(0))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(200)]
    kept = [torch.equal(out[i], x[i]) for i in range(200)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 70 < sum(flipped) < 130


def test_bad_arguments_raise_data_error() -> None:
    s = indexed_set()
    with pytest.raises(DataError, match="batch_size"):
        BatchLoader(s, 0, shuffle=True, mean=(0.0,), std=(1.0,))
    with pytest.raises(DataError, match="channel"):
        BatchLoader(s, 4, shuffle=True, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    with pytest.raises(DataError, match="rank"):
        BatchLoader(s, 4, shuffle=True, mean=(0.0,), std=(1.0,), rank=2, world_size=2)


def test_torch_and_numpy_augmentation_are_identical() -> None:
    """The CUDA path (torch ops) and the CPU path (numpy) apply the same draws the same way."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (32, 3, 9, 7), dtype=np.uint8)
    aug = Augment(translate=3, hflip=True)
    d = aug.draw(32, np.random.default_rng(11))
    assert d.flips.any() and not d.flips.all()
    assert np.array_equal(aug.apply_numpy(x, d), aug.apply_torch(torch.from_numpy(x), d).numpy())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_equal_cpu_batches() -> None:
    s = indexed_set(n=50, h=8, w=8)
    aug = Augment(translate=2, hflip=True)
    cpu = list(loader(s, augment=aug))
    gpu = list(loader(s, augment=aug, device="cuda"))
    for (x1, y1), (x2, y2) in zip(cpu, gpu, strict=True):
        assert torch.allclose(x1, x2.cpu(), atol=1e-6) and torch.equal(y1, y2.cpu())


@pytest.mark.parametrize(("nbytes", "free", "fraction", "fits"), [
    (47_040_000 + 480_000, 80 * 2**30, 0.25, True),  # MNIST train (60,000 x 28 x 28 + int64 labels) on an 80 GB GPU
    (25, 100, 0.25, True),  # exactly the budget
    (26, 100, 0.25, False),
    (1, 100, 0.0, False),  # fraction 0: never resident
    (1, 0, 0.25, False),  # free memory unknown (0): batch by batch
])
def test_fits_on_device(nbytes: int, free: int, fraction: float, fits: bool) -> None:
    from cnnlab.data.loader import fits_on_device

    assert fits_on_device(nbytes, free, fraction) is fits


def test_device_resident_gather_yields_the_cpu_batches() -> None:
    """The gather-by-index path (run here on CPU tensors) gives the CPU path's batches, augmentation included."""
    s = indexed_set(n=50, h=8, w=8)
    aug = Augment(translate=2, hflip=True)
    cpu = loader(s, augment=aug)
    assert cpu.device_images is None  # never resident on the CPU
    resident = loader(s, augment=aug)
    resident.device_images, resident.device_labels = torch.from_numpy(s.images), torch.from_numpy(resident.labels)
    for epoch in (0, 1):
        cpu.set_epoch(epoch)
        resident.set_epoch(epoch)
        for (x1, y1), (x2, y2) in zip(cpu.iter_from(2), resident.iter_from(2), strict=True):
            assert torch.allclose(x1, x2, atol=1e-6) and torch.equal(y1, y2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_small_data_set_lives_on_the_gpu_and_a_zero_budget_does_not() -> None:
    s = indexed_set(n=50, h=8, w=8)
    gpu = loader(s, device="cuda")
    assert gpu.device_images is not None and gpu.device_images.is_cuda and gpu.device_images.dtype == torch.uint8
    x, y = next(iter(gpu))
    assert x.is_cuda and y.is_cuda
    assert loader(s, device="cuda", device_fraction=0.0).device_images is None
