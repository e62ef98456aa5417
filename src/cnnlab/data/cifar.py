"""CIFAR-10 / CIFAR-100 in the binary version, or the python version through a restricted unpickler.

Binary records: CIFAR-10 ``<1 label byte><3072 pixel bytes>`` (``data_batch_1..5.bin``,
``test_batch.bin``, ``batches.meta.txt``); CIFAR-100 ``<coarse><fine><3072>`` (``train.bin``,
``test.bin``, ``fine_label_names.txt``). Pixels are R (1024), G, B planes of 32x32.

The python version (``data_batch_1`` ..., pickles of numpy arrays) is read by an unpickler that
only resolves the few numpy names an array needs; any other object refuses the file, with a
message pointing at the binary version.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.named import CIFAR10_CLASSES
from cnnlab.data.raw import RawData, RawSplit
from cnnlab.errors import DataError

_C10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_SUBDIRS = ("", "cifar-10-batches-bin", "cifar-10-batches-py", "cifar-100-binary", "cifar-100-python")
BINARY_HINT = ("use the binary version instead (cifar-10-binary.tar.gz / cifar-100-binary.tar.gz from "
               "https://www.cs.toronto.edu/~kriz/cifar.html)")


def find_cifar(folder: Path) -> tuple[str, str, Path] | None:
    """``(kind, version, dir)``: kind ``cifar10|cifar100``, version ``bin|py``; None if not CIFAR."""
    for sub in _SUBDIRS:
        d = folder / sub if sub else folder
        if (d / "data_batch_1.bin").is_file() or (d / "test_batch.bin").is_file():
            return "cifar10", "bin", d
        if (d / "train.bin").is_file() and (d / "fine_label_names.txt").is_file():
            return "cifar100", "bin", d
        if (d / "data_batch_1").is_file() or ((d / "test_batch").is_file() and (d / "batches.meta").is_file()):
            return "cifar10", "py", d
        if (d / "train").is_file() and (d / "meta").is_file():
            return "cifar100", "py", d
    return None


def is_cifar_file(path: Path) -> bool:
    return path.name in {*(f"{n}.bin" for n in _C10_TRAIN), "test_batch.bin", *_C10_TRAIN, "test_batch"}


def load_cifar_path(path: Path) -> RawData:
    """A CIFAR folder (or one CIFAR-10 batch file) as :class:`RawData` with train and test splits."""
    if path.is_file():
        images, labels = _read_c10_file(path)
        names = _c10_names(path.parent)
        return RawData({"all": _split(images, labels, path.name)}, names, f"CIFAR-10 batch {path.name}", str(path))
    found = find_cifar(path)
    if found is None:
        raise DataError(f"no CIFAR files in '{path}': expected cifar-10-batches-bin/data_batch_1.bin ... or cifar-100-binary/train.bin")
    kind, version, d = found
    if kind == "cifar10":
        names = _c10_names(d)
        suffix = ".bin" if version == "bin" else ""
        train_files = [d / f"{n}{suffix}" for n in _C10_TRAIN if (d / f"{n}{suffix}").is_file()]
        test_files = [d / f"test_batch{suffix}"] if (d / f"test_batch{suffix}").is_file() else []
        parts = {"train": train_files, "test": test_files}
        reader: Callable[[Path], tuple[np.ndarray, np.ndarray]] = _read_c10_file
    else:
        names = _c100_names(d, version)
        suffix = ".bin" if version == "bin" else ""
        parts = {s: [d / f"{s}{suffix}"] if (d / f"{s}{suffix}").is_file() else [] for s in ("train", "test")}
        reader = _read_c100_file
    splits = {}
    for split, files in parts.items():
        if files:
            arrays = [reader(f) for f in files]
            images = np.concatenate([a for a, _ in arrays])
            labels = np.concatenate([b for _, b in arrays])
            splits[split] = _split(images, labels, f"{kind}:{split}")
            splits[split].files = [str(f) for f in files]
    if "train" not in splits:
        splits = {"all": splits.pop("test")}
    counts = ", ".join(f"{k} {len(v.labels):,}" for k, v in splits.items())
    return RawData(splits, names, f"{kind} ({'binary' if version == 'bin' else 'python'} version, {counts})", str(path))


def _split(images: np.ndarray, labels: np.ndarray, tag: str) -> RawSplit:
    return RawSplit(images, labels.astype(np.int64), [f"{tag}:{i}" for i in range(len(labels))])


def _records(path: Path, label_bytes: int) -> np.ndarray:
    data = np.frombuffer(read_regular(path), dtype=np.uint8)
    size = label_bytes + 3072
    if data.size == 0 or data.size % size:
        raise DataError(f"'{path}' has {data.size:,} bytes, not a multiple of the {size}-byte CIFAR record; the file is truncated or not CIFAR")
    return data.reshape(-1, size)


def _read_c10_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".bin":
        rec = _records(path, 1)
        return rec[:, 1:].reshape(-1, 3, 32, 32), _labels(rec[:, 0], len(rec), 10, path, "label byte")  # (N, 3, 32, 32)
    batch = _unpickle(path)
    images = _py_images(batch, path)
    return images, _labels(_key(batch, "labels", path), len(images), 10, path, "'labels'")


def _read_c100_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".bin":
        rec = _records(path, 2)
        return rec[:, 2:].reshape(-1, 3, 32, 32), _labels(rec[:, 1], len(rec), 100, path, "fine label byte")
    batch = _unpickle(path)
    images = _py_images(batch, path)
    return images, _labels(_key(batch, "fine_labels", path), len(images), 100, path, "'fine_labels'")


def _labels(raw: Any, count: int, classes: int, path: Path, what: str) -> np.ndarray:
    """Labels as int64 after checking their type, count and range: one per image, each in 0..classes-1."""
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "iu":
        labels = raw.astype(np.int64).reshape(-1)
    elif isinstance(raw, (list, tuple)) and all(type(v) is int for v in raw):
        clipped = [min(max(v, -1), classes) for v in raw]  # out-of-range stays out of range, fits int64
        labels = np.asarray(clipped, dtype=np.int64).reshape(-1) if raw else np.zeros(0, np.int64)
    else:
        kind = type(raw).__name__ if not isinstance(raw, (list, tuple)) else "a list holding non-integers"
        raise DataError(f"'{path}': {what} must be a list of integers 0..{classes - 1}, found {kind}; "
                        f"the file is damaged or not CIFAR; {BINARY_HINT}")
    if len(labels) != count:
        raise DataError(f"'{path}': {len(labels):,} labels for {count:,} images; each image needs exactly one "
                        "label; the file is damaged or truncated")
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        shown = raw[int(bad[0])] if isinstance(raw, (list, tuple)) else int(labels[bad[0]])
        raise DataError(f"'{path}': label {shown} of image {int(bad[0])} is outside 0..{classes - 1} "
                        f"({bad.size:,} such labels); the file is damaged or not a CIFAR-{classes} file")
    return labels


def _py_images(batch: dict[Any, Any], path: Path) -> np.ndarray:
    data = _key(batch, "data", path)
    if not isinstance(data, np.ndarray):
        raise DataError(f"'{path}': 'data' is a {type(data).__name__}, expected a uint8 array (N, 3072)")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"'{path}': 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    return data.reshape(-1, 3, 32, 32)


def _key(batch: dict[Any, Any], name: str, path: Path) -> Any:
    for k in (name, name.encode()):
        if k in batch:
            return batch[k]
    raise DataError(f"'{path}' has no '{name}' entry; is it a CIFAR python batch? {BINARY_HINT}")


def _c10_names(d: Path) -> list[str]:
    meta = d / "batches.meta.txt"
    if meta.is_file():
        names = [n.strip() for n in meta.read_text(encoding="utf-8", errors="replace").splitlines() if n.strip()]
        if len(names) == 10:
            return names
    return list(CIFAR10_CLASSES)


def _c100_names(d: Path, version: str) -> list[str]:
    if version == "bin":
        text = (d / "fine_label_names.txt").read_text(encoding="utf-8", errors="replace")
        names = [n.strip() for n in text.splitlines() if n.strip()]
    else:
        meta = _unpickle(d / "meta")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _key(meta, "fine_label_names", d / "meta")]
    if len(names) != 100:
        raise DataError(f"'{d}': expected 100 CIFAR-100 class names, found {len(names)}")
    return names


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    rec = multiarray._reconstruct
    scalar = multiarray.scalar
    return {("numpy.core.multiarray", "_reconstruct"): rec, ("numpy._core.multiarray", "_reconstruct"): rec,
            ("numpy.core.multiarray", "scalar"): scalar, ("numpy._core.multiarray", "scalar"): scalar,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}


_REAL = _numpy_globals()


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the numpy names that a pickled array needs, each behind a size check.

    An array's bytes are stored in the pickle itself, so every array it declares must fit in the
    file: ``budget`` (the file size) bounds the total bytes of the arrays and dtypes it may create,
    checked before numpy allocates anything.
    """

    def __init__(self, file: io.BytesIO, budget: int) -> None:
        super().__init__(file, encoding="latin1")
        self.budget = budget

    def find_class(self, module: str, name: str) -> Any:
        real = _REAL.get((module, name))
        if real is None:
            if (module, name) == ("_codecs", "encode"):
                return _latin1_encode
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if real is np.ndarray:
            return self._ndarray
        if real is np.dtype:
            return self._dtype
        if name == "_reconstruct":
            return self._reconstruct
        return real

    def _spend(self, shape: Any, dtype: Any) -> None:
        try:
            dims = [int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,))]
            itemsize = np.dtype(dtype).itemsize
        except (TypeError, ValueError, OverflowError) as exc:
            raise pickle.UnpicklingError(f"an array with shape {shape!r} ({exc})") from None
        if any(d < 0 for d in dims):
            raise pickle.UnpicklingError(f"an array with a negative dimension {tuple(dims)}")
        need = itemsize * math.prod(dims)
        if need > self.budget:
            raise _TooLarge(f"it declares an array of shape {tuple(dims)} ({need:,} bytes) but the file holds only "
                            f"{self.budget:,} more bytes")
        self.budget -= need

    def _dtype(self, obj: Any, *args: Any) -> np.dtype:
        dt = np.dtype(obj, *args[:2])
        if dt.hasobject or dt.itemsize > self.budget:
            raise pickle.UnpicklingError(f"an array type {dt} that a CIFAR batch does not use")
        return dt

    def _ndarray(self, shape: Any, dtype: Any = float, *rest: Any) -> np.ndarray:
        self._spend(shape, dtype)
        return np.ndarray(shape, dtype, *rest)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype != self._ndarray and subtype is not np.ndarray:
            raise pickle.UnpicklingError("an array subclass")
        self._spend(shape, dtype)
        array: np.ndarray = _REAL[("numpy.core.multiarray", "_reconstruct")](np.ndarray, shape, dtype)
        return array


class _TooLarge(pickle.UnpicklingError):
    pass


def _latin1_encode(text: Any, encoding: str = "latin1", *_: Any) -> bytes:
    import codecs

    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"codecs.encode with {encoding!r}")
    return codecs.encode(text, "latin1")


def _unpickle(path: Path) -> dict[Any, Any]:
    raw = read_regular(path)
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), budget=len(raw)).load()
    except _TooLarge as exc:
        raise DataError(f"'{path}' is not a CIFAR python batch: {exc}; the file is damaged or crafted; "
                        f"{BINARY_HINT}") from None
    except pickle.UnpicklingError as exc:
        raise DataError(f"'{path}' is a pickle holding something other than numpy arrays ({exc}); it was not loaded; {BINARY_HINT}") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError,
            MemoryError, RecursionError) as exc:
        raise DataError(f"'{path}' is not a readable CIFAR python batch ({type(exc).__name__}); {BINARY_HINT}") from None
    if not isinstance(obj, dict):
        raise DataError(f"'{path}' holds a {type(obj).__name__}, expected a CIFAR batch dict; {BINARY_HINT}")
    return obj


def read_regular(path: Path, limit: int = 1 << 30) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes, else a DataError."""
    import os
    import stat

    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise DataError(f"'{path}' is not a regular file; name a CIFAR batch file")
            if st.st_size > limit:
                raise DataError(f"'{path}' has {st.st_size:,} bytes, more than a CIFAR batch ({limit:,} at most)")
            return fh.read(st.st_size)  # read(n) allocates n bytes up front: never more than the file
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc.strerror or exc}") from None
