"""Bad input: every odd file is skipped with a precise reason, counted and listed; structure errors raise.

Run: ``.venv/bin/pytest tests/test_data_badinput.py``. All images are generated in tmp_path.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.errors import DataError


def png(path: Path, color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (12, 10), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)
    return path


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def good_classes(root: Path, n: int = 6) -> None:
    for k, cls in enumerate(("cats", "dogs")):
        for i in range(n):
            png(root / cls / f"{i}.png", (k * 100, i * 20, 50))


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """Two good classes plus one of every kind of bad file."""
    root = tmp_path / "messy"
    good_classes(root)
    cats = root / "cats"
    (cats / "truncated.jpg").write_bytes(jpeg_bytes()[:600])
    good_png = (cats / "0.png").read_bytes()
    corrupt = bytearray(good_png)
    corrupt[40:60] = b"\x00" * 20  # inside the IDAT chunk: CRC/zlib failure
    (cats / "corrupt.png").write_bytes(bytes(corrupt))
    (cats / "empty.jpg").write_bytes(b"")
    (cats / "notes.jpg").write_text("this is not a picture\n")
    (cats / "vector.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (cats / "garbage.png").write_bytes(bytes(range(256)) * 4)
    (cats / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    png(root / "dogs" / "grey.png", mode="L")  # grayscale in a colour set: fine
    return root


def reasons(bundle_skipped: list[tuple[str, str]]) -> dict[str, str]:
    return {Path(p).name: r for p, r in bundle_skipped}


def test_each_bad_file_is_skipped_with_its_reason(messy: Path) -> None:
    b = load_data(messy, (3, 8, 8), cache_dir=False, progress=False)
    r = reasons(b.skipped)
    assert set(r) == {"truncated.jpg", "corrupt.png", "empty.jpg", "notes.jpg", "vector.svg", "garbage.png"}
    assert "truncated" in r["truncated.jpg"]
    assert "corrupt" in r["corrupt.png"]
    assert r["empty.jpg"] == "empty file (0 bytes)"
    assert "holds text" in r["notes.jpg"]
    assert "extension '.svg'" in r["vector.svg"]
    assert "not a valid .png image" in r["garbage.png"]
    assert ".DS_Store" not in r  # hidden files are ignored, not counted as skipped
    assert len(b.train) + len(b.val) == 13  # 12 good + the grayscale one
    assert b.summary_line("run/skipped.txt").endswith("6 skipped: see run/skipped.txt")


def test_skipped_txt_lists_path_tab_reason(messy: Path, tmp_path: Path) -> None:
    b = load_data(messy, (3, 8, 8), cache_dir=False, progress=False)
    out = b.write_skipped(tmp_path)
    lines = out.read_text().splitlines()
    assert out.name == "skipped.txt" and len(lines) == 6
    assert all(line.count("\t") == 1 and Path(line.split("\t")[0]).is_absolute() for line in lines)


def test_strict_turns_skips_into_an_error(messy: Path) -> None:
    with pytest.raises(DataError, match=r"6 file\(s\) could not be read and --strict is on.*empty file"):
        load_data(messy, (3, 8, 8), strict=True, cache_dir=False, progress=False)


def test_missing_path_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "nope", (3, 8, 8), progress=False)
    f = png(tmp_path / "one.png")
    with pytest.raises(DataError, match="is a file, expected a folder"):
        load_data(f, (3, 8, 8), progress=False)


def test_no_classes_and_one_class(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no classes found"):
        load_data(tmp_path / "empty", (3, 8, 8), progress=False)
    png(tmp_path / "single" / "cats" / "a.png")
    with pytest.raises(DataError, match="only one class \\('cats'\\)"):
        load_data(tmp_path / "single", (3, 8, 8), progress=False)


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    good_classes(tmp_path)
    (tmp_path / "birds").mkdir()
    b = load_data(tmp_path, (3, 8, 8), cache_dir=False, progress=False)
    assert b.classes == ["cats", "dogs"]
    assert any("birds" in w and "holds no images" in w for w in b.warnings)


def test_empty_classes_only_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="no classes found.*empty"):
        load_data(tmp_path, (3, 8, 8), progress=False)


def test_few_images_and_imbalance_warn(tmp_path: Path) -> None:
    for i in range(40):
        png(tmp_path / "many" / f"{i}.png", (i, 0, 0))
    for i in range(3):
        png(tmp_path / "few" / f"{i}.png", (0, i, 0))
    b = load_data(tmp_path, (3, 8, 8), cache_dir=False, progress=False)
    assert any("'few' has only 2 training image(s)" in w for w in b.warnings)
    assert any("imbalanced" in w for w in b.warnings)


def test_same_file_in_train_and_validation_is_flagged(tmp_path: Path) -> None:
    good_classes(tmp_path / "train")
    good_classes(tmp_path / "validation", n=2)
    (tmp_path / "validation" / "cats" / "copy.png").write_bytes((tmp_path / "train" / "cats" / "3.png").read_bytes())
    b = load_data(tmp_path, (3, 8, 8), cache_dir=False, progress=False)
    assert len(b.duplicates) >= 1
    flat = {(s, Path(p).name) for g in b.duplicates for s, p in g}
    assert ("val", "copy.png") in flat and ("train", "3.png") in flat
    assert any("identical copy in another split" in w for w in b.warnings)


def test_class_only_in_validation_is_an_error(tmp_path: Path) -> None:
    good_classes(tmp_path / "train")
    png(tmp_path / "val" / "birds" / "0.png")
    with pytest.raises(DataError, match="birds.*train/ does not have"):
        load_data(tmp_path, (3, 8, 8), progress=False)


def test_all_files_unreadable_is_an_error(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no readable training images"):
        load_data(tmp_path, (3, 8, 8), cache_dir=False, progress=False)
