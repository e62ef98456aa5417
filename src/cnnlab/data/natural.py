"""The shape a data set has by itself, for ``load_data(source)`` without an ``input_shape``.

Looking at a data set should not need a network: MNIST is 1×28×28 and CIFAR 3×32×32 as stored;
a folder or CSV of photos gets its typical image (the median height and width of up to
``SAMPLE`` files, read from the file headers only, and 1 channel only when most files are grey).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from cnnlab.data.decode import IMAGE_EXTENSIONS
from cnnlab.data.raw import RawData

SAMPLE = 400  # file headers read to pick a folder's typical size (evenly spaced over the sorted list)
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def files_shape(source: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """The typical ``(C, H, W)`` of a folder of images or a CSV of ``path,label``; ``None`` for other sources."""
    path = Path(os.fspath(source)).expanduser()
    files: list[str] = []
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        from cnnlab.data.csv_source import read_csv_rows

        files = [f for f, _, _ in read_csv_rows(path)]
    elif path.is_dir():
        from cnnlab.data.idx import find_idx_pairs

        if find_idx_pairs(path):
            return None
        from cnnlab.data.cifar import find_cifar

        if find_cifar(path) is not None:
            return None
        files = sorted(str(p) for p in path.rglob("*")
                       if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    else:
        return None
    return typical_shape(files)


def typical_shape(files: list[str]) -> tuple[int, int, int] | None:
    from PIL import Image

    step = max(1, len(files) // SAMPLE)
    heights, widths, grey = [], [], 0
    for f in files[::step][:SAMPLE]:
        try:
            with Image.open(f) as im:  # reads the header only
                w, h = im.size
                grey += im.mode in GREY_MODES
        except Exception:  # noqa: BLE001 - an unreadable file is load_data's to report
            continue
        heights.append(h)
        widths.append(w)
    if not heights:
        return None
    channels = 1 if grey * 2 > len(heights) else 3
    return channels, int(statistics.median_low(heights)), int(statistics.median_low(widths))


def stored_shape(raw: RawData) -> tuple[int, int, int]:
    """The ``(C, H, W)`` an array source (IDX, CIFAR, a named set) is stored in."""
    split = next(iter(raw.splits.values()))
    c, h, w = (int(v) for v in split.images.shape[1:])
    return c, h, w
