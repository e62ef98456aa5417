"""``inspect_data``: what a dataset holds, before training on it (``cnnlab data PATH|NAME``).

Classes and counts per split (the same splits ``load_data`` would make), image sizes
(min/median/max), colour modes and formats, files skipped with reasons, identical images in two
splits, and class-imbalance warnings. Every file of a folder/CSV dataset is fully decoded (in
parallel) so truncated files are found; nothing is resized or cached.

>>> r = inspect_data("sample", progress=False)
>>> r.counts["train"]["0"], r.modes
(784, {'L': 10000})
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data import defaults
from cnnlab.data.api import duplicate_text
from cnnlab.data.progress import ProgressFn
from cnnlab.data.raw import RawData, RawSplit
from cnnlab.data.split import check_fraction

FEW_IMAGES = 5


@dataclass
class DataReport:
    """The facts ``cnnlab data`` prints; :meth:`to_dict` is its ``--format json``."""

    source: str
    description: str
    classes: list[str]
    counts: dict[str, dict[str, int]]
    split_note: str  # English; ``split_plan`` holds the same facts for other languages
    sizes: dict[str, dict[str, int]]  # {"width": {"min", "median", "max"}, "height": {...}}
    modes: dict[str, int]
    formats: dict[str, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[list[tuple[str, str]]] = field(default_factory=list)
    duplicates_within: int = 0
    warnings: list[str] = field(default_factory=list)
    split_plan: dict[str, Any] = field(default_factory=dict)  # {"given": [...], "drawn": {...}, "pool", "seed"}

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total"] = self.total
        out["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        out["ignored"] = [{"path": p, "reason": r} for p, r in self.ignored]
        out["duplicates"] = [[{"split": s, "path": p} for s, p in g] for g in self.duplicates]
        return out


def inspect_data(source: str | os.PathLike[str], *, val_split: float = defaults.VAL_SPLIT,
                 test_split: float = defaults.TEST_SPLIT, seed: int = defaults.SEED,
                 progress: bool | ProgressFn | None = True, download: bool = True) -> DataReport:
    """Describe ``source`` (anything ``load_data`` accepts)."""
    check_fraction("val_split", val_split)
    check_fraction("test_split", test_split)
    path = Path(os.fspath(source)).expanduser()
    if path.is_dir() and _is_image_folder(path):
        return _inspect_files(path, _folder_entries(path), val_split, test_split, seed, progress)
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        return _inspect_files(path, _csv_entries(path), val_split, test_split, seed, progress)
    return _inspect_arrays(source, val_split, test_split, seed, progress, download)


def _is_image_folder(path: Path) -> bool:
    from cnnlab.data.cifar import find_cifar
    from cnnlab.data.idx import find_idx_pairs

    return not find_idx_pairs(path) and find_cifar(path) is None


def _folder_entries(path: Path) -> tuple[dict[str, list[tuple[str, str]]], list[str], str, list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    from cnnlab.data.folder import scan_folder

    scan = scan_folder(path)
    layout = "/".join(s for s in ("train", "val", "test") if s in scan.files) if scan.has_splits else "class folders"
    warns = [f"class folder '{p}' holds no images" for p in scan.empty_classes]
    return scan.files, scan.classes, f"image folder '{path}' ({layout}, {len(scan.classes)} classes)", scan.skipped, scan.ignored, warns


def _csv_entries(path: Path) -> tuple[dict[str, list[tuple[str, str]]], list[str], str, list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    from cnnlab.data.csv_source import read_csv_rows, sort_labels

    rows = read_csv_rows(path)
    entries: dict[str, list[tuple[str, str]]] = {}
    for file, label, split in rows:
        entries.setdefault(split, []).append((file, label))
    classes = sort_labels({lab for _, lab, _ in rows})
    return entries, classes, f"CSV '{path}' ({len(rows):,} rows, {len(classes)} classes)", [], [], []


def _inspect_files(path: Path, found: tuple[Any, ...], val: float, test: float, seed: int,
                   progress: bool | ProgressFn | None) -> DataReport:
    from cnnlab.data.api import assign_splits, find_duplicates
    from cnnlab.data.ingest import probe_files

    entries, classes, desc, skipped, ignored, warns = found
    order = sorted(entries)
    files = [(s, p, c) for s in order for p, c in entries[s]]
    probes = probe_files([p for _, p, _ in files], progress=progress)
    index = {c: i for i, c in enumerate(classes)}
    good = [(f, pr) for f, pr in zip(files, probes, strict=True) if not pr.reason]
    skipped = sorted(skipped + [(f[1], pr.reason) for f, pr in zip(files, probes, strict=True) if pr.reason])
    placeholder = np.zeros((len(good), 0, 0, 0), np.uint8)  # only labels matter for the split
    splits = {}
    for s in order:
        rows = [k for k, (f, _) in enumerate(good) if f[0] == s]
        splits[s] = RawSplit(placeholder[rows], np.asarray([index[good[k][0][2]] for k in rows], np.int64),
                             [good[k][0][1] for k in rows], [good[k][1].digest for k in rows])
    raw = RawData(splits, classes, desc, str(path), skipped=skipped, ignored=ignored, warnings=warns)
    final = assign_splits(raw, val_split=val, test_split=test, seed=seed) if good else {}
    widths = [pr.width for _, pr in good]
    heights = [pr.height for _, pr in good]
    report = DataReport(str(path), desc, classes, _counts(final, classes), _split_note(raw, val, test, seed),
                        {"width": _stats(widths), "height": _stats(heights)},
                        _tally(pr.mode for _, pr in good), _tally(pr.format for _, pr in good),
                        skipped, ignored, find_duplicates(final), _within(final), list(warns))
    report.warnings += _class_warnings(report)
    report.split_plan = split_plan(raw, val, test, seed)
    return report


def _inspect_arrays(source: str | os.PathLike[str], val: float, test: float, seed: int,
                    progress: bool | ProgressFn | None, download: bool) -> DataReport:
    from cnnlab.data.api import (
        SAMPLE_SEED,
        SAMPLE_SPLIT,
        assign_splits,
        find_duplicates,
        read_source,
    )

    raw = read_source(source, (1, 1, 1), "crop", cache_dir=False, progress=progress, download=download)
    if raw.source == "sample":
        val, test = SAMPLE_SPLIT
        seed = SAMPLE_SEED
    for split in raw.splits.values():
        split.images = np.asarray(split.images)
        split.hashes = [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in split.images]
    final = assign_splits(raw, val_split=val, test_split=test, seed=seed)
    first = next(iter(raw.splits.values())).images
    n = sum(len(s.labels) for s in raw.splits.values())
    c, h, w = first.shape[1:]
    mode = "L" if c == 1 else "RGB"
    sizes = {"width": _stats([w]), "height": _stats([h])}
    fmt = "IDX" if "IDX" in raw.description or raw.source in ("sample", "mnist", "fashion-mnist") else "CIFAR"
    report = DataReport(raw.source, raw.description, raw.classes, _counts(final, raw.classes),
                        _split_note(raw, val, test, seed), sizes, {mode: n}, {fmt: n}, raw.skipped,
                        raw.ignored, find_duplicates(final), _within(final), list(raw.warnings))
    report.warnings += _class_warnings(report)
    report.split_plan = split_plan(raw, val, test, seed)
    return report


def _counts(splits: dict[str, RawSplit], classes: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name in ("train", "val", "test"):
        if name in splits:
            per = np.bincount(splits[name].labels, minlength=len(classes))
            out[name] = {c: int(k) for c, k in zip(classes, per, strict=True)}
    return out


def split_plan(raw: RawData, val: float, test: float, seed: int) -> dict[str, Any]:
    """Which splits the source gave and which are drawn (fraction), from what, with which seed."""
    drawn = {}
    if "val" not in raw.splits and val > 0:
        drawn["val"] = val
    if "test" not in raw.splits and test > 0:
        drawn["test"] = test
    return {"given": [s for s in ("train", "val", "test") if s in raw.splits], "drawn": drawn,
            "pool": "train" if "train" in raw.splits else "all", "seed": seed}


def _split_note(raw: RawData, val: float, test: float, seed: int) -> str:
    return split_text(split_plan(raw, val, test, seed), "en")


def split_text(plan: dict[str, Any], lang: str) -> str:
    """``given: train, val; drawn stratified from train: val 0.2 (seed 0)`` in ``lang``."""
    from cnnlab.i18n import tr

    parts = []
    if plan["given"]:
        parts.append(tr("data.split.given", lang, splits=", ".join(plan["given"])))
    if plan["drawn"]:
        pool = tr(f"data.split.pool_{plan['pool']}", lang)
        fractions = ", ".join(f"{k} {v:g}" for k, v in plan["drawn"].items())
        parts.append(tr("data.split.drawn", lang, pool=pool, fractions=fractions, seed=plan["seed"]))
    return "; ".join(parts)


def _stats(values: list[int]) -> dict[str, int]:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    arr = np.asarray(values)
    return {"min": int(arr.min()), "median": int(np.median(arr)), "max": int(arr.max())}


def _tally(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _within(splits: dict[str, RawSplit]) -> int:
    """Extra copies of identical images inside the same split."""
    return sum(len(s.hashes or []) - len(set(s.hashes or [])) for s in splits.values())


def _class_warnings(report: DataReport) -> list[str]:
    out = []
    train = report.counts.get("train", {})
    for c, n in train.items():
        if n < FEW_IMAGES:
            out.append(f"class '{c}' has only {n} training image(s); expect poor accuracy on it")
    nonzero = [n for n in train.values() if n]
    if nonzero and max(nonzero) >= 3 * min(nonzero):
        big = max(train, key=lambda k: train[k])
        small = min((k for k in train if train[k]), key=lambda k: train[k])
        out.append(f"classes are imbalanced: '{big}' has {train[big]:,} training images, '{small}' has {train[small]:,} "
                   f"({train[big] / train[small]:.1f}x); accuracy can hide poor recall on small classes")
    if report.duplicates:
        out.append(duplicate_text(report.duplicates))
    return out
