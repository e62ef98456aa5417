"""``cnnlab.data.load_split``: one split of a source, read without the others and without training
statistics (#15, report time), and the report's evaluation path that uses it for a run's own data.

Reference for every comparison: the same split of :func:`cnnlab.data.load_data` with the same arguments.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from _trust_data import stripes_folder
from cnnlab.data import api as data_api
from cnnlab.data import load_data, load_split
from cnnlab.data.idx_lazy import IdxImages
from cnnlab.errors import DataError


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = struct.pack(">IIII", 2051, *images.shape) + images.tobytes()
    lab = struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(img))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lab))


def _idx_folder(root: Path, n_train: int = 600, n_test: int = 100, side: int = 8, seed: int = 0) -> Path:
    """An MNIST-like IDX folder: 10 classes, each image a noisy bar whose position is its label."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
        for i, lab in enumerate(labels):
            images[i, lab % side, :] = 200 + lab
        _write_idx(root, prefix, images, labels)
    return root


def _same(a, b) -> None:  # two ImageSets
    assert a.images.dtype == b.images.dtype == np.uint8
    assert a.images.shape == b.images.shape
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert list(a.classes) == list(b.classes)
    assert list(a.sources) == list(b.sources)


@pytest.mark.parametrize("split", ["val", "test", "train"])
@pytest.mark.parametrize(("val_split", "seed"), [(0.1, 0), (0.25, 7)])
def test_idx_split_equals_the_full_load(tmp_path, split, val_split, seed):
    folder = _idx_folder(tmp_path / "idx")
    full = getattr(load_data(str(folder), (1, 8, 8), val_split=val_split, seed=seed, progress=False), split)
    only = load_split(str(folder), (1, 8, 8), split, val_split=val_split, seed=seed, progress=False)
    assert only is not None and len(only.labels) > 0
    _same(only, full)


def test_idx_resized_split_equals_the_full_load(tmp_path):
    folder = _idx_folder(tmp_path / "idx")
    full = load_data(str(folder), (3, 12, 12), resize="stretch", cache_dir=tmp_path / "c", progress=False).val
    only = load_split(str(folder), (3, 12, 12), "val", resize="stretch", cache_dir=tmp_path / "c", progress=False)
    _same(only, full)


@pytest.mark.parametrize("split", ["val", "test", "train"])
def test_folder_split_equals_the_full_load(tmp_path, split):
    data = stripes_folder(tmp_path / "data", n=20)
    kw = {"val_split": 0.2, "test_split": 0.2, "seed": 5, "cache_dir": tmp_path / "c", "progress": False}
    _same(load_split(str(data), (3, 12, 12), split, **kw), getattr(load_data(str(data), (3, 12, 12), **kw), split))


def test_sample_keeps_its_own_fixed_split(tmp_path):
    # the bundled sample ignores val_split/seed (always 80/10/10, seed 0): load_split must too
    full = load_data("sample", (1, 28, 28), val_split=0.3, seed=9, progress=False).val
    _same(load_split("sample", (1, 28, 28), "val", val_split=0.3, seed=9, progress=False), full)


def test_no_statistics_and_no_training_rows_are_read(tmp_path, monkeypatch):
    folder = _idx_folder(tmp_path / "idx")
    full = load_data(str(folder), (1, 8, 8), progress=False)

    def boom(*_a, **_k):
        raise AssertionError("training statistics computed")

    asked: list[int] = []
    real = IdxImages.__getitem__

    def counting(self, index):
        out = real(self, index)
        asked.append(len(out))
        return out

    monkeypatch.setattr(data_api, "channel_stats", boom)
    monkeypatch.setattr(IdxImages, "__getitem__", counting)
    only = load_split(str(folder), (1, 8, 8), "val", progress=False)
    _same(only, full.val)
    assert asked == [len(full.val.labels)]  # only the validation rows were decoded
    with pytest.raises(AssertionError, match="statistics"):  # the full path does compute them here
        load_data(str(folder), (1, 8, 8), progress=False)


def test_a_source_without_that_split_gives_none_and_bad_names_are_refused(tmp_path):
    data = stripes_folder(tmp_path / "data", n=10)
    assert load_split(str(data), (3, 12, 12), "test", test_split=0.0, cache_dir=tmp_path / "c", progress=False) is None
    with pytest.raises(DataError, match="unknown split"):
        load_split(str(data), (3, 12, 12), "all", progress=False)


# ---------------------------------------------------------------- the report's path for a run's own data

SPEC = {"name": "bars", "input": [1, 8, 8],
        "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten", {"output": 10}]}


@pytest.fixture(scope="module")
def idx_run(tmp_path_factory) -> dict[str, Path]:
    from cnnlab.train.api import fit

    root = tmp_path_factory.mktemp("idxrun")
    data = _idx_folder(root / "data")
    fit(SPEC, str(data), out=root / "run", epochs=1, batch_size=64, threads=1, seed=3, val_split=0.2, quiet=True)
    return {"root": root, "data": data, "run": root / "run"}


def test_run_evaluation_set_is_the_held_out_split_without_a_full_load(idx_run, monkeypatch):
    import cnnlab.data
    from cnnlab.inference.dataset import evaluation_set
    from cnnlab.train import load_run

    run = load_run(idx_run["run"])
    full = load_data(str(idx_run["data"]), (1, 8, 8), val_split=0.2, seed=3, progress=False)
    # the normalisation the report uses (recorded by the run) is what the full load recomputes
    np.testing.assert_allclose(run.mean, full.mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(run.std, full.std, rtol=0, atol=1e-6)

    def boom(*_a, **_k):
        raise AssertionError("full load_data on the report path")

    monkeypatch.setattr(cnnlab.data, "load_data", boom, raising=False)
    images, label = evaluation_set(run, None, "val", "en", max_images=None)
    _same(images, full.val)
    assert f"{len(full.val.labels)}" in label


def test_run_evaluation_set_refuses_a_changed_split(idx_run, tmp_path):
    import json
    import shutil

    from cnnlab.inference.dataset import evaluation_set
    from cnnlab.train import load_run

    data = tmp_path / "data"
    shutil.copytree(idx_run["data"], data)
    run_dir = tmp_path / "run"
    shutil.copytree(idx_run["run"], run_dir)
    info = json.loads((run_dir / "data.json").read_text())
    info["source"] = str(data)
    (run_dir / "data.json").write_text(json.dumps(info))
    full = load_data(str(data), (1, 8, 8), val_split=0.2, seed=3, progress=False)
    evaluation_set(load_run(run_dir), None, "val", "en")  # unchanged: fine
    row = int(full.val.sources[0].rsplit(":", 1)[1])  # a validation image's row in the IDX file
    with gzip.open(data / "train-images-idx3-ubyte.gz", "rb") as fh:
        raw = bytearray(fh.read())
    raw[16 + row * 64] ^= 255  # one pixel of one held-out image
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="differs from the one recorded"):
        evaluation_set(load_run(run_dir), None, "val", "en")
