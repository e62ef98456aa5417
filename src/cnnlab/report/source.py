"""Reload the validation split a run was trained with, from its ``data.json`` and ``config.yaml``.

>>> from cnnlab.train import load_run                  # doctest: +SKIP
>>> images, label = validation_split(load_run("runs/lenet5"), "en")   # doctest: +SKIP
>>> label                                              # doctest: +SKIP
'validation split of sample (1,000 images)'
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import DataError
from cnnlab.i18n import tr
from cnnlab.report.fmt import integer

MAX_IMAGES = 10_000  # enough for a stable confusion matrix; keeps report generation fast


SPLITS = ("auto", "val", "test", "train")


def validation_split(run: Any, lang: str, max_images: int = MAX_IMAGES) -> tuple[Any, str]:
    """``(ImageSet, label)``: the run's validation split (``max_images`` evenly spaced ones if larger)."""
    return evaluation_set(run, None, "val", lang, max_images)


def evaluation_set(run: Any, source: str | None, split: str, lang: str,
                   max_images: int | None = MAX_IMAGES) -> tuple[Any, str]:
    """``(ImageSet, label)``: ``split`` of ``source`` (default: the run's own data source), loaded and
    split the way training did (same ``val_split``, ``seed`` and ``resize``). ``auto`` = test if any, else val."""
    from cnnlab.data import load_data

    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    if source is None:
        source = dict(run.data or {}).get("source")
        if not source or source == "in-memory":
            raise DataError("the run was trained on data passed in memory, so its source cannot be reloaded; "
                            "pass --data SOURCE")
    cfg = run.config
    bundle = load_data(str(source), tuple(run.input_shape), val_split=float(getattr(cfg, "val_split", 0.2)),
                       seed=int(getattr(cfg, "seed", 0)), resize=run.resize, progress=False)
    if split == "auto":
        split = "test" if bundle.test is not None and len(bundle.test.labels) else "val"
    images = getattr(bundle, split)
    if images is None or len(images.labels) == 0:
        have = [s for s in ("val", "test", "train") if getattr(bundle, s) is not None and len(getattr(bundle, s).labels)]
        raise DataError(f"data source {source!r} has no {split} split; use --split {' or '.join(have)}")
    total = len(images.labels)
    if max_images is not None and total > max_images:
        images = subset(images, max_images)
    label = tr(f"report.eval.{split}_label", lang, source=str(source), n=integer(len(images.labels), lang))
    if len(images.labels) < total:
        label += " " + tr("report.eval.first_of", lang, total=integer(total, lang))
    return images, label


def subset(images: Any, n: int) -> Any:
    """``n`` evenly spaced images of an ``ImageSet`` (representative even if the split is ordered by class)."""
    import dataclasses

    import numpy as np

    idx = np.linspace(0, len(images.labels) - 1, n).round().astype(np.int64)  # (n,) increasing, distinct
    return dataclasses.replace(images, images=np.asarray(images.images[idx]), labels=images.labels[idx],
                               sources=[images.sources[i] for i in idx])
