"""IDX datasets (MNIST, Fashion-MNIST, the bundled sample) as :class:`RawData`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data.idx import find_idx_pairs, read_idx_pair
from cnnlab.data.named import MNIST_CLASSES
from cnnlab.data.raw import RawData, RawSplit
from cnnlab.errors import DataError


def _split(images: np.ndarray, labels: np.ndarray, tag: str) -> RawSplit:
    path = getattr(images, "path", None)
    return RawSplit(images, labels, [f"{tag}:{i}" for i in range(len(labels))], files=[str(path)] if path else None)


def _classes_for(labels: list[np.ndarray], classes: list[str] | None, where: Path) -> list[str]:
    top = max(int(lab.max(initial=0)) for lab in labels)
    if min(int(lab.min(initial=0)) for lab in labels) < 0:
        raise DataError(f"'{where}' has negative labels; IDX labels must be 0..K-1")
    if classes is not None:
        if top >= len(classes):
            raise DataError(f"'{where}' has label {top} but the dataset has {len(classes)} classes")
        return list(classes)
    present = np.unique(np.concatenate([np.unique(lab) for lab in labels])) if labels else np.zeros(0, np.int64)
    if len(present) < top + 1:
        missing = sorted(set(range(top + 1)) - {int(v) for v in present})
        raise DataError(f"'{where}' has labels up to {top}, but {len(missing):,} of the classes 0..{top} have no "
                        f"image (e.g. {', '.join(map(str, missing[:5]))}); IDX labels must be 0..K-1 with every "
                        "class present; the labels file is corrupt or belongs to another dataset")
    return [str(k) for k in range(top + 1)]


def load_idx_folder(folder: Path, name: str, classes: list[str] | None = None) -> RawData:
    """Read ``train-*`` and ``t10k-*`` IDX files from ``folder`` (either may be missing, not both)."""
    pairs = find_idx_pairs(folder)
    if not pairs:
        raise DataError(
            f"no IDX files in '{folder}': expected train-images-idx3-ubyte.gz + train-labels-idx1-ubyte.gz "
            "(and/or t10k-images-idx3-ubyte.gz + t10k-labels-idx1-ubyte.gz), gzip or not"
        )
    arrays = {split: read_idx_pair(*paths) for split, paths in pairs.items()}
    cls = _classes_for([lab for _, lab in arrays.values()], classes, folder)
    if "train" in arrays:
        splits = {"train": _split(*arrays["train"], f"{name}:train")}
        if "test" in arrays:
            splits["test"] = _split(*arrays["test"], f"{name}:test")
        desc = f"{name} (IDX, {', '.join(f'{k} {len(v.labels):,}' for k, v in splits.items())})"
    else:  # only a test set: split it three ways
        splits = {"all": _split(*arrays["test"], f"{name}:test")}
        desc = f"{name} (IDX test set only, {len(splits['all'].labels):,} images)"
    return RawData(splits, cls, desc, source=name if name != str(folder) else str(folder))


def load_idx_files(images_path: Path, labels_path: Path | None = None) -> RawData:
    """One IDX image file (its labels file found beside it) as a single split to divide."""
    if labels_path is None:
        guess = images_path.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
        labels_path = images_path.with_name(guess)
        if guess == images_path.name or not labels_path.exists():
            raise DataError(
                f"found IDX images '{images_path}' but no labels file beside it (looked for '{labels_path.name}'); "
                "put the matching *-labels-idx1-ubyte[.gz] in the same folder"
            )
    images, labels = read_idx_pair(images_path, labels_path)
    cls = _classes_for([labels], MNIST_CLASSES if labels.max(initial=0) < 10 else None, images_path)
    split = _split(images, labels, images_path.name)
    return RawData({"all": split}, cls, f"IDX file {images_path.name} ({len(labels):,} images)", str(images_path))


def load_sample(folder: Path) -> RawData:
    """The bundled MNIST test set, to be split 80/10/10 by the caller."""
    raw = load_idx_folder(folder, "sample", MNIST_CLASSES)
    raw.description = "sample: the bundled MNIST test set (10,000 digits, CC BY-SA 3.0)"
    raw.source = "sample"
    return raw
