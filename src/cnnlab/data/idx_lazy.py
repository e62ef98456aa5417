"""``IdxImages``: the images of an IDX file, read only when rows are asked for.

``x[index]`` streams the (gzip) file once and keeps just the requested rows, so splitting
MNIST's 60,000 training images into train and validation never holds a third copy: peak memory
is the two results plus one 3 MB block. Truncation is caught up front from the file size (or
the gzip trailer's length field), corruption while streaming.

>>> import gzip, struct, tempfile, pathlib, numpy as np
>>> p = pathlib.Path(tempfile.mkdtemp()) / "i.gz"
>>> _ = p.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 3, 2, 2) + bytes(range(12))))
>>> IdxImages(p)[np.array([2, 0])][:, 0, 0].tolist()
[[8, 9], [0, 1]]
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.decode import describe_content
from cnnlab.errors import DataError

# deflate cannot compress better than 1032:1, so a gzip file of n bytes holds at most 1032 n bytes
GZIP_MAX_RATIO = 1032


def max_data_bytes(path: Path, gz: bool, header: int) -> int:
    """The most data bytes ``path`` can hold after a ``header``-byte header (decompressed for gzip)."""
    size = path.stat().st_size
    return size * GZIP_MAX_RATIO if gz else max(size - header, 0)


def check_dims(path: Path, dims: tuple[int, ...], itemsize: int, available: int) -> int:
    """The data bytes the header ``dims`` declares, after checking they fit in the file (no allocation).

    A header is 4-byte sizes, so a few bytes can declare exabytes; nothing is allocated from it
    until the file is known to be large enough to hold that much.
    """
    need = itemsize
    for d in dims:
        need *= d
    if need > available:
        raise DataError(f"'{path}' declares {' x '.join(str(d) for d in dims)} values ({need:,} bytes) in its header, "
                        f"but the file can hold at most {available:,}; the header is corrupt or the file is truncated, "
                        "download it again")
    return need


BLOCK_ROWS = 4096
MAX_SIDE = 1 << 14


class IdxImages:
    """uint8 images ``(N, 1, H, W)`` of an IDX file (magic 2051), gathered on demand."""

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            self.gz = fh.read(2) == b"\x1f\x8b"
        with self._open() as fh:
            head = fh.read(16)
        if len(head) < 16 or head[:4] != b"\x00\x00\x08\x03":
            raise DataError(f"'{self.path}' is not an IDX file of uint8 images: "
                            f"it holds {describe_content(head) if head else 'nothing'}; expected a header starting "
                            "00 00 08 03")
        self.n, self.h, self.w = struct.unpack(">III", head[4:16])
        if not (1 <= self.h <= MAX_SIDE and 1 <= self.w <= MAX_SIDE):
            raise DataError(f"'{self.path}' declares images of {self.h}x{self.w} pixels in its header; "
                            f"each side must be 1..{MAX_SIDE}; the header is corrupt, download the file again")
        check_dims(self.path, (self.n, self.h, self.w), 1, max_data_bytes(self.path, self.gz, 16))
        self._check_length(16 + self.n * self.h * self.w)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.n, 1, self.h, self.w)

    def __len__(self) -> int:
        return self.n

    def _open(self) -> Any:
        return gzip.open(self.path, "rb") if self.gz else open(self.path, "rb")

    def _check_length(self, expected: int) -> None:
        if self.gz:
            with open(self.path, "rb") as fh:
                fh.seek(-4, 2)
                have = struct.unpack("<I", fh.read(4))[0]  # ISIZE: length mod 2**32
            ok = have == expected % 2**32
            if not ok:
                have = self._gzip_length(expected + 1)
                ok = have == expected
        else:
            have = self.path.stat().st_size
            ok = have == expected
        if not ok:
            raise DataError(f"'{self.path}' holds {have:,} bytes but its header ({self.n:,} images of {self.h}x{self.w}) "
                            f"needs {expected:,}; the file is truncated or corrupt, download it again")

    def _gzip_length(self, limit: int) -> int:
        """The decompressed length (read in 1 MiB chunks, stopping past ``limit``); the trailer can lie."""
        total = 0
        try:
            with self._open() as fh:
                while total <= limit:
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
        except (OSError, EOFError, zlib.error):
            raise DataError(f"cannot read '{self.path}': the gzip data ends before the "
                            f"{16 + self.n * self.h * self.w:,} bytes its header needs (it is cut off or corrupt); "
                            "download the file again") from None
        return total

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = np.arange(self.n)[index] if isinstance(index, slice) else np.asarray(index, np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n):
            raise IndexError(f"row index out of range 0..{self.n - 1}")
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        out = np.empty((len(rows), 1, self.h, self.w), np.uint8)
        try:
            self._gather(wanted, order, out)
        except (OSError, EOFError, zlib.error) as exc:
            kind = "gzip data" if self.gz else "data"
            raise DataError(f"cannot read '{self.path}': the {kind} is truncated or corrupt ({exc}); download the file again") from None
        return out

    def _gather(self, wanted: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
        size = self.h * self.w
        block = np.empty((BLOCK_ROWS, self.h, self.w), np.uint8)
        flat = memoryview(block.reshape(-1))  # type: ignore[arg-type]
        pos = 0
        with self._open() as fh:
            fh.read(16)
            for start in range(0, self.n, BLOCK_ROWS):
                if pos >= len(wanted):
                    break
                count = min(BLOCK_ROWS, self.n - start)
                _read_exactly(fh, flat[: count * size])
                end = int(np.searchsorted(wanted, start + count))
                out[order[pos:end], 0] = block[wanted[pos:end] - start]
                pos = end

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[np.arange(self.n)]
        return arr if dtype is None else arr.astype(dtype)


def _read_exactly(fh: Any, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            raise EOFError(f"file ended after {got:,} of {len(view):,} bytes in a block")
        got += n
