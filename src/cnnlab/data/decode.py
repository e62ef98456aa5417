"""Decode one image file into a uint8 ``(C, H, W)`` array, exactly as training sees it.

Policy: EXIF orientation applied; every Pillow mode brought to ``L`` (1 channel) or ``RGB``
(3 channels) — palette and alpha composited on white, CMYK converted, 16-bit and float scaled
to 8 bits; then the resize policy (``crop``: scale the short side, centre-crop; ``stretch``;
``pad``: scale the long side, centre on black). Anything unreadable raises :class:`DataError`
with the path and the reason.

>>> import numpy as np, tempfile, pathlib
>>> from PIL import Image
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.png"
>>> Image.new("RGB", (40, 20), (255, 0, 0)).save(p)
>>> load_image(p, (3, 8, 8)).shape
(3, 8, 8)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.data.types import Resize
from cnnlab.errors import DataError

# Pillow's own default guard (about 89.5 megapixels, a 1 GB RGBA image); larger is refused.
MAX_PIXELS = 89_478_485
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
_BACKGROUND = 255  # alpha is composited on white
DRAFT_ABOVE = 16_000_000  # JPEGs above 16 megapixels decode at a reduced DCT scale (memory, time)


def load_image(path: str | os.PathLike[str], input_shape: tuple[int, int, int], resize: str | Resize = "crop") -> np.ndarray:
    """Read ``path`` and return a uint8 ``(C, H, W)`` array shaped for ``input_shape``.

    Raises :class:`DataError` (``cannot read image 'PATH': REASON``) for anything unreadable.
    """
    policy = Resize.parse(resize)
    shape = _check_channels(input_shape)
    img = open_image(path, target=(shape[2], shape[1]))
    try:
        return shape_image(img, shape, policy)
    except (OSError, ValueError) as exc:  # a decoder error raised late (during convert/resize)
        raise DataError(f"cannot read image '{path}': decoder failed while converting ({type(exc).__name__}: {_short(exc)})") from None


def _check_channels(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    channels, height, width = (int(v) for v in input_shape)
    if channels not in (1, 3):
        raise DataError(f"input has {channels} channels; images can be read as 1 (grayscale) or 3 (RGB) channels")
    return channels, height, width


def shape_image(img: Image.Image, shape: tuple[int, int, int], policy: Resize) -> np.ndarray:
    """Mode-convert and resize a decoded image to uint8 ``shape`` = (C, H, W)."""
    channels, height, width = shape
    try:
        img = to_mode(img, "L" if channels == 1 else "RGB")
        img = fit(img, (width, height), policy)
        arr = np.asarray(img, dtype=np.uint8)
    finally:
        img.close()
    if channels == 1:
        return arr[None, :, :].copy()  # (1, H, W)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))  # (H, W, 3) -> (3, H, W)


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an image file; ``DataError`` for a missing, folder or empty path."""
    p = Path(path)
    reason = _precheck(p)
    if reason:
        raise DataError(f"cannot read image '{p}': {reason}")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image '{p}': {exc.strerror or exc}") from None


def open_image(path: str | os.PathLike[str], *, target: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode ``path`` with EXIF orientation applied; ``DataError`` on any failure."""
    return open_bytes(read_file(path), Path(path), target=target)


def open_bytes(data: bytes, p: Path, *, target: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``data`` (the bytes of ``p``); ``target`` (W, H) lets huge JPEGs decode at reduced scale."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            _check_pixels(img, p)
            if target is not None and img.format == "JPEG" and img.size[0] * img.size[1] > DRAFT_ABOVE:
                img.draft(img.mode, (2 * target[0], 2 * target[1]))  # DCT scaling, still >= 2x the target
            img.load()
            fmt = img.format
            img = ImageOps.exif_transpose(img) or img
            img.format = fmt  # exif_transpose returns a copy without it
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 0
        raise DataError(f"cannot read image '{p}': {_bomb_reason(pixels)}") from None
    except UnidentifiedImageError:
        raise DataError(f"cannot read image '{p}': {_identify_failure(p, data)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read image '{p}': truncated or corrupt image data ({_short(exc)})") from None
    except Exception as exc:  # any other decoder failure is still a bad file, not a crash
        raise DataError(f"cannot read image '{p}': decoder failed ({type(exc).__name__}: {_short(exc)})") from None
    return img


def _precheck(p: Path) -> str:
    if not p.exists():
        return "no such file"
    if p.is_dir():
        return "is a folder, expected an image file"
    size = p.stat().st_size
    if size == 0:
        return "empty file (0 bytes)"
    return ""


def _check_pixels(img: Image.Image, p: Path) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise DataError(f"cannot read image '{p}': {_bomb_reason(w * h, f'{w}x{h} = ')}")


def _bomb_reason(pixels: int, dims: str = "") -> str:
    size = f"{dims}{pixels:,} pixels" if pixels else "its pixel count"
    return (f"refused as a possible decompression bomb: {size} is over the limit of {MAX_PIXELS:,} "
            f"({MAX_PIXELS / 1e6:.0f} megapixels); shrink the image first")


def _identify_failure(p: Path, data: bytes) -> str:
    head = data[:512]
    if head and all(b in b"\t\n\r" or 32 <= b < 127 for b in head):
        return f"not an image: the file holds text (starts with {head[:24]!r})"
    ext = p.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return f"not a valid {ext} image: unknown or corrupt header (first bytes {head[:8].hex(' ')})"
    return f"unsupported image format '{ext or 'no extension'}'; use one of {', '.join(sorted(IMAGE_EXTENSIONS))}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Bring any Pillow mode to ``"L"`` or ``"RGB"`` (alpha on white, 16-bit/float scaled to 8 bits)."""
    if img.mode == mode:
        return img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = Image.fromarray(_to_uint8(np.asarray(img)), mode="L")
    if img.mode in ("RGBA", "LA"):
        base = Image.new(img.mode[:-1], img.size, _BACKGROUND if img.mode == "LA" else (_BACKGROUND,) * 3)
        base.paste(img, mask=img.getchannel("A"))
        img = base
    return img if img.mode == mode else img.convert(mode)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale a 16-bit, 32-bit or float single-channel image to uint8."""
    if arr.dtype.kind == "f":
        data = np.nan_to_num(arr.astype(np.float64))
        top = 1.0 if data.max(initial=0.0) <= 1.0 else 255.0
        return np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    data = arr.astype(np.int64)
    if data.max(initial=0) <= 255 and data.min(initial=0) >= 0:
        return data.astype(np.uint8)
    return np.clip((data + 128) // 257, 0, 255).astype(np.uint8)  # 0..65535 -> 0..255


def fit(img: Image.Image, size: tuple[int, int], policy: Resize) -> Image.Image:
    """Resize ``img`` to ``size`` = (W, H) by ``policy``."""
    width, height = size
    w, h = img.size
    if (w, h) == (width, height):
        return img
    resample = Image.Resampling.BILINEAR
    if policy is Resize.STRETCH:
        return img.resize((width, height), resample)
    if policy is Resize.CROP:
        scale = max(width / w, height / h)
        cw, ch = width / scale, height / scale  # the source region that lands in the output
        left, top = max(0.0, (w - cw) / 2), max(0.0, (h - ch) / 2)
        box = (left, top, min(float(w), left + cw), min(float(h), top + ch))
        return img.resize((width, height), resample, box=box)
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    inner = img.resize((nw, nh), resample)
    canvas = Image.new(img.mode, (width, height), 0)
    canvas.paste(inner, ((width - nw) // 2, (height - nh) // 2))
    return canvas


def digest(data: bytes) -> str:
    """Content hash used to find the same image in two splits."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def decode_or_reason(path: str, input_shape: tuple[int, int, int], resize: str) -> tuple[np.ndarray | None, str, str]:
    """Worker entry: ``(array, "", digest)`` on success, ``(None, reason, digest)`` for a bad file."""
    data_hash = ""
    try:
        data = read_file(path)
        data_hash = digest(data)
        shape = _check_channels(input_shape)
        img = open_bytes(data, Path(path), target=(shape[2], shape[1]))
        return shape_image(img, shape, Resize.parse(resize)), "", data_hash
    except DataError as exc:
        return None, _strip_prefix(str(exc), path), data_hash
    except MemoryError:
        return None, "out of memory while decoding (image too large)", data_hash
    except (OSError, ValueError) as exc:  # a decoder error raised after open (during convert/resize)
        return None, f"decoder failed while converting ({type(exc).__name__}: {_short(exc)})", data_hash


def _strip_prefix(text: str, path: str) -> str:
    prefix = f"cannot read image '{Path(path)}': "
    return text[len(prefix):] if text.startswith(prefix) else text


@dataclass(frozen=True)
class Probe:
    """What ``cnnlab data`` reports per file: size, mode, format, content hash, or why it failed."""

    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    digest: str = ""
    reason: str = ""


def probe(path: str) -> Probe:
    """Fully decode ``path`` (to find truncation) and describe it; never raises for a bad file."""
    data_hash = ""
    try:
        data = read_file(path)
        data_hash = digest(data)
        img = open_bytes(data, Path(path))
        with img:
            return Probe(img.size[0], img.size[1], img.mode, str(img.format or Path(path).suffix), data_hash)
    except DataError as exc:
        return Probe(digest=data_hash, reason=_strip_prefix(str(exc), path))
    except MemoryError:
        return Probe(digest=data_hash, reason="out of memory while decoding (image too large)")
