"""Sources: the bundled sample, IDX files, named datasets via $CNNLAB_DATA, image folders.

Run: ``.venv/bin/pytest tests/test_data_sources.py``. References: the published MNIST test-set
class counts (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009) and hand-built files.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.errors import DataError

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = struct.pack(">IIII", 2051, *images.shape) + images.tobytes()
    lab = struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    for name, data in ((f"{prefix}-images-idx3-ubyte", img), (f"{prefix}-labels-idx1-ubyte", lab)):
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def test_sample_is_the_mnist_test_set_split_80_10_10() -> None:
    b = load_data("sample", (1, 28, 28), progress=False)
    assert b.test is not None
    assert (len(b.train), len(b.val), len(b.test)) == (8000, 1000, 1000)
    total = np.bincount(np.concatenate([b.train.labels, b.val.labels, b.test.labels]), minlength=10)
    assert total.tolist() == MNIST_TEST_COUNTS
    # stratified: each class has ~10 % of its images in val
    val = np.bincount(b.val.labels, minlength=10)
    assert np.all(np.abs(val - np.array(MNIST_TEST_COUNTS) * 0.1) <= 1)
    # disjoint splits
    srcs = [set(s.sources) for s in (b.train, b.val, b.test)]
    assert not (srcs[0] & srcs[1] or srcs[0] & srcs[2] or srcs[1] & srcs[2])
    assert b.classes == [str(d) for d in range(10)]


def test_sample_split_ignores_the_run_seed() -> None:
    a = load_data("sample", (1, 28, 28), seed=0, progress=False)
    b = load_data("sample", (1, 28, 28), seed=123, progress=False)
    assert a.test is not None and b.test is not None and a.test.sources == b.test.sources


def test_sample_mean_std_match_numpy_on_train_split() -> None:
    b = load_data("sample", (1, 28, 28), progress=False)
    px = b.train.images.astype(np.float64) / 255.0
    assert b.mean[0] == pytest.approx(px.mean(), abs=1e-6)
    assert b.std[0] == pytest.approx(px.std(), abs=1e-6)


def test_sample_resized_to_rgb_32() -> None:
    b = load_data("sample", (3, 32, 32), progress=False)
    assert b.train.images.shape == (8000, 3, 32, 32)
    assert np.array_equal(b.train.images[:, 0], b.train.images[:, 2])  # grey replicated


def test_idx_folder_plain_and_gz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 4
    write_idx(tmp_path / "a", "train", imgs, labels, gz=True)
    write_idx(tmp_path / "b", "train", imgs, labels, gz=False)
    for sub in ("a", "b"):
        b = load_data(tmp_path / sub, (1, 28, 28), val_split=0.25, progress=False)
        assert len(b.train) == 30 and len(b.val) == 10
        row = int(b.val.sources[0].rsplit(":", 1)[1])
        assert np.array_equal(b.val.images[0, 0], imgs[row])
        assert b.val.labels[0] == labels[row]


def test_named_mnist_from_cnnlab_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "mnist", "train", rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), np.arange(50) % 10)
    write_idx(tmp_path / "mnist", "t10k", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    b = load_data("MNIST", (1, 28, 28), val_split=0.2, progress=False)
    assert b.test is not None and len(b.test) == 20  # the official test set
    assert len(b.train) == 40 and len(b.val) == 10  # val taken from train, stratified: 1 per class
    assert np.bincount(b.val.labels).tolist() == [1] * 10
    assert b.source == "mnist"


def test_truncated_idx_is_a_precise_error(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", np.zeros((10, 28, 28), np.uint8), np.arange(10) % 2, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_data(tmp_path, (1, 28, 28), progress=False)


def test_truncated_gzip_idx_is_a_precise_error(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", np.zeros((10, 28, 28), np.uint8), np.arange(10) % 2, gz=True)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(DataError, match="gzip data is truncated or corrupt.*download the file again"):
        load_data(tmp_path, (1, 28, 28), progress=False)


def test_labels_and_images_disagree(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", np.zeros((10, 28, 28), np.uint8), np.arange(10) % 2)
    write_idx(tmp_path / "x", "train", np.zeros((4, 28, 28), np.uint8), np.arange(4) % 2)
    (tmp_path / "x" / "train-labels-idx1-ubyte.gz").replace(tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="has 10 images but .* has 4 labels"):
        load_data(tmp_path, (1, 28, 28), progress=False)


def make_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (20, 16)) -> None:
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (k * 60, i * 3 % 256, 100)).save(root / name / f"{i}.png")


def test_folder_stratified_split_and_sorted_classes(tmp_path: Path) -> None:
    make_folder(tmp_path, {"zebra": 10, "ant": 20})
    b = load_data(tmp_path, (3, 8, 8), val_split=0.2, cache_dir=False, progress=False)
    assert b.classes == ["ant", "zebra"]
    assert b.counts() == {"train": {"ant": 16, "zebra": 8}, "val": {"ant": 4, "zebra": 2}}
    # zebra was written first (red 0), ant second (red 60); labels follow sorted names
    assert np.all(b.train.images[b.train.labels == 1][:, 0] == 0)
    assert np.all(b.train.images[b.train.labels == 0][:, 0] == 60)


def test_folder_with_train_and_validation(tmp_path: Path) -> None:
    make_folder(tmp_path / "train", {"cats": 6, "dogs": 5})
    make_folder(tmp_path / "validation", {"cats": 2, "dogs": 3})
    b = load_data(tmp_path, (3, 8, 8), cache_dir=False, progress=False)
    assert b.counts() == {"train": {"cats": 6, "dogs": 5}, "val": {"cats": 2, "dogs": 3}}
    assert all("/validation/" in s for s in b.val.sources)


def test_unknown_name_suggests_the_closest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="did you mean 'mnist'"):
        load_data("minst", (1, 28, 28), progress=False)


@pytest.mark.parametrize("gz", [True, False])
def test_lazy_idx_gather_equals_numpy_indexing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool) -> None:
    from cnnlab.data import idx_lazy

    monkeypatch.setattr(idx_lazy, "BLOCK_ROWS", 7)  # many block boundaries
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (50, 5, 4), dtype=np.uint8)
    write_idx(tmp_path, "train", imgs, np.zeros(50, np.uint8), gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    lazy = idx_lazy.IdxImages(tmp_path / name)
    assert lazy.shape == (50, 1, 5, 4)
    index = np.array([49, 3, 3, 0, 21, 7, 6, 48])  # unsorted, repeated, at block edges
    assert np.array_equal(lazy[index][:, 0], imgs[index])
    assert np.array_equal(np.asarray(lazy)[:, 0], imgs)


def test_idx_resized_once_then_read_from_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "d", "train", imgs, np.arange(30) % 3)
    cache = tmp_path / "cache"
    first = load_data(tmp_path / "d", (1, 32, 32), val_split=0.0, cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npy"))) == 1
    second = load_data(tmp_path / "d", (1, 32, 32), val_split=0.0, cache_dir=cache, progress=False)
    assert np.array_equal(first.train.images, second.train.images)
    # reference: Pillow's bilinear resize of the same digit (square to square: crop == stretch)
    ref = np.asarray(Image.fromarray(imgs[7]).resize((32, 32), Image.Resampling.BILINEAR))
    assert np.array_equal(second.train.images[7, 0], ref)
