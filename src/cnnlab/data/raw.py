"""``RawData``: what a source yields before splitting, shaping and statistics.

Each source module (folder, IDX, CIFAR, CSV, named) returns one; :mod:`cnnlab.data.api` turns it
into a :class:`~cnnlab.data.types.DataBundle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class RawSplit:
    """uint8 ``images (N, C, H, W)`` (any size; conformed later), int64 ``labels``, a source per row."""

    images: np.ndarray
    labels: np.ndarray
    sources: list[str]
    hashes: list[str] | None = None  # content hash per row (file sources), for duplicate checks
    files: list[str] | None = None  # the array files behind an IDX/CIFAR split (keys its resize cache)


@dataclass
class RawData:
    """Splits by name: ``all`` (to be split), or ``train`` with optional ``val`` / ``test``."""

    splits: dict[str, RawSplit]
    classes: list[str]
    description: str
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shaped: bool = False  # True when images already have the requested input shape
    stats_file: Path | None = None  # remembers mean/std for this decoded cache entry
