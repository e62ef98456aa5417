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

import errno
import hashlib
import io
import os
import re
import stat
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
# The largest image file read (bytes); $CNNLAB_MAX_IMAGE_BYTES overrides it. An 89-megapixel
# uncompressed RGBA BMP (the pixel limit above) is 358 MB.
MAX_IMAGE_BYTES = 384 * 1024 * 1024
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


def max_image_bytes() -> int:
    """The largest image file read: ``$CNNLAB_MAX_IMAGE_BYTES`` or :data:`MAX_IMAGE_BYTES`."""
    text = os.environ.get("CNNLAB_MAX_IMAGE_BYTES", "").strip()
    if not text:
        return MAX_IMAGE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"CNNLAB_MAX_IMAGE_BYTES={text!r} is not a positive whole number of bytes; "
                        f"unset it to use the default {MAX_IMAGE_BYTES:,}")
    return value


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an image file, read in chunks up to the size cap (:func:`max_image_bytes`).

    ``DataError`` for a missing, folder, empty, non-regular (device, FIFO, socket) or oversized path.
    """
    p = Path(path)
    cap = max_image_bytes()
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except OSError as exc:
        raise DataError(f"cannot read image '{p}': {_os_reason(exc)}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        reason = _precheck(st.st_mode, st.st_size, cap)
        if reason:
            raise DataError(f"cannot read image '{p}': {reason}")
        chunks, total = [], 0
        try:
            while total <= cap:
                chunk = fh.read(min(1 << 20, cap + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise DataError(f"cannot read image '{p}': {_os_reason(exc)}") from None
    if total > cap:  # the file grew while being read
        raise DataError(f"cannot read image '{p}': {_too_large(total, cap)}")
    return b"".join(chunks)


def open_image(path: str | os.PathLike[str], *, target: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode ``path`` with EXIF orientation applied; ``DataError`` on any failure."""
    return open_bytes(read_file(path), Path(path), target=target)


def open_bytes(data: bytes, p: Path, *, target: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``data`` (the bytes of ``p``); ``target`` (W, H) lets huge JPEGs decode at reduced scale."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's "Truncated File Read" etc.: no noise
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


def _precheck(mode: int, size: int, cap: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a folder, expected an image file"
    if not stat.S_ISREG(mode):
        return f"is a {_file_kind(mode)}, not a regular file; only image files are read"
    if size == 0:
        return "empty file (0 bytes)"
    if size > cap:
        return _too_large(size, cap)
    return ""


def _too_large(size: int, cap: int) -> str:
    return (f"the file has {size:,} bytes, over the image size limit of {cap:,}; shrink it, or raise the limit "
            "with CNNLAB_MAX_IMAGE_BYTES=<bytes>")


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "named pipe (FIFO)"),
             (stat.S_ISSOCK, "socket"))
    return next((name for test, name in kinds if test(mode)), "special file")


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long for the filesystem (a name over 255 bytes or a path over 4,096)"
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    return str(exc.strerror or type(exc).__name__)


def _check_pixels(img: Image.Image, p: Path) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise DataError(f"cannot read image '{p}': {_bomb_reason(w * h, f'{w}x{h} = ')}")


def _bomb_reason(pixels: int, dims: str = "") -> str:
    size = f"{dims}{pixels:,} pixels" if pixels else "its pixel count"
    return (f"refused as a possible decompression bomb: {size} is over the limit of {MAX_PIXELS:,} "
            f"({MAX_PIXELS / 1e6:.0f} megapixels); shrink the image first")


# (leading bytes, what they are): to say what a non-image file is without quoting it
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed data"), (b"PK\x03\x04", "a ZIP archive"), (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable (ELF)"), (b"MZ", "a Windows executable"), (b"\x80", "a Python pickle"),
    (b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ", "xz-compressed data"), (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"SQLite format 3", "an SQLite database"), (b"\x00\x00\x08", "an IDX array"),
)


def describe_content(data: bytes) -> str:
    """What kind of file ``data`` is (text, an archive, ...), never any of its content."""
    head = data[:512]
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head and all(b in b"\t\n\r" or 32 <= b < 127 for b in head):
        return "text"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary data of an unknown kind"


def _identify_failure(p: Path, data: bytes) -> str:
    kind = describe_content(data)
    if kind == "text":
        return f"not an image: the file holds text ({len(data):,} bytes)"
    ext = p.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return f"not a valid {ext} image: unknown or corrupt header (the file holds {kind}, {len(data):,} bytes)"
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
