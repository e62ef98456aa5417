"""CIFAR (binary and python, written here in the exact distributed formats) and CSV sources.

Run: ``.venv/bin/pytest tests/test_data_formats.py``. The python-version batch is assembled opcode
by opcode the way Python 2's cPickle wrote the original ``data_batch_N`` files (protocol 2, str
keys as BINSTRING, ``numpy.core.multiarray._reconstruct``), so the restricted unpickler is tested
on the real layout, not on what today's pickle would write.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.errors import DataError


def records(n: int, seed: int, label_bytes: int = 1) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, (n, label_bytes), dtype=np.uint8)
    return np.concatenate([labels, pixels], axis=1).tobytes(), pixels, labels[:, -1]


def test_cifar10_binary_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "cifar10" / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    expect = []
    for i in range(1, 6):
        data, px, lab = records(4, i)
        (d / f"data_batch_{i}.bin").write_bytes(data)
        expect.append((px, lab))
    test_data, test_px, test_lab = records(5, 99)
    (d / "test_batch.bin").write_bytes(test_data)
    (d / "batches.meta.txt").write_text("\n".join(f"c{k}" for k in range(10)) + "\n\n")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    b = load_data("cifar10", (3, 32, 32), val_split=0.0, progress=False)
    assert b.classes == [f"c{k}" for k in range(10)]
    assert b.test is not None and len(b.test) == 5 and len(b.train) == 20
    # record = label byte, then 1024 R, 1024 G, 1024 B bytes of a row-major 32x32 image
    assert np.array_equal(b.test.images[2, 1].reshape(-1), test_px[2, 1024:2048])
    assert b.test.labels.tolist() == test_lab.tolist()
    assert np.array_equal(b.train.images[5, 2].reshape(-1), expect[1][0][1, 2048:])


def test_cifar100_binary_uses_fine_labels(tmp_path: Path) -> None:
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    data, _, fine = records(6, 0, label_bytes=2)
    (d / "train.bin").write_bytes(data)
    (d / "test.bin").write_bytes(records(3, 1, label_bytes=2)[0])
    (d / "fine_label_names.txt").write_text("\n".join(f"f{k}" for k in range(100)))
    b = load_data(tmp_path, (3, 32, 32), val_split=0.0, progress=False)
    assert len(b.classes) == 100 and b.classes[7] == "f7"
    assert sorted(b.train.labels.tolist()) == sorted(fine.tolist())


def test_truncated_cifar_binary(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1.bin").write_bytes(records(3, 0)[0][:-10])
    with pytest.raises(DataError, match="not a multiple of the 3073-byte CIFAR record"):
        load_data(tmp_path, (3, 32, 32), progress=False)


def _py2_str(b: bytes) -> bytes:
    if len(b) < 256:
        return pickle.SHORT_BINSTRING + bytes([len(b)]) + b
    return pickle.BINSTRING + struct.pack("<i", len(b)) + b


def _py2_int(v: int) -> bytes:
    return pickle.BININT1 + bytes([v]) if v < 256 else pickle.BININT + struct.pack("<i", v)


def py2_cifar_batch(pixels: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR-10 python batch byte for byte as Python 2 cPickle (protocol 2) wrote it."""
    dtype = (pickle.GLOBAL + b"numpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + pickle.TUPLE3
             + pickle.REDUCE + pickle.MARK + _py2_int(3) + _py2_str(b"|") + pickle.NONE * 3
             + pickle.BININT + struct.pack("<i", -1) + pickle.BININT + struct.pack("<i", -1) + _py2_int(0)
             + pickle.TUPLE + pickle.BUILD)
    array = (pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n" + pickle.GLOBAL + b"numpy\nndarray\n"
             + _py2_int(0) + pickle.TUPLE1 + _py2_str(b"b") + pickle.TUPLE3 + pickle.REDUCE
             + pickle.MARK + _py2_int(1) + _py2_int(pixels.shape[0]) + _py2_int(pixels.shape[1]) + pickle.TUPLE2
             + dtype + pickle.NEWFALSE + _py2_str(pixels.tobytes()) + pickle.TUPLE + pickle.BUILD)
    labs = pickle.EMPTY_LIST + pickle.MARK + b"".join(_py2_int(v) for v in labels) + pickle.APPENDS
    return (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK
            + _py2_str(b"data") + array + _py2_str(b"labels") + labs
            + _py2_str(b"batch_label") + _py2_str(b"training batch 1 of 5")
            + pickle.SETITEMS + pickle.STOP)


def test_cifar10_python_version_via_restricted_unpickler(tmp_path: Path) -> None:
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(3)
    px = rng.integers(0, 256, (6, 3072), dtype=np.uint8)
    (d / "data_batch_1").write_bytes(py2_cifar_batch(px, [0, 1, 2, 3, 4, 5]))
    (d / "test_batch").write_bytes(py2_cifar_batch(px[:4], [9, 8, 7, 6]))
    (d / "batches.meta").write_bytes(pickle.dumps({"label_names": []}, protocol=2))
    b = load_data(tmp_path, (3, 32, 32), val_split=0.0, progress=False)
    assert b.test is not None and b.test.labels.tolist() == [9, 8, 7, 6]
    assert np.array_equal(b.test.images[3, 0].reshape(-1), px[3, :1024])


def test_malicious_python_batch_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "data_batch_1").write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(DataError, match="refusing to load .*system.*binary version"):
        load_data(tmp_path, (3, 32, 32), progress=False)
    assert not (tmp_path / "pwned").exists()


def make_images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{i}.png"
        Image.new("L", (6, 6), i * 10).save(p)
        out.append(p)
    return out


def test_csv_with_header_relative_paths_and_numeric_labels(tmp_path: Path) -> None:
    files = make_images(tmp_path / "img", 12)
    rows = ["file,label"] + [f"img/{p.name},{[2, 10][i % 2]}" for i, p in enumerate(files)] + ["img/missing.png,2"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    b = load_data(tmp_path / "list.csv", (1, 6, 6), val_split=0.5, cache_dir=False, progress=False)
    assert b.classes == ["2", "10"]  # numeric order, not "10" < "2"
    assert len(b.train) + len(b.val) == 12
    assert [Path(p).name for p, _ in b.skipped] == ["missing.png"] and b.skipped[0][1] == "no such file"
    # label follows the file: even index -> "2" (class 0)
    for img, lab in zip(b.train.images, b.train.labels, strict=True):
        assert lab == (int(img[0, 0, 0]) // 10) % 2


def test_csv_split_column(tmp_path: Path) -> None:
    files = make_images(tmp_path, 8)
    rows = [f"{p.name},{'ab'[i % 2]},{'train' if i < 6 else 'val'}" for i, p in enumerate(files)]
    (tmp_path / "s.csv").write_text("\n".join(rows))
    b = load_data(tmp_path / "s.csv", (1, 6, 6), cache_dir=False, progress=False)
    assert (len(b.train), len(b.val)) == (6, 2)


def test_csv_bad_row_names_the_row(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("path,label\na.png,cat\nb.png\n")
    with pytest.raises(DataError, match="row 2: expected path,label"):
        load_data(tmp_path / "bad.csv", (1, 6, 6), progress=False)


def test_array_colour_to_grey_equals_pillow_convert_l() -> None:
    """IDX/CIFAR arrays and decoded files must give the same grey pixels: the reference is Pillow's
    own ``convert("L")``, which the decoder (and so ``predict``) uses."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.arrays import grey

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(4, 3, 23, 17), dtype=np.uint8)
    rgb[0, :, 0, :3] = [[0, 255, 128], [0, 255, 128], [0, 255, 128]]  # greys stay exact
    ours = grey(rgb)[:, 0]  # (N, H, W)
    pillow = np.stack([np.asarray(Image.fromarray(np.transpose(img, (1, 2, 0))).convert("L")) for img in rgb])
    assert ours.dtype == np.uint8 and (ours == pillow).all()
