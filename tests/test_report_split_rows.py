"""The held-out rows a report reloads from an IDX file (MNIST) are kept in the decoded-image cache, so a
repeated report reads no gzip: the same rows as a full load, and any change of the file reads it again.

Reference: the same split of :func:`cnnlab.data.load_data` with the cache off.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import load_data, load_split
from cnnlab.data.cache import cache_files
from cnnlab.data.idx_lazy import IdxImages


def _idx_folder(root: Path, n: int = 400, side: int = 8, seed: int = 0) -> Path:
    """train-* IDX files: 10 classes, each image a noisy bar whose row is its label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
    images[np.arange(n), labels % side, :] = 200
    root.mkdir(parents=True, exist_ok=True)
    (root / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">IIII", 2051, n, side, side) + images.tobytes()))
    (root / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()))
    return root


def _same(a, b) -> None:  # noqa: ANN001 - two ImageSets
    np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
    np.testing.assert_array_equal(a.labels, b.labels)
    assert list(a.sources) == list(b.sources) and list(a.classes) == list(b.classes)


@pytest.fixture()
def no_gzip(monkeypatch):  # noqa: ANN001, ANN201
    """Makes any pass over an IDX file fail, to show a call read none."""
    def refuse(self, wanted, order, out):  # noqa: ANN001, ANN202
        raise AssertionError(f"read {self.path}")

    def arm() -> None:
        monkeypatch.setattr(IdxImages, "_gather", refuse)

    return arm


@pytest.mark.parametrize("split", ["val", "test"])
def test_second_load_reads_no_gzip_and_equals_the_full_load(tmp_path, no_gzip, split) -> None:
    folder = _idx_folder(tmp_path / "idx")
    kw = {"val_split": 0.2, "test_split": 0.1, "seed": 3, "progress": False}
    full = getattr(load_data(str(folder), (1, 8, 8), cache_dir=False, **kw), split)
    first = load_split(str(folder), (1, 8, 8), split, cache_dir=tmp_path / "c", **kw)
    assert len(cache_files(tmp_path / "c")) == 1
    no_gzip()
    second = load_split(str(folder), (1, 8, 8), split, cache_dir=tmp_path / "c", **kw)
    _same(first, full)
    _same(second, full)


def test_rows_of_another_split_or_seed_are_not_reused(tmp_path) -> None:
    folder = _idx_folder(tmp_path / "idx")
    cache = tmp_path / "c"
    for seed in (1, 2):
        got = load_split(str(folder), (1, 8, 8), "val", seed=seed, cache_dir=cache, progress=False)
        _same(got, load_data(str(folder), (1, 8, 8), seed=seed, cache_dir=False, progress=False).val)
    assert len(cache_files(cache)) == 2


def test_a_changed_file_is_read_again(tmp_path) -> None:
    """One pixel of a held-out image rewritten (same file size, new modification time): the new pixels
    are read, not the kept rows. (The key is the data cache's: path, size and mtime of the file.)"""
    folder = _idx_folder(tmp_path / "idx")
    cache = tmp_path / "c"
    before = load_split(str(folder), (1, 8, 8), "val", cache_dir=cache, progress=False)
    path = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    row = int(before.sources[0].rsplit(":", 1)[1])  # "idx:train:123" -> the file's row
    raw[16 + row * 64] ^= 0xFF  # the first pixel of the first held-out image
    stat = path.stat()
    path.write_bytes(gzip.compress(bytes(raw)))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = load_split(str(folder), (1, 8, 8), "val", cache_dir=cache, progress=False)
    _same(after, load_data(str(folder), (1, 8, 8), cache_dir=False, progress=False).val)
    assert after.images[0, 0, 0, 0] == before.images[0, 0, 0, 0] ^ 0xFF


def test_cache_off_keeps_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "default"))
    folder = _idx_folder(tmp_path / "idx")
    load_split(str(folder), (1, 8, 8), "val", cache_dir=False, progress=False)
    assert not (tmp_path / "default").exists() or not cache_files(tmp_path / "default")
