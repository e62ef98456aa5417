"""``load_data``: one entry point for every source (folder, IDX, CIFAR, CSV, named, ``sample``).

>>> b = load_data("sample", (1, 28, 28), progress=False)
>>> len(b.train), len(b.val), len(b.test), b.classes[:3]
(8000, 1000, 1000, ['0', '1', '2'])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data import defaults
from cnnlab.data.arrays import conform
from cnnlab.data.progress import ProgressFn
from cnnlab.data.raw import RawData, RawSplit
from cnnlab.data.split import check_fraction, stratified_split
from cnnlab.data.stats import channel_stats
from cnnlab.data.types import DataBundle, ImageSet, Resize
from cnnlab.errors import DataError
from cnnlab.utils.paths import missing_path_hint

SAMPLE_SPLIT = (0.1, 0.1)  # the bundled sample: 80 / 10 / 10 ...
SAMPLE_SEED = 0  # ... always drawn with this seed, so its test digits never depend on a run's seed
FEW_IMAGES = 5  # a class with fewer training images than this gets a warning


def load_data(source: str | os.PathLike[str], input_shape: tuple[int, int, int] | list[int] | None = None, *,
              val_split: float = defaults.VAL_SPLIT, test_split: float = defaults.TEST_SPLIT,
              seed: int = defaults.SEED, resize: str | Resize = defaults.RESIZE,
              strict: bool = False, cache_dir: str | os.PathLike[str] | bool | None = None,
              progress: bool | ProgressFn | None = True, download: bool = True) -> DataBundle:
    """Load ``source`` as uint8 ``(N, C, H, W)`` splits shaped to ``input_shape`` = (C, H, W).

    Splits: a folder's ``train/``, ``validation/`` (``val/``), ``test/`` sub-folders when present;
    a named dataset's official test set as ``test`` with ``val`` taken from train; otherwise a
    stratified split (``val_split``, ``test_split``, ``seed``). ``mean``/``std`` come from train.
    Unreadable files are skipped and listed in ``bundle.skipped`` (``strict=True``: an error).
    Without ``input_shape`` (just looking at a data set) images keep the shape the source has by
    itself: MNIST 1×28×28, CIFAR 3×32×32, a folder's typical size (``cnnlab.data.natural``).
    """
    raw, shape, policy = _read_shaped(source, input_shape, resize, val_split, test_split, strict, cache_dir,
                                      progress, download)
    splits = assign_splits(raw, **_split_args(raw, val_split, test_split, seed))
    sets = {k: _to_imageset(v, raw.classes, shape, policy, raw.shaped) for k, v in splits.items()}
    from cnnlab.data.cache import cached_stats

    mean, std = cached_stats(raw.stats_file, sets["train"].sources, lambda: channel_stats(sets["train"].images))
    bundle = DataBundle(
        train=sets["train"], val=sets["val"], test=sets.get("test"), classes=list(raw.classes),
        mean=mean, std=std, input_shape=shape, resize=policy.value, skipped=list(raw.skipped),
        description=raw.description, source=raw.source, warnings=list(raw.warnings),
    )
    bundle.duplicates = find_duplicates(splits)
    bundle.warnings += class_warnings(bundle) + duplicate_warning(bundle.duplicates)
    return bundle


def load_split(source: str | os.PathLike[str], input_shape: tuple[int, int, int] | list[int] | None, split: str, *,
               val_split: float = defaults.VAL_SPLIT, test_split: float = defaults.TEST_SPLIT,
               seed: int = defaults.SEED, resize: str | Resize = defaults.RESIZE,
               strict: bool = False, cache_dir: str | os.PathLike[str] | bool | None = None,
               progress: bool | ProgressFn | None = True, download: bool = True) -> ImageSet | None:
    """Only ``split`` (``train``, ``val`` or ``test``) of what :func:`load_data` would return with the
    same arguments: the same images, labels, classes and sources, but the other splits are never read
    into memory and no training mean/std is computed (an evaluation uses the normalisation its run
    recorded). ``None`` when the source has no such split.

    For an IDX source (MNIST) this skips decoding the 54,000 training images and their statistics, and
    the rows gathered from the gzip file are kept in the decoded-image cache (``cache_dir``; keyed by
    the file's path, size and mtime and the row numbers): the next call reads no gzip.
    """
    if split not in ("train", "val", "test"):
        raise DataError(f"unknown split {split!r}; use train, val or test")
    raw, shape, policy = _read_shaped(source, input_shape, resize, val_split, test_split, strict, cache_dir,
                                      progress, download)
    taken = assign_splits(raw, **_split_args(raw, val_split, test_split, seed), only=split,
                          rows_cache=cache_dir if isinstance(cache_dir, bool) or cache_dir is None else Path(cache_dir))
    if split not in taken:
        return None
    return _to_imageset(taken[split], raw.classes, shape, policy, raw.shaped)


def _read_shaped(source: str | os.PathLike[str], input_shape: tuple[int, int, int] | list[int] | None,
                 resize: str | Resize, val_split: float, test_split: float, strict: bool,
                 cache_dir: str | os.PathLike[str] | bool | None, progress: bool | ProgressFn | None,
                 download: bool) -> tuple[RawData, tuple[int, int, int], Resize]:
    """The source read and conformed to ``input_shape`` (before splitting): ``(raw, shape, policy)``."""
    from cnnlab.data.natural import files_shape, stored_shape

    shape = check_shape(input_shape) if input_shape is not None else files_shape(source)
    policy = Resize.parse(resize)
    check_fraction("val_split", val_split)
    check_fraction("test_split", test_split)
    raw = read_source(source, shape or (1, 1, 1), policy.value, cache_dir=cache_dir, progress=progress,
                      download=download)
    shape = shape or stored_shape(raw)
    if strict and raw.skipped:
        listed = "; ".join(f"{p}: {r}" for p, r in raw.skipped[:10])
        more = f" (and {len(raw.skipped) - 10} more)" if len(raw.skipped) > 10 else ""
        raise DataError(f"{len(raw.skipped)} file(s) could not be read and --strict is on: {listed}{more}; "
                        "fix or remove them, or drop --strict to skip them")
    if not raw.shaped:
        _conform_splits(raw, shape, policy.value, cache_dir, progress)
    return raw, shape, policy


def _split_args(raw: RawData, val_split: float, test_split: float, seed: int) -> dict[str, Any]:
    """The bundled sample is always split 80/10/10 with its own seed; every other source as asked."""
    if raw.source == "sample":
        return {"val_split": SAMPLE_SPLIT[0], "test_split": SAMPLE_SPLIT[1], "seed": SAMPLE_SEED}
    return {"val_split": val_split, "test_split": test_split, "seed": seed}


def _conform_splits(raw: RawData, shape: tuple[int, int, int], resize: str,
                    cache_dir: str | os.PathLike[str] | bool | None, progress: bool | ProgressFn | None) -> None:
    """Resize array sources (IDX, CIFAR) to ``shape`` once; the result is cached beside decoded folders."""
    from cnnlab.data.cache import cached_array

    cache = cache_dir if isinstance(cache_dir, bool) or cache_dir is None else Path(cache_dir)
    for name, split in raw.splits.items():
        if tuple(split.images.shape[1:]) == shape:
            continue
        images = split.images

        def build(images: object = images) -> np.ndarray:
            return conform(np.asarray(images), shape, resize, progress)

        if split.files and tuple(split.images.shape[2:]) != shape[1:]:  # a real resize: worth caching
            split.images = cached_array(split.files, f"conform:{name}", shape, resize, cache, build)
        else:  # channels only: cheap
            split.images = build()
    raw.shaped = True


def check_shape(input_shape: tuple[int, int, int] | list[int]) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise DataError(f"input_shape must be (channels, height, width), got {input_shape!r}") from None
    if c not in (1, 3) or h < 1 or w < 1:
        raise DataError(f"input_shape {tuple(input_shape)} is not usable for images: channels must be 1 or 3, height and width at least 1")
    return c, h, w


def read_source(source: str | os.PathLike[str], shape: tuple[int, int, int], resize: str, *,
                cache_dir: str | os.PathLike[str] | bool | None, progress: bool | ProgressFn | None,
                download: bool) -> RawData:
    """Pick the reader for ``source`` by what it names and return its :class:`RawData`."""
    from cnnlab.data import named

    text = os.fspath(source)
    path = Path(text).expanduser()
    cache = cache_dir if isinstance(cache_dir, bool) or cache_dir is None else Path(cache_dir)
    if text.strip().lower() == "sample" and not path.exists():
        from cnnlab.data.idx_source import load_sample

        return load_sample(named.sample_folder())
    ds = named.lookup(text) if not path.exists() else None
    if ds is not None:
        from cnnlab.data.named_source import load_named

        return load_named(ds, download=download, progress=progress)
    if not path.exists():
        if os.sep in text or "." in Path(text).name:
            raise DataError(f"data path '{text}' does not exist{missing_path_hint(text)}; check the spelling or give a dataset name ({', '.join(named.ALL_NAMES)})")
        raise named.unknown_source(text)
    return _read_path(path, shape, resize, cache, progress)


def _read_path(path: Path, shape: tuple[int, int, int], resize: str, cache: Path | bool | None,
               progress: bool | ProgressFn | None) -> RawData:
    from cnnlab.data import idx, idx_source

    if path.is_file():
        name = path.name.lower()
        if name.endswith((".csv", ".tsv")):
            from cnnlab.data.csv_source import load_csv

            return load_csv(path, shape, resize, cache_dir=cache, progress=progress)
        if "idx3" in name:
            return idx_source.load_idx_files(path)
        from cnnlab.data.cifar import is_cifar_file, load_cifar_path

        if is_cifar_file(path):
            return load_cifar_path(path)
        raise DataError(f"'{path}' is a file, expected a folder of class sub-folders, IDX/CIFAR files or a .csv of path,label")
    if idx.find_idx_pairs(path):
        return idx_source.load_idx_folder(path, str(path))
    from cnnlab.data.cifar import find_cifar, load_cifar_path

    if find_cifar(path) is not None:
        return load_cifar_path(path)
    from cnnlab.data.folder_source import load_folder

    return load_folder(path, shape, resize, cache_dir=cache, progress=progress)


def assign_splits(raw: RawData, *, val_split: float, test_split: float, seed: int,
                  only: str | None = None, rows_cache: Path | bool | None = False) -> dict[str, RawSplit]:
    """``train``/``val``/``test`` from what the source gave, splitting stratified where needed.

    ``only``: take just that split (the same rows as without it); the others are not read.
    ``rows_cache``: where the val/test rows gathered from a lazily read file (IDX) are kept
    (``cache.cached_array``; ``None``: the default cache folder; ``False``: not kept).
    """
    given = dict(raw.splits)
    pool_name = "all" if "all" in given else "train"
    pool = given.pop(pool_name)
    need_val = "val" not in given
    need_test = "test" not in given and test_split > 0
    if not len(pool.labels):
        raise DataError(f"{raw.description}: no readable training images ({len(raw.skipped)} skipped)")
    tr, va, te = stratified_split(pool.labels, val=val_split if need_val else 0.0,
                                  test=test_split if need_test else 0.0, seed=seed)
    wanted = ("train", "val", "test") if only is None else (only,)
    out: dict[str, RawSplit] = {}
    if "val" in wanted:
        out["val"] = _take(pool, va, rows_cache, "val") if need_val else given["val"]
    if "test" in wanted:
        if need_test:
            out["test"] = _take(pool, te, rows_cache, "test")
        elif "test" in given:
            out["test"] = given["test"]
    if "train" in wanted:
        out["train"] = _take_last(pool, tr)  # after val/test were copied out: may reuse the pool's memory
    return {k: _materialise(out[k]) for k in ("train", "val", "test") if k in out}


def _materialise(split: RawSplit) -> RawSplit:
    """Read a lazily loaded split (IDX) into an array."""
    if not isinstance(split.images, np.ndarray):
        split.images = np.asarray(split.images)
    return split


def _take(split: RawSplit, index: np.ndarray, rows_cache: Path | bool | None = False, tag: str = "") -> RawSplit:
    if len(index) == len(split.labels):
        return split
    rows = index.tolist()
    hashes = [split.hashes[i] for i in rows] if split.hashes else None
    return RawSplit(_rows(split, index, rows_cache, tag), split.labels[index], [split.sources[i] for i in rows], hashes)


def _rows(split: RawSplit, index: np.ndarray, rows_cache: Path | bool | None, tag: str) -> np.ndarray:
    """``split.images[index]``; for a lazily read file (IDX: a pass over the whole gzip file), kept in the
    decoded-image cache under the file (path, size, mtime) and a SHA-256 of the row numbers."""
    images = split.images
    if rows_cache is False or isinstance(images, np.ndarray) or not split.files:
        return images[index]
    import hashlib

    from cnnlab.data.cache import cached_array

    shape = tuple(int(v) for v in images.shape[1:])
    digest = hashlib.sha256(np.ascontiguousarray(index, dtype=np.int64).tobytes()).hexdigest()
    return cached_array(list(split.files), f"rows:{tag}:{len(index)}:{digest}", (shape[0], shape[1], shape[2]),
                        "rows", rows_cache, lambda: images[index])


def _take_last(split: RawSplit, index: np.ndarray) -> RawSplit:
    """``_take`` that compacts the kept rows inside the pool's own array when it may be written.

    ``index`` is sorted, so row ``j`` of the result comes from a row ``>= j``: copying forward
    in blocks never overwrites a row still to be read. Saves a second copy of the training set.
    """
    images = split.images
    if (len(index) == len(split.labels) or not isinstance(images, np.ndarray) or not images.flags.writeable
            or isinstance(images, np.memmap)):
        return _take(split, index)
    step = 4096
    for j in range(0, len(index), step):
        rows = index[j:j + step]
        images[j:j + len(rows)] = images[rows]  # the right side is gathered before the write
    rows_list = index.tolist()
    hashes = [split.hashes[i] for i in rows_list] if split.hashes else None
    return RawSplit(images[:len(index)], split.labels[index], [split.sources[i] for i in rows_list], hashes)


def find_duplicates(splits: dict[str, RawSplit]) -> list[list[tuple[str, str]]]:
    """Groups of ``(split, source)`` with the same file content that span two or more splits."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for name, split in splits.items():
        for h, src in zip(split.hashes or [], split.sources, strict=False):
            if h:
                seen.setdefault(h, []).append((name, src))
    return [group for group in seen.values() if len({s for s, _ in group}) > 1]


def duplicate_warning(groups: list[list[tuple[str, str]]]) -> list[str]:
    return [duplicate_text(groups)] if groups else []


def duplicate_text(groups: list[list[tuple[str, str]]]) -> str:
    """The warning for identical images found in two or more splits."""
    first = groups[0]
    other = next(((s, p) for s, p in first if s != first[0][0]), first[-1])
    example = f"{first[0][0]}:{first[0][1]} = {other[0]}:{other[1]}"
    return (f"{len(groups)} image(s) have an identical copy in another split (e.g. {example}); "
            "remove them from one split, or validation accuracy is inflated")


def _to_imageset(split: RawSplit, classes: list[str], shape: tuple[int, int, int], policy: Resize, shaped: bool) -> ImageSet:
    images = split.images if shaped else conform(np.asarray(split.images), shape, policy)
    return ImageSet(images, split.labels, list(classes), split.sources)


def class_warnings(bundle: DataBundle) -> list[str]:
    """Imbalance and tiny-class warnings on the training split."""
    counts = bundle.train.counts()
    out = [f"class '{c}' has only {n} training image(s); expect poor accuracy on it" for c, n in counts.items() if n < FEW_IMAGES]
    nonzero = [n for n in counts.values() if n]
    if nonzero and max(nonzero) >= 3 * min(nonzero):
        big = max(counts, key=lambda k: counts[k])
        small = min(counts, key=lambda k: counts[k] or 10**12)
        out.append(f"classes are imbalanced: '{big}' has {counts[big]:,} training images, '{small}' has {counts[small]:,} "
                   f"({counts[big] / max(counts[small], 1):.1f}x); accuracy can hide poor recall on small classes")
    if len(bundle.val) == 0:
        out.append("the validation split is empty; give more images or a larger val_split")
    return out


def native_shape(source: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """The typical ``(C, H, W)`` of any source: file headers for folders and CSVs, the stored arrays
    for IDX, CIFAR and named sets (read from disk only: never downloads)."""
    from cnnlab.data.natural import files_shape, stored_shape

    found = files_shape(source)
    if found is not None:
        return found
    raw = read_source(source, (1, 1, 1), "crop", cache_dir=None, progress=False, download=False)
    return stored_shape(raw)
