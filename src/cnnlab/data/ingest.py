"""Decode many image files into one uint8 ``(N, C, H, W)`` array, in parallel on all cores.

Files are cut into chunks; worker processes (forkserver on Linux: no torch in them) decode a
chunk with :func:`cnnlab.data.decode.decode_or_reason` and send back a uint8 block. Unreadable
files come back as ``(path, reason)`` and are left out of the array.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from cnnlab.data.decode import decode_or_reason
from cnnlab.data.progress import ProgressFn, make_progress

_SERIAL_BELOW = 64  # fewer files than this are decoded in-process (no pool start-up)


@dataclass
class Decoded:
    """The rows that decoded (``ok`` = positions in the input list) and the files that did not."""

    images: np.ndarray
    ok: np.ndarray
    skipped: list[tuple[str, str]]


def _decode_chunk(paths: list[str], shape: tuple[int, int, int], resize: str) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    block = np.empty((len(paths), *shape), np.uint8)
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        arr, reason = decode_or_reason(path, shape, resize)
        if arr is None:
            bad.append((i, reason))
        else:
            block[len(good)] = arr
            good.append(i)
    return block[: len(good)], good, bad


def workers_available() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def decode_files(paths: list[str], shape: tuple[int, int, int], resize: str, *,
                 workers: int | None = None, progress: bool | ProgressFn | None = True) -> Decoded:
    """Decode ``paths`` to ``shape``; ``workers=None`` uses every core, 1 decodes in-process."""
    n = len(paths)
    out = np.empty((n, *shape), np.uint8)
    ok = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []
    workers = workers_available() if workers is None else max(1, workers)
    chunk = max(8, min(64, n // (workers * 8) or 8))
    starts = list(range(0, n, chunk))
    bar = make_progress(progress, n, "decoding images")
    done = 0

    def take(start: int, result: tuple[np.ndarray, list[int], list[tuple[int, str]]]) -> None:
        nonlocal done
        block, good, bad = result
        rows = np.asarray(good, np.int64) + start
        out[rows] = block
        ok[rows] = True
        skipped.extend((paths[start + i], reason) for i, reason in bad)
        done += len(good) + len(bad)
        bar.update(done)

    try:
        if workers == 1 or n < _SERIAL_BELOW:
            for s in starts:
                take(s, _decode_chunk(paths[s:s + chunk], shape, resize))
        else:
            ctx = mp.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [(s, pool.submit(_decode_chunk, paths[s:s + chunk], shape, resize)) for s in starts]
                for s, fut in futures:
                    take(s, fut.result())
    finally:
        bar.close()
    index = np.flatnonzero(ok)
    images = out if len(index) == n else out[index]
    return Decoded(images, index, sorted(skipped))
