"""Find the images of a folder dataset: one sub-folder per class, optionally inside split folders.

Layouts (class names are sorted):

    ROOT/cats/*.jpg, ROOT/dogs/*.jpg                  -> split by stratified sampling
    ROOT/train/{cats,dogs}/, ROOT/validation/{...}/   -> the given splits (also val/, valid/, test/)

Hidden files (``.DS_Store``, ``._x.jpg``) are ignored; files with a non-image extension are
skipped with a reason. Structural problems (no classes, one class, a class only in validation)
raise :class:`DataError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.data.decode import IMAGE_EXTENSIONS
from cnnlab.errors import DataError

SPLIT_NAMES = {"train": "train", "training": "train", "validation": "val", "val": "val",
               "valid": "val", "test": "test", "testing": "test"}


@dataclass
class FolderScan:
    """Files per split: ``files[split]`` = list of ``(path, class_name)``."""

    root: Path
    files: dict[str, list[tuple[str, str]]]
    classes: list[str]
    has_splits: bool
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)


def scan_folder(root: Path) -> FolderScan:
    """List every candidate image under ``root`` (see the module docstring for layouts)."""
    if not root.exists():
        raise DataError(f"data folder '{root}' does not exist; give a folder with one sub-folder per class, or a dataset name (mnist, fashion-mnist, cifar10, cifar100, sample)")
    if not root.is_dir():
        raise DataError(f"'{root}' is a file, expected a folder with one sub-folder per class")
    subdirs = _subdirs(root)
    split_dirs = {SPLIT_NAMES[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_NAMES}
    scan = FolderScan(root, {}, [], has_splits=bool(split_dirs))
    if split_dirs:
        if "train" not in split_dirs:
            raise DataError(f"'{root}' has {', '.join(sorted(d.name for d in split_dirs.values()))}/ but no train/ folder; add train/<class>/ folders")
        for split, folder in sorted(split_dirs.items()):
            scan.files[split] = _scan_classes(folder, scan)
    else:
        scan.files["all"] = _scan_classes(root, scan)
    main = "train" if split_dirs else "all"
    train_classes = sorted({c for _, c in scan.files[main]})
    _check_classes(root, scan, main, train_classes)
    scan.classes = train_classes
    return scan


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan_classes(folder: Path, scan: FolderScan) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            scan.ignored.append((str(entry), "hidden file or folder, ignored"))
        elif entry.is_file():
            scan.ignored.append((str(entry), f"file directly in '{folder}', not in a class folder, ignored"))
    for class_dir in _subdirs(folder):
        found = _walk_class(class_dir, scan)
        if not found:
            scan.empty_classes.append(str(class_dir))
        out += [(p, class_dir.name) for p in found]
    return out


def _walk_class(class_dir: Path, scan: FolderScan) -> list[str]:
    """Image paths under one class folder (sub-folders included, hidden ones not), sorted."""
    images: list[str] = []
    for top, dirs, files in os.walk(class_dir):
        hidden_dirs = [d for d in dirs if d.startswith(".")]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        scan.ignored += [(os.path.join(top, d), "hidden folder, ignored") for d in hidden_dirs]
        for name in files:
            path = os.path.join(top, name)
            ext = os.path.splitext(name)[1].lower()
            if name.startswith("."):
                scan.ignored.append((path, "hidden file, ignored"))
            elif ext not in IMAGE_EXTENSIONS:
                scan.skipped.append((path, f"not an image file (extension '{ext or 'none'}'); cnnlab reads {', '.join(sorted(IMAGE_EXTENSIONS))}"))
            else:
                images.append(path)
    return sorted(images)


def _check_classes(root: Path, scan: FolderScan, main: str, classes: list[str]) -> None:
    where = f"'{root}/train'" if scan.has_splits else f"'{root}'"
    if not classes:
        hint = " (the class folders found are empty: " + ", ".join(scan.empty_classes) + ")" if scan.empty_classes else ""
        raise DataError(f"no classes found in {where}: expected one sub-folder per class holding images, e.g. {where}/cats/1.jpg{hint}")
    if len(classes) == 1:
        raise DataError(f"only one class ('{classes[0]}') in {where}; a classifier needs at least 2 class folders")
    for split, files in scan.files.items():
        extra = sorted({c for _, c in files} - set(classes))
        if extra:
            raise DataError(f"'{root}/{split}' has class folder(s) {', '.join(extra)} that train/ does not have; every class needs training images")
