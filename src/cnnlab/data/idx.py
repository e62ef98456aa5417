"""Read IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or not.

An IDX file is ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the data
row-major. Images are ``(N, 28, 28)`` uint8 (magic 2051), labels ``(N,)`` uint8 (magic 2049).

>>> import gzip, tempfile, pathlib, numpy as np
>>> p = pathlib.Path(tempfile.mkdtemp()) / "l.gz"
>>> _ = p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])))
>>> read_idx(p).tolist()
[7, 8, 9]
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.decode import describe_content
from cnnlab.data.idx_lazy import check_dims, max_data_bytes
from cnnlab.errors import DataError

_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the array stored in the IDX file ``path`` (``.gz`` or plain).

    The data is decompressed straight into the result array (no intermediate bytes object), so
    reading MNIST's 47 MB of training images needs 47 MB.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"IDX file '{p}' does not exist" if not p.exists() else f"'{p}' is a folder, expected an IDX file")
    with open(p, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(p, "rb") if gz else open(p, "rb")) as fh:
            return _read_idx_stream(fh, p, max_data_bytes(p, gz, 0))
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read '{p}': the {'gzip ' if gz else ''}data is truncated or corrupt ({exc}); download the file again") from None


def _read_idx_stream(fh: Any, p: Path, available: int) -> np.ndarray:
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
        raise DataError(
            f"'{p}' is not an IDX file: it holds {describe_content(head) if head else 'nothing'}; an IDX file "
            "starts with 00 00 <type> <ndim> (e.g. 00 00 08 03 for MNIST images)"
        )
    ndim = head[3]
    dtype = np.dtype(_DTYPES[head[2]])
    sizes = fh.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"'{p}' is truncated: the header needs {4 + 4 * ndim} bytes")
    dims = struct.unpack(f">{ndim}I", sizes)
    check_dims(p, dims, dtype.itemsize, available - 4 * ndim)
    out = np.empty(int(np.prod(dims)), dtype)
    view = memoryview(out.view(np.uint8))  # type: ignore[arg-type]
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    expected = out.nbytes
    extra = fh.read(1)
    if got != expected or extra:
        have = f"{got:,}" if got != expected else f"more than {expected:,}"
        raise DataError(
            f"'{p}' has {have} data bytes but its header {tuple(dims)} needs {expected:,}; "
            "the file is truncated or corrupt, download it again"
        )
    return out.reshape(dims)


def read_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]) -> tuple[Any, np.ndarray]:
    """Images ``(N, 1, H, W)`` (an :class:`~cnnlab.data.idx_lazy.IdxImages`, read on demand) and
    labels ``(N,)`` int64 from two IDX files; checks they agree."""
    from cnnlab.data.idx_lazy import IdxImages

    p = Path(images_path)
    if not p.is_file():
        raise DataError(f"IDX file '{p}' does not exist" if not p.exists() else f"'{p}' is a folder, expected an IDX file")
    try:
        images = IdxImages(p)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read '{p}': the gzip data is truncated or corrupt ({exc}); download the file again") from None
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"'{labels_path}' holds shape {labels.shape}; expected labels (N,)")
    if labels.dtype.kind not in "iu":
        raise DataError(f"'{labels_path}' holds {labels.dtype} values; IDX labels are integers (type byte 08)")
    if len(images) != len(labels):
        raise DataError(
            f"'{images_path}' has {len(images):,} images but '{labels_path}' has {len(labels):,} labels; "
            "they must come from the same split"
        )
    return images, labels.astype(np.int64)


def find_idx_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{"train": (images, labels), "test": (...)}`` for IDX files in ``folder`` (MNIST naming)."""
    pairs: dict[str, tuple[Path, Path]] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        found = []
        for kind in ("images-idx3", "labels-idx1"):
            hits = [folder / f"{prefix}-{kind}-ubyte{ext}" for ext in (".gz", "")]
            hits += [folder / f"{prefix}-{kind.replace('-', '.')}-ubyte{ext}" for ext in (".gz", "")]
            found.append(next((h for h in hits if h.is_file()), None))
        if found[0] is not None and found[1] is not None:
            pairs[split] = (found[0], found[1])
    return pairs
