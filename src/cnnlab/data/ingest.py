"""Decode (or probe) many image files in parallel on all cores, with a progress bar.

Files are cut into chunks; worker processes (``fork`` on Linux, ``spawn`` elsewhere) run the
chunk and send back compact results: for decoding a uint8 block ``(n, C, H, W)``, the content
hashes and the reasons of the files that failed. Unreadable files are left out of the array.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from cnnlab.data.decode import Probe, decode_or_reason, probe
from cnnlab.data.progress import ProgressFn, make_progress

SERIAL_BELOW = 64  # fewer files than this are handled in-process (no pool start-up)
_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
T = TypeVar("T")


@dataclass
class Decoded:
    """Rows that decoded (``ok`` = positions in the input list), files that did not, content hashes."""

    images: np.ndarray
    ok: np.ndarray
    skipped: list[tuple[str, str]]
    hashes: list[str] = field(default_factory=list)  # one per input path ("" when unreadable)
    stats_file: Path | None = None  # where per-split mean/std of this cache entry are remembered


ChunkResult = tuple[np.ndarray | None, list[int], list[tuple[int, str]], list[str]]

# The output array of the decode in progress. Workers forked from this process inherit it (it is a
# shared mapping then) and write rows straight into it; a spawned worker sees None and sends rows back.
_OUT: np.ndarray | None = None


def _decode_chunk(start: int, paths: list[str], shape: tuple[int, int, int], resize: str) -> ChunkResult:
    out = _OUT
    block = np.empty((len(paths), *shape), np.uint8) if out is None else None
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    hashes: list[str] = []
    for i, path in enumerate(paths):
        arr, reason, digest = decode_or_reason(path, shape, resize)
        hashes.append(digest)
        if arr is None:
            bad.append((i, reason))
            continue
        if out is not None:
            out[start + i] = arr
        else:
            assert block is not None
            block[len(good)] = arr
        good.append(i)
    return (None if block is None else block[: len(good)]), good, bad, hashes


def _probe_chunk(start: int, paths: list[str]) -> list[Probe]:
    return [probe(p) for p in paths]


def workers_available() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_chunks(fn: Callable[..., T], paths: list[str], args: tuple[Any, ...], take: Callable[[int, T], int], *,
               workers: int | None, progress: bool | ProgressFn | None, label: str) -> None:
    """Call ``fn(start, chunk, *args)`` over chunks of ``paths`` (in a pool unless small); ``take`` gets results in order."""
    n = len(paths)
    workers = workers_available() if workers is None else max(1, workers)
    chunk = max(8, min(64, n // (workers * 8) or 8))
    starts = list(range(0, n, chunk))
    bar = make_progress(progress, n, label)
    done = 0
    try:
        if workers == 1 or n < SERIAL_BELOW:
            for s in starts:
                done += take(s, fn(s, paths[s:s + chunk], *args))
                bar.update(done)
        else:
            for start, result in _pool_map(fn, paths, args, starts, chunk, workers):
                done += take(start, result)
                bar.update(done)
    finally:
        bar.close()


def _pool_map(fn: Callable[..., T], paths: list[str], args: tuple[Any, ...], starts: list[int], chunk: int,
              workers: int) -> Iterator[tuple[int, T]]:
    """``(start, fn(chunk))`` in order, from worker processes; in-process for what a broken pool left.

    Linux uses ``fork`` (as PyTorch's DataLoader does): workers start at once and never re-import
    the caller's ``__main__``. The workers only run Pillow and numpy. If the pool breaks (a worker
    killed, e.g. by the OOM killer), the remaining chunks are done in this process.
    """
    ctx = mp.get_context(_START_METHOD)
    finished = 0
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [(s, pool.submit(fn, s, paths[s:s + chunk], *args)) for s in starts]
            for s, fut in futures:
                yield s, fut.result()
                finished += 1
    except (BrokenProcessPool, OSError):
        for s in starts[finished:]:
            yield s, fn(s, paths[s:s + chunk], *args)


def decode_files(paths: list[str], shape: tuple[int, int, int], resize: str, *,
                 workers: int | None = None, progress: bool | ProgressFn | None = True) -> Decoded:
    """Decode ``paths`` to ``shape``; ``workers=None`` uses every core, 1 decodes in-process."""
    global _OUT
    n = len(paths)
    forked = _START_METHOD == "fork" and workers != 1 and n >= SERIAL_BELOW
    out = _shared_empty((n, *shape)) if forked else np.empty((n, *shape), np.uint8)
    ok = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []
    hashes = [""] * n

    def take(start: int, result: ChunkResult) -> int:
        block, good, bad, digests = result
        rows = np.asarray(good, np.int64) + start
        if block is not None:  # rows sent back by a spawned worker
            out[rows] = block
        ok[rows] = True
        skipped.extend((paths[start + i], reason) for i, reason in bad)
        hashes[start:start + len(digests)] = digests
        return len(digests)

    previous, _OUT = _OUT, out
    try:
        run_chunks(_decode_chunk, paths, (shape, resize), take, workers=workers, progress=progress, label="decoding images")
    finally:
        _OUT = previous
    index = np.flatnonzero(ok)
    images = out if len(index) == n else out[index]
    return Decoded(images, index, sorted(skipped), hashes)


def _shared_empty(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array in an anonymous shared mapping: what a forked worker writes, this process sees."""
    nbytes = int(np.prod(shape))
    buf = mmap.mmap(-1, max(1, nbytes))
    return np.frombuffer(buf, np.uint8, count=nbytes).reshape(shape)


def probe_files(paths: list[str], *, workers: int | None = None, progress: bool | ProgressFn | None = True) -> list[Probe]:
    """:func:`cnnlab.data.decode.probe` of every path, in parallel."""
    results: list[Probe] = [Probe()] * len(paths)

    def take(start: int, probes: list[Probe]) -> int:
        results[start:start + len(probes)] = probes
        return len(probes)

    run_chunks(_probe_chunk, paths, (), take, workers=workers, progress=progress, label="checking images")
    return results
