"""Image folders (one sub-folder per class) as :class:`RawData`, decoded in parallel and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data.folder import scan_folder
from cnnlab.data.ingest import decode_files
from cnnlab.data.progress import ProgressFn
from cnnlab.data.raw import RawData, RawSplit

CacheDir = Path | bool | None  # a folder, None (the default folder) or False (no cache)


def files_to_raw(entries: dict[str, list[tuple[str, str]]], classes: list[str], shape: tuple[int, int, int],
                 resize: str, *, cache_dir: CacheDir, progress: bool | ProgressFn | None) -> tuple[dict[str, RawSplit], list[tuple[str, str]], Path | None]:
    """Decode every ``(path, class)`` of every split: the splits, the skipped files, the stats memo."""
    from cnnlab.data.cache import cached_decode

    order = sorted(entries)
    paths = [p for s in order for p, _ in entries[s]]
    index = {name: i for i, name in enumerate(classes)}
    labels = np.asarray([index[c] for s in order for _, c in entries[s]], np.int64)
    owner = np.asarray([k for k, s in enumerate(order) for _ in entries[s]], np.int64)
    decoded = cached_decode(paths, shape, resize, cache_dir=cache_dir,
                            decode=lambda: decode_files(paths, shape, resize, progress=progress))
    splits: dict[str, RawSplit] = {}
    for k, split in enumerate(order):
        rows = np.flatnonzero(owner[decoded.ok] == k)  # rows of decoded.images in this split
        picked = decoded.ok[rows]  # positions in `paths`
        images = _rows(decoded.images, rows)
        hashes = [decoded.hashes[i] for i in picked.tolist()] if decoded.hashes else None
        splits[split] = RawSplit(images, labels[picked], [paths[i] for i in picked.tolist()], hashes)
    return splits, decoded.skipped, decoded.stats_file


def _rows(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``images[rows]``, as a view (memmap stays a memmap) when ``rows`` is one contiguous run."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return images[int(rows[0]):int(rows[-1]) + 1]
    return images[rows]


def load_folder(root: Path, shape: tuple[int, int, int], resize: str, *,
                cache_dir: CacheDir, progress: bool | ProgressFn | None) -> RawData:
    """Scan ``root`` (see :mod:`cnnlab.data.folder`) and decode its images to ``shape``."""
    scan = scan_folder(root)
    splits, bad, stats_file = files_to_raw(scan.files, scan.classes, shape, resize, cache_dir=cache_dir, progress=progress)
    warnings = [f"class folder '{p}' holds no images" for p in scan.empty_classes]
    layout = "/".join(s for s in ("train", "val", "test") if s in splits) if scan.has_splits else "class folders"
    desc = f"image folder '{root}' ({layout}, {len(scan.classes)} classes)"
    raw = RawData(splits, scan.classes, desc, str(root), skipped=sorted(scan.skipped + bad),
                  ignored=scan.ignored, warnings=warnings, shaped=True, stats_file=stats_file)
    return raw
