"""The one home for "which images does a run get evaluated on": reload a split of the run's data
exactly as training made it (``data.json`` + ``config.yaml``), or of another source.

>>> from cnnlab.train import load_run                  # doctest: +SKIP
>>> images, label = validation_split(load_run("runs/lenet5"), "en")   # doctest: +SKIP
>>> label                                              # doctest: +SKIP
'validation split of sample (1,000 images)'
"""

from __future__ import annotations

from typing import Any

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
    if len(images.labels) < total:
        label += " " + tr("report.eval.first_of", lang, total=integer(total, lang))
    return images, label


def resolve_split(run: Any, source: str | None, split: str, *, progress: bool = False) -> tuple[Any, str, str]:
    """``(ImageSet, source, split)`` with ``auto`` resolved (see :func:`evaluation_set`)."""
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
    bundle = load_data(str(source), tuple(run.input_shape), val_split=float(getattr(cfg, "val_split", 0.1)),
                       seed=int(getattr(cfg, "seed", 0)), resize=run.resize, progress=progress)
    if split == "auto":
        split = "test" if bundle.test is not None and len(bundle.test.labels) else ("val" if source == own else "all")
    images = join(bundle.train, bundle.val) if split == "all" else getattr(bundle, split)
    if images is None or len(images.labels) == 0:
        have = [s for s in ("train", "val", "test") if getattr(bundle, s) is not None and len(getattr(bundle, s).labels)]
        raise DataError(f"data source {source!r} has no {split} split; use --split {' or '.join(have + ['all'])}")
    return images, str(source), split


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
