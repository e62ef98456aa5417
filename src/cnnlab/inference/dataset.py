"""The one home for "which images does a run get evaluated on": reload a split of the run's data
exactly as training made it (``data.json`` + ``config.yaml``), or of another source.

>>> from cnnlab.train import load_run                  # doctest: +SKIP
>>> images, label = validation_split(load_run("runs/lenet5"), "en")   # doctest: +SKIP
>>> label                                              # doctest: +SKIP
'validation split of sample (1,000 images)'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data import defaults
from cnnlab.errors import DataError
from cnnlab.i18n import integer, tr

MAX_IMAGES = 10_000  # enough for a stable confusion matrix; keeps report generation fast


SPLITS = ("auto", "val", "test", "train", "all")


def validation_split(run: Any, lang: str, max_images: int = MAX_IMAGES) -> tuple[Any, str]:
    """``(ImageSet, label)``: the run's validation split (``max_images`` evenly spaced ones if larger)."""
    return evaluation_set(run, None, "val", lang, max_images)


def evaluation_set(run: Any, source: str | None, split: str, lang: str,
                   max_images: int | None = MAX_IMAGES, progress: bool = False) -> tuple[Any, str]:
    """``(ImageSet, label)``: ``split`` of ``source`` (default: the run's own data source), loaded and
    split the way training did (same ``val_split``, ``seed`` and ``resize``).

    ``auto``: the test split when the source has one; else, for the run's own source, the held-out
    validation split; for any other source (never seen in training), all of it. ``all`` = train + val.
    """
    resolved = resolve_split(run, source, split, progress=progress)
    images, source, split = resolved
    total = len(images.labels)
    if max_images is not None and total > max_images:
        images = subset(images, max_images)
    key = split if split in ("val", "test", "train") else "all"
    label = tr(f"report.eval.{key}_label", lang, source=str(source), n=integer(len(images.labels), lang))
    if key == "all" and training_overlap(run, images):
        label += " " + tr("report.eval.includes_training", lang, n=integer(training_overlap(run, images), lang))
    if len(images.labels) < total:
        label += " " + tr("report.eval.first_of", lang, total=integer(total, lang))
    return images, label


def resolve_split(run: Any, source: str | None, split: str, *, progress: bool = False) -> tuple[Any, str, str]:
    """``(ImageSet, source, split)`` with ``auto`` resolved (see :func:`evaluation_set`).

    The run's own data is recognised by content (``RUN/identity.json``), however its path is spelled;
    a split that holds images the run trained on is refused unless ``train`` or ``all`` was asked for
    explicitly, and a reloaded validation split must match the one recorded at training time.
    """
    from cnnlab.data import load_data

    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    own = dict(run.data or {}).get("source")
    if source is None:
        source = own
        if not isinstance(source, str) or not source or source == "in-memory":
            raise DataError(f"{getattr(run, 'path', 'the run')}/data.json names no loadable data source "
                            "(it was trained on data passed in memory); pass --data SOURCE")
    cfg = run.config
    how = {"val_split": float(getattr(cfg, "val_split", defaults.VAL_SPLIT)), "seed": int(getattr(cfg, "seed", defaults.SEED)),
           "resize": run.resize, "progress": progress}
    recorded = _recorded(run)
    if source == own and split in ("val", "test", "train"):
        # The run's own data and a named split: read only that split (no training statistics: the run
        # recorded its normalisation); the trust checks below are the same as on the full path.
        from cnnlab.data import load_split

        only = load_split(str(source), tuple(run.input_shape), split, **how)
        if only is not None and len(only.labels):
            if recorded is not None and split != "train":
                from cnnlab.train.identity import image_hashes

                hashes = image_hashes(only.images)  # once for both checks
                _refuse_training_images(run, recorded, only, str(source), split, hashes)
                if split == "val":
                    _check_recorded_val(run, recorded, only, str(source), hashes)
            return only, str(source), split
    bundle = load_data(str(source), tuple(run.input_shape), **how)
    same = source == own or (recorded is not None and _same_data(bundle, recorded))
    if split == "auto":
        split = "test" if bundle.test is not None and len(bundle.test.labels) else ("val" if same else "all")
        explicit = False
    else:
        explicit = split in ("train", "all")
    images = join(bundle.train, bundle.val) if split == "all" else getattr(bundle, split)
    if images is None or len(images.labels) == 0:
        have = [s for s in ("train", "val", "test") if getattr(bundle, s) is not None and len(getattr(bundle, s).labels)]
        raise DataError(f"data source {source!r} has no {split} split; use --split {' or '.join(have + ['all'])}")
    if recorded is not None and not explicit:
        _refuse_training_images(run, recorded, images, str(source), split)
        if same and split == "val":
            _check_recorded_val(run, recorded, images, str(source))
    return images, str(source), split


def training_overlap(run: Any, images: Any) -> int:
    """How many of ``images`` are, by content, images the run trained on (0 when the run has no record)."""
    recorded = _recorded(run)
    if recorded is None:
        return 0
    from cnnlab.train.identity import image_hashes

    return int(np.isin(image_hashes(images.images), recorded.train).sum())


def _recorded(run: Any) -> Any:
    from cnnlab.train.identity import read_identity

    path = getattr(run, "path", None)
    return read_identity(Path(path)) if path is not None and Path(path).is_dir() else None


def _same_data(bundle: Any, recorded: Any) -> bool:
    """True when ``bundle`` holds, by content, exactly the data the run was created from."""
    from cnnlab.train.identity import image_hashes

    n = recorded.record.get("split", {})
    if len(bundle.train.labels) != n.get("train_images") or len(bundle.val.labels) != n.get("val_images"):
        return False
    return bool(np.array_equal(np.sort(image_hashes(bundle.train.images)), np.sort(recorded.train)))


def _refuse_training_images(run: Any, recorded: Any, images: Any, source: str, split: str,
                            hashes: np.ndarray | None = None) -> None:
    from cnnlab.train.identity import image_hashes

    hashes = image_hashes(images.images) if hashes is None else hashes
    overlap = int(np.isin(hashes, recorded.train).sum())
    if overlap:
        raise DataError(
            f"{overlap} of {len(images.labels)} images of the {split} split of {source} are images the run "
            f"{getattr(run, 'path', '')} trained on (matched by content, whatever their path); a score on them "
            "is not held out. Evaluate the run's own held-out split (`--split val` on its data), remove those "
            "images, or pass `--split all` to score them knowingly (training images included)")


def _check_recorded_val(run: Any, recorded: Any, images: Any, source: str, hashes: np.ndarray | None = None) -> None:
    from cnnlab.train.identity import fingerprint, image_hashes

    hashes = image_hashes(images.images) if hashes is None else hashes
    if fingerprint(hashes, images.labels, list(images.classes)) != recorded.record["split"]["val"]:
        raise DataError(
            f"the validation split reloaded from {source} differs from the one recorded when "
            f"{getattr(run, 'path', 'the run')} was trained (the data changed since); it is not the run's held-out "
            "split. Restore the data as it was, or evaluate on other held-out data with --data")


def join(a: Any, b: Any) -> Any:
    """One ImageSet holding the images of ``a`` then ``b`` (same classes)."""
    import numpy as np

    from cnnlab.data import ImageSet

    return ImageSet(images=np.concatenate([a.images, b.images]), labels=np.concatenate([a.labels, b.labels]),
                    classes=list(a.classes), sources=list(a.sources) + list(b.sources))


def subset(images: Any, n: int) -> Any:
    """``n`` evenly spaced images of an ``ImageSet`` (representative even if the split is ordered by class)."""
    import dataclasses

    import numpy as np

    idx = np.linspace(0, len(images.labels) - 1, n).round().astype(np.int64)  # (n,) increasing, distinct
    return dataclasses.replace(images, images=np.asarray(images.images[idx]), labels=images.labels[idx],
                               sources=[images.sources[i] for i in idx])
