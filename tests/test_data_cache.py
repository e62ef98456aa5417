"""The decoded-image cache and the parallel decoder.

Run: ``.venv/bin/pytest tests/test_data_cache.py``. The reference for the parallel decoder is
the same files decoded one by one in this process.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.data.cache import cache_files
from cnnlab.data.ingest import decode_files


def folder(root: Path, n: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            size = (int(rng.integers(8, 40)), int(rng.integers(8, 40)))
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "a" / "bad.jpg").write_bytes(b"")
    return root


def test_second_load_is_a_memmap_with_identical_pixels(tmp_path: Path) -> None:
    root = tmp_path / "d"
    folder(root / "train")
    folder(root / "val", n=3)
    cache = tmp_path / "cache"
    first = load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    assert len(cache_files(cache)) == 1
    second = load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    for split in (second.train, second.val):  # given splits are views of the cache file, not copies
        assert isinstance(split.images, np.memmap) or isinstance(split.images.base, np.memmap)
    assert np.array_equal(first.train.images, second.train.images)
    assert first.train.sources == second.train.sources and first.skipped == second.skipped
    assert not list(cache.glob("*.tmp"))  # nothing half-written left behind


def test_key_changes_with_mtime_size_shape_and_policy(tmp_path: Path) -> None:
    root = folder(tmp_path / "d")
    cache = tmp_path / "cache"
    load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    load_data(root, (3, 12, 12), resize="pad", cache_dir=cache, progress=False)
    load_data(root, (3, 10, 12), cache_dir=cache, progress=False)
    assert len(cache_files(cache)) == 3
    p = root / "b" / "3.png"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    assert len(cache_files(cache)) == 4
    Image.new("RGB", (9, 9), (1, 2, 3)).save(root / "b" / "new.png")
    b = load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    assert len(cache_files(cache)) == 5 and len(b.train) + len(b.val) == 21


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    root = folder(tmp_path / "d")
    cache = tmp_path / "cache"
    ref = load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    npy = cache_files(cache)[0]
    npy.write_bytes(npy.read_bytes()[:100])
    again = load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    assert np.array_equal(ref.train.images, again.train.images)


@pytest.mark.parametrize("method", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_parallel_decode_equals_in_process_decode(tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """fork: workers write into a shared mapping; spawn (macOS/Windows): they send rows back."""
    from cnnlab.data import ingest

    monkeypatch.setattr(ingest, "_START_METHOD", method)
    workers = 2
    root = folder(tmp_path / "d", n=45)  # 90 good files + 1 bad: over the in-process threshold
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    par = decode_files(paths, (3, 16, 16), "crop", workers=workers, progress=False)
    ref = decode_files(paths, (3, 16, 16), "crop", workers=1, progress=False)
    assert np.array_equal(par.images, ref.images) and par.ok.tolist() == ref.ok.tolist()
    assert par.skipped == ref.skipped == [(str(root / "a" / "bad.jpg"), "empty file (0 bytes)")]
    assert par.hashes == ref.hashes


def test_progress_callback_reaches_total(tmp_path: Path) -> None:
    root = folder(tmp_path / "d")
    seen: list[tuple[int, int]] = []
    load_data(root, (3, 8, 8), cache_dir=False, progress=lambda done, total, label: seen.append((done, total)))
    assert seen and seen[-1] == (21, 21)


def test_remembered_mean_std_match_numpy_for_each_split(tmp_path: Path) -> None:
    root = folder(tmp_path / "d")
    cache = tmp_path / "cache"
    for val_split in (0.2, 0.5, 0.2):  # the third run reads the remembered figures
        b = load_data(root, (3, 12, 12), val_split=val_split, cache_dir=cache, progress=False)
        px = b.train.images.astype(np.float64) / 255.0
        np.testing.assert_allclose(b.mean, px.mean(axis=(0, 2, 3)), atol=1e-6)
        np.testing.assert_allclose(b.std, px.std(axis=(0, 2, 3)), atol=1e-6)
    assert len(list(cache.glob("*.stats.json"))) == 1


def test_batches_from_a_read_only_memmap(tmp_path: Path) -> None:
    import torch

    from cnnlab.data import BatchLoader

    root = tmp_path / "d"
    folder(root / "train")
    folder(root / "val", n=3)
    cache = tmp_path / "cache"
    load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    b = load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    assert not b.train.images.flags.writeable
    loader = BatchLoader(b.train, 7, shuffle=False, mean=b.mean, std=b.std)
    x = torch.cat([xb for xb, _ in loader])
    ref = (b.train.images / 255.0 - np.array(b.mean)[None, :, None, None]) / np.array(b.std)[None, :, None, None]
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-5)


def test_two_processes_decode_once(tmp_path: Path) -> None:
    """Two loaders started together (like two DDP ranks): the second waits and reads the cache."""
    import multiprocessing as mp

    root = folder(tmp_path / "d")
    cache = tmp_path / "cache"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_load_and_count, args=(root, cache, tmp_path / f"r{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    calls = sorted(int((tmp_path / f"r{i}").read_text()) for i in range(2))
    assert calls == [0, 1]  # exactly one of them decoded
    assert len(cache_files(cache)) == 1


def _load_and_count(root: Path, cache: Path, out: Path) -> None:
    from cnnlab.data import ingest

    calls = []
    real = ingest.decode_files

    def counting(*args: object, **kw: object) -> object:
        import time

        calls.append(1)
        time.sleep(0.5)  # make the two decodes overlap if nothing serialises them
        return real(*args, **kw)  # type: ignore[arg-type]

    import cnnlab.data.folder_source as fs

    fs.decode_files = counting  # type: ignore[assignment]
    load_data(root, (3, 12, 12), cache_dir=cache, progress=False)
    out.write_text(str(len(calls)))
