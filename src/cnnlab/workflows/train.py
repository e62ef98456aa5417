"""``cnnlab.train(...)``: train a spec into a run folder, then write its HTML report.

Training (``cnnlab.train.fit``) and the report (``cnnlab.report``) know nothing of each other; this
module runs one after the other.

>>> import cnnlab
>>> run = cnnlab.train("lenet5", "sample", epochs=1, out="runs/x")      # doctest: +SKIP
>>> run = cnnlab.train("runs/x", resume=True)                            # doctest: +SKIP
>>> run.metrics[-1]["val_acc"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.train.api import Fitted, fit
from cnnlab.train.config import TrainConfig
from cnnlab.train.progress import Progress, pick_mode
from cnnlab.train.run import Run, load_run


def train(spec: Any, data: Any = None, config: TrainConfig | None = None, *,
          out: str | os.PathLike[str] | None = None, resume: bool = False, quiet: bool = False,
          lang: str | None = None, report: bool = True, force: bool = False,
          on_epoch: Callable[[dict[str, Any]], None] | None = None, **overrides: Any) -> Run | None:
    """Train ``spec`` (a spec path, bundled name, dict or ``Spec``) on ``data`` and return the ``Run``.

    ``data``: a source for ``cnnlab.data.load_data`` (folder, ``mnist``, ``sample``...) or a
    ``DataBundle``. ``config`` plus keyword ``overrides`` (``epochs=3``) give the options.
    ``resume=True``: ``spec`` is a run folder to continue. ``report``: write ``RUN/report.html`` at
    the end. ``force``: skip the memory check. ``on_epoch(row)``: called after each epoch's metrics
    row (``cnnlab sweep`` prunes there). Returns ``None`` on ranks other than 0.
    """
    from cnnlab.train.identity import release_lock
    from cnnlab.utils.testpoints import point

    fitted = fit(spec, data, config, out=out, resume=resume, quiet=quiet, lang=lang, force=force, keep_lock=True,
                 on_epoch=on_epoch, **overrides)
    if not fitted.is_main:
        release_lock(fitted.run_dir.path)
        return None
    try:  # the report is written under the run's lock, taken by fit()
        if report and fitted.state in ("finished", "stopped_early"):
            point("report")
            write_run_report(fitted)
    finally:
        release_lock(fitted.run_dir.path)
    return load_run(fitted.run_dir.path, "best")


def write_run_report(fitted: Fitted) -> None:
    """The HTML report in the run's message language, evaluated on the validation split already in
    memory (``bundle.val``, evenly thinned to the report's limit) instead of loading the data again."""
    from cnnlab.i18n import integer, tr
    from cnnlab.inference.dataset import MAX_IMAGES, subset
    from cnnlab.report import write_report

    progress = Progress(pick_mode(fitted.quiet), fitted.lang)
    lang, bundle, path = fitted.lang, fitted.bundle, fitted.run_dir.path
    data, label = None, ""
    if bundle is not None and len(bundle.val):
        data = subset(bundle.val, MAX_IMAGES) if len(bundle.val) > MAX_IMAGES else bundle.val
        source = bundle.source or "in-memory data"
        label = tr("report.eval.val_label", lang, source=source, n=integer(len(data), lang))
        if len(data) < len(bundle.val):
            label += " " + tr("report.eval.first_of", lang, total=integer(len(bundle.val), lang))
    try:
        written = write_report(path, data=data, lang=lang, data_label=label, split="val")
    except CnnlabError as exc:  # the run itself is complete: keep it, say why there is no report
        progress.warn("train.no_report", reason=str(exc), path=path)
    else:
        progress.info("train.report", path=written)
    progress.close()
