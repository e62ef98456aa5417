"""Data containers shared by every source: :class:`ImageSet` (one split) and :class:`DataBundle`.

>>> import numpy as np
>>> s = ImageSet(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 1]), ["a", "b"], ["x.png", "y.png"])
>>> len(s), s.counts()
(2, {'a': 1, 'b': 1})
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError, did_you_mean
from cnnlab.utils.io import atomic_write_text


class Resize(str, enum.Enum):
    """How an image of another size is brought to the spec's (H, W)."""

    CROP = "crop"  # resize the short side to fit, then centre-crop (default)
    STRETCH = "stretch"  # resize both sides independently (aspect ratio changes)
    PAD = "pad"  # resize the long side to fit, then pad with black, centred

    @classmethod
    def parse(cls, value: str | Resize) -> Resize:
        if isinstance(value, Resize):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = [m.value for m in cls]
            raise DataError(
                f"unknown resize policy {value!r}{did_you_mean(str(value), names)}; "
                f"use one of: {', '.join(names)}"
            ) from None


@dataclass
class ImageSet:
    """One split: ``images`` uint8 ``(N, C, H, W)`` (maybe a read-only memmap), ``labels`` int64 ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    sources: list[str]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels) or len(self.labels) != len(self.sources):
            raise ValueError(
                f"images ({len(self.images)}), labels ({len(self.labels)}) and sources "
                f"({len(self.sources)}) differ in length"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-image shape ``(C, H, W)``."""
        _, c, h, w = self.images.shape
        return (int(c), int(h), int(w))

    def subset(self, index: np.ndarray) -> ImageSet:
        """A new ImageSet with the rows ``index`` (the images are copied into RAM)."""
        index = np.asarray(index, dtype=np.int64)
        return ImageSet(
            np.ascontiguousarray(self.images[index]),
            self.labels[index],
            list(self.classes),
            [self.sources[i] for i in index.tolist()],
        )

    def counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        per = np.bincount(self.labels, minlength=len(self.classes)) if len(self) else np.zeros(len(self.classes), np.int64)
        return {name: int(n) for name, n in zip(self.classes, per, strict=True)}


@dataclass
class DataBundle:
    """Everything training needs: the splits, class names, normalisation and what was skipped."""

    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    resize: str = Resize.CROP.value
    skipped: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    duplicates: list[list[tuple[str, str]]] = field(default_factory=list)  # same content in 2+ splits

    def splits(self) -> dict[str, ImageSet]:
        """The non-empty splits by name (``train``, ``val``, ``test``)."""
        out = {"train": self.train, "val": self.val}
        if self.test is not None:
            out["test"] = self.test
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"train": {"cat": 1000, ...}, "val": {...}}``."""
        return {name: s.counts() for name, s in self.splits().items()}

    def summary_line(self, skipped_path: str | None = None) -> str:
        """``"3,000 images (train 2,000, val 1,000), 2 skipped: see RUN/skipped.txt"``."""
        total = sum(len(s) for s in self.splits().values())
        parts = ", ".join(f"{k} {len(v):,}" for k, v in self.splits().items())
        line = f"{total:,} images ({parts})"
        if self.skipped:
            line += f", {len(self.skipped):,} skipped"
            if skipped_path:
                line += f": see {skipped_path}"
        return line

    def write_skipped(self, path: str | Path) -> Path:
        """Write ``skipped.txt``: one ``path<TAB>reason`` line per skipped file (maybe empty)."""
        target = Path(path)
        if target.is_dir():
            target = target / "skipped.txt"
        lines = [f"{p}\t{reason}\n" for p, reason in self.skipped]
        atomic_write_text(target, "".join(lines))
        return target

    def to_dict(self) -> dict[str, object]:
        """The ``data.json`` record of a run (see CONTRACTS.md)."""
        return {
            "source": self.source,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "resize": self.resize,
            "classes": list(self.classes),
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            "counts": self.counts(),
            "skipped": len(self.skipped),
        }
