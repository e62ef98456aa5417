"""Decode policy: EXIF orientation, mode conversion, resize policies, compared with hand-computed pixels.

Run: ``.venv/bin/pytest tests/test_data_decode.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_image
from cnnlab.errors import DataError

RED, BLUE = (255, 0, 0), (0, 0, 255)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (4, 2), (0, 0, 0))
    img.putpixel((0, 0), RED)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display rotated 90 degrees clockwise
    p = tmp_path / "o.png"
    img.save(p, exif=exif.tobytes())
    arr = load_image(p, (3, 4, 2), "stretch")  # displayed size is 2 wide, 4 high
    # rotating clockwise moves the top-left corner to the top-right
    assert tuple(arr[:, 0, 1]) == RED
    assert arr[:, 1:, :].max() == 0 and tuple(arr[:, 0, 0]) == (0, 0, 0)


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    p = tmp_path / "p.png"
    img.save(p, transparency=0)
    arr = load_image(p, (3, 1, 2))
    assert tuple(arr[:, 0, 0]) == (255, 255, 255)  # transparent -> white
    assert tuple(arr[:, 0, 1]) == (200, 10, 20)


def test_rgba_alpha_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (3, 1))
    img.putdata([(10, 20, 30, 0), (10, 20, 30, 255), (0, 0, 0, 128)])
    p = tmp_path / "a.png"
    img.save(p)
    arr = load_image(p, (3, 1, 3))
    assert tuple(arr[:, 0, 0]) == (255, 255, 255)
    assert tuple(arr[:, 0, 1]) == (10, 20, 30)
    # 50 % black over white: 255 * (1 - 128/255) = 127
    assert all(abs(int(v) - 127) <= 1 for v in arr[:, 0, 2])


def test_cmyk_is_converted(tmp_path: Path) -> None:
    img = Image.new("CMYK", (2, 1))
    img.putdata([(0, 0, 0, 0), (0, 255, 0, 0)])  # white, magenta
    p = tmp_path / "c.tif"
    img.save(p)
    arr = load_image(p, (3, 1, 2))
    assert tuple(arr[:, 0, 0]) == (255, 255, 255)
    assert tuple(arr[:, 0, 1]) == (255, 0, 255)


def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path: Path) -> None:
    data = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(data).save(p)  # a 16-bit PNG
    arr = load_image(p, (1, 1, 4))
    assert arr[0, 0].tolist() == [0, 1, 128, 255]  # value / 257, rounded


def test_rgb_to_grayscale_uses_itu_601_luma(tmp_path: Path) -> None:
    img = Image.new("RGB", (3, 1))
    img.putdata([RED, (0, 255, 0), BLUE])
    p = tmp_path / "rgb.png"
    img.save(p)
    arr = load_image(p, (1, 1, 3))
    # L = 0.299 R + 0.587 G + 0.114 B
    assert [abs(int(a) - b) <= 1 for a, b in zip(arr[0, 0], (76, 150, 29), strict=True)] == [True] * 3


def test_grayscale_image_in_colour_set_gets_three_equal_channels(tmp_path: Path) -> None:
    p = tmp_path / "g.png"
    Image.new("L", (5, 5), 77).save(p)
    arr = load_image(p, (3, 5, 5))
    assert arr.shape == (3, 5, 5) and np.all(arr == 77)


def halves(tmp_path: Path, size: tuple[int, int]) -> Path:
    """Left half red, right half blue."""
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = RED
    a[:, w // 2:] = BLUE
    p = tmp_path / "halves.png"
    Image.fromarray(a).save(p)
    return p


def test_crop_keeps_the_centre(tmp_path: Path) -> None:
    p = halves(tmp_path, (40, 20))
    arr = load_image(p, (3, 10, 10), "crop")  # short side 20 -> 10; keeps x 10..30 of the source
    assert np.all(arr[0, :, :4] == 255) and np.all(arr[2, :, 6:] == 255)
    assert np.all(arr[2, :, :4] == 0) and np.all(arr[0, :, 6:] == 0)


def test_stretch_keeps_everything(tmp_path: Path) -> None:
    p = halves(tmp_path, (40, 20))
    arr = load_image(p, (3, 10, 10), "stretch")
    assert np.all(arr[0, :, :4] == 255) and np.all(arr[2, :, 6:] == 255)


def test_pad_letterboxes_with_black(tmp_path: Path) -> None:
    p = tmp_path / "white.png"
    Image.new("RGB", (40, 20), (255, 255, 255)).save(p)
    arr = load_image(p, (3, 10, 10), "pad")  # 40x20 -> 10x5, centred: rows 2..6
    assert np.all(arr[:, :2] == 0) and np.all(arr[:, 7:] == 0)
    assert np.all(arr[:, 2:7] == 255)


def test_unknown_resize_policy_suggests(tmp_path: Path) -> None:
    p = tmp_path / "w.png"
    Image.new("RGB", (4, 4)).save(p)
    with pytest.raises(DataError, match="did you mean 'crop'"):
        load_image(p, (3, 4, 4), "corp")


def test_huge_jpeg_decodes_at_reduced_scale(tmp_path: Path) -> None:
    p = tmp_path / "huge.jpg"
    Image.new("RGB", (5000, 4000), (30, 140, 200)).save(p, quality=90)
    arr = load_image(p, (3, 16, 16))
    assert arr.shape == (3, 16, 16)
    assert np.all(np.abs(arr.reshape(3, -1).mean(1) - np.array([30, 140, 200])) < 4)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    Image.new("1", (10_000, 9_000)).save(p)  # 90 megapixels, a few kB on disk
    assert p.stat().st_size < 200_000
    with pytest.raises(DataError, match="decompression bomb: .*90,000,000 pixels is over the limit"):
        load_image(p, (1, 28, 28))
