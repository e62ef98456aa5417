"""On-disk cache of decoded images: a memory-mappable ``.npy`` plus a small ``.json`` record.

The key is a SHA-256 of the file list with each file's size and mtime, the input shape, the resize
policy and the decoder version, so touching, adding or removing any file, or asking for another
shape, decodes again. Both files are written atomically, the ``.json`` last: a cache entry is
complete exactly when its ``.json`` exists. The ``.json`` carries a BLAKE2b checksum of the ``.npy``
file, checked before every use: an entry whose bytes changed (even to others of the same size) is
rebuilt. ``cache_dir=False`` turns the cache off.

Cache folder: ``cache_dir``, else ``$CNNLAB_CACHE``, else ``~/.cache/cnnlab/cache``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from cnnlab.data.ingest import Decoded
from cnnlab.utils.io import atomic_path, atomic_write_text

DECODER_VERSION = 2


def default_cache_dir() -> Path:
    """``$CNNLAB_CACHE``, else ``~/.cache/cnnlab/cache`` (never inside a shared ``$CNNLAB_DATA``)."""
    value = os.environ.get("CNNLAB_CACHE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "cnnlab" / "cache"


def cache_key(paths: list[str], shape: tuple[int, int, int], resize: str, extra: str = "") -> str:
    """A hex key that changes when any file, its size or mtime, the shape or the policy changes."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": DECODER_VERSION, "shape": list(shape), "resize": resize, "extra": extra}).encode())
    for p in paths:
        try:
            st = os.stat(p)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"\n{os.path.abspath(p)}\t{stamp}".encode())
    return h.hexdigest()[:32]


def cached_decode(paths: list[str], shape: tuple[int, int, int], resize: str, *,
                  cache_dir: Path | str | bool | None, decode: Callable[[], Decoded]) -> Decoded:
    """Return the cached decode of ``paths`` when valid; otherwise run ``decode()`` and store it."""
    if cache_dir is False:
        return decode()
    folder = default_cache_dir() if cache_dir in (None, True) else Path(str(cache_dir))
    key = cache_key(paths, shape, resize)
    with _decode_lock(folder, key):  # DDP ranks / parallel runs: one decodes, the others then read
        hit = _read(folder, key, shape)
        if hit is not None:
            hit.stats_file = folder / f"{key}.stats.json"
            return hit
        result = decode()
        # a read-only or full disk must not stop training; the next run decodes again
        with contextlib.suppress(OSError):
            _write(folder, key, result, len(paths))
            result.stats_file = folder / f"{key}.stats.json"
        return result


def download_lock(folder: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive ``flock`` for downloading into ``folder`` (others wait), kept in the cache folder so
    that the dataset folder holds only the dataset; no lock where none is possible."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return _decode_lock(default_cache_dir(), f"download-{key}")


@contextlib.contextmanager
def _decode_lock(folder: Path, key: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``KEY.lock`` while one process checks the cache and decodes."""
    try:
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / f"{key}.lock", "a+b")  # noqa: SIM115 (held for the whole block)
    except (ImportError, OSError):  # no fcntl (Windows) or a read-only cache folder: no lock
        yield
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        fh.close()  # closing releases the lock


def cached_stats(stats_file: Path | None, sources: list[str],
                 compute: Callable[[], tuple[tuple[float, ...], tuple[float, ...]]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std of a training split, remembered beside its cache entry (keyed by the split's files)."""
    if stats_file is None:
        return compute()
    key = hashlib.sha256("\n".join(sources).encode()).hexdigest()[:32]
    try:
        memo = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.is_file() else {}
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return tuple(memo[key]["mean"]), tuple(memo[key]["std"])
    mean, std = compute()
    memo[key] = {"mean": list(mean), "std": list(std)}
    with contextlib.suppress(OSError):
        atomic_write_text(stats_file, json.dumps(memo))
    return mean, std


def _read(folder: Path, key: str, shape: tuple[int, int, int]) -> Decoded | None:
    meta_path, npy_path = folder / f"{key}.json", folder / f"{key}.npy"
    if not (meta_path.is_file() and npy_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("checksum") != file_checksum(npy_path):  # damaged or overwritten: decode again
            return None
        images = np.load(npy_path, mmap_mode="r")
    except (OSError, ValueError, AttributeError):
        return None
    ok = np.asarray(meta.get("ok", []), np.int64)
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != tuple(shape) or len(images) != len(ok):
        return None
    skipped = [(str(p), str(r)) for p, r in meta.get("skipped", [])]
    return Decoded(images, ok, skipped, [str(h) for h in meta.get("hashes", [])])


def _write(folder: Path, key: str, result: Decoded, total: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{key}.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(result.images))
    meta = {"total": total, "ok": result.ok.tolist(), "skipped": [list(s) for s in result.skipped],
            "hashes": result.hashes, "checksum": file_checksum(folder / f"{key}.npy")}
    atomic_write_text(folder / f"{key}.json", json.dumps(meta))


def cache_files(cache_dir: Path | str | None = None) -> list[Path]:
    """The complete entries (``.npy`` files) in the cache folder."""
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return sorted(p.with_suffix(".npy") for p in folder.glob("*.json") if p.with_suffix(".npy").exists())


def cached_array(files: list[str], tag: str, shape: tuple[int, int, int], resize: str,
                 cache_dir: Path | str | bool | None, build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()`` (uint8 ``(N, *shape)``), remembered as a memory-mappable ``.npy`` keyed by ``files``."""
    if cache_dir is False:
        return build()
    folder = default_cache_dir() if cache_dir in (None, True) else Path(str(cache_dir))
    key = cache_key(files, shape, resize, extra=tag)
    npy = folder / f"{key}.npy"
    with _decode_lock(folder, key):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            recorded = json.loads((folder / f"{key}.json").read_text(encoding="utf-8")).get("checksum")
            arr = np.load(npy, mmap_mode="r")
            if arr.dtype == np.uint8 and tuple(arr.shape[1:]) == tuple(shape) and recorded == file_checksum(npy):
                return arr
        result = build()
        with contextlib.suppress(OSError):
            with atomic_path(npy) as tmp, open(tmp, "wb") as fh:
                np.save(fh, result)
            atomic_write_text(folder / f"{key}.json", json.dumps({"files": files, "tag": tag, "total": len(result),
                                                                  "checksum": file_checksum(npy)}))
        return result


def file_checksum(path: Path) -> str:
    """BLAKE2b of a file's bytes, read in 16 MiB blocks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def clear_cache(cache_dir: Path | str | None = None) -> tuple[int, int]:
    """Delete every cache entry (``.npy``, ``.json``, ``.stats.json``, ``.lock``); returns (files, bytes)."""
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir)
    files = nbytes = 0
    if not folder.is_dir():
        return 0, 0
    for p in folder.iterdir():
        if p.is_file() and p.suffix in (".npy", ".json", ".lock", ".tmp"):
            nbytes += p.stat().st_size
            p.unlink(missing_ok=True)
            files += 1
    return files, nbytes
