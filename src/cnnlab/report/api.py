"""``write_report``: the self-contained HTML report of a run folder, written atomically.

>>> from cnnlab.report import write_report            # doctest: +SKIP
>>> write_report("runs/lenet5")                       # doctest: +SKIP
PosixPath('runs/lenet5/report.html')
>>> write_report("runs/lenet5", lang="pt", out="relatorio.html")   # doctest: +SKIP

The run must not be training (``status.json`` state ``running``) unless ``force=True``. Without
``data`` the validation split is reloaded from the run's own data source (``data.json``), with the
training's ``val_split`` and ``seed``, so it is the exact split the run was validated on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError, RunError
from cnnlab.i18n import resolve_lang, tr
from cnnlab.utils.io import atomic_path

REPORT_NAME = "report.html"


def write_report(
    run_or_path: Any,
    *,
    data: Any = None,
    lang: str | None = "en",
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    which: str = "best",
    data_label: str = "",
    split: str | None = None,
) -> Path:
    """Write the report of a run (a ``Run`` or its folder) and return the path (default ``RUN/report.html``).

    ``data``: an ``ImageSet`` for the evaluation sections (confusion, Grad-CAM, mistakes), or a
    ``DataBundle`` (its validation split is used). Nothing is written unless the whole page rendered.
    A run given as a folder (or a ``RunInfo``) keeps its model's results in ``RUN/cache/`` (``report.cache``):
    the next report of the same checkpoint, images and language reads them instead of loading the model.
    ``split`` names what ``data`` is, for the headline card: ``val``, ``test``, ``train`` or ``other``
    (default: ``val`` for the run's own validation split or a ``DataBundle``, else ``other``).
    """
    from cnnlab.report.collect import collect_report
    from cnnlab.report.render import render_html

    lang = resolve_lang(lang)
    run = _load(run_or_path, which, force)
    target = Path(out) if out is not None else Path(run.path) / REPORT_NAME
    if target.suffix.lower() not in (".html", ".htm"):
        raise CnnlabError(f"report file {str(target)!r} must end in .html; e.g. --out {target.with_suffix('.html')}")
    notes: list[str] = []
    images, label = _images(run, data, lang, notes)
    if split is None:
        split = "val" if data is None or hasattr(data, "val") else "other"
    cache, model_run = None, None
    if not hasattr(run, "model"):  # a RunInfo, read from its folder: the model's results may be kept there
        from cnnlab.report.cache import file_name
        from cnnlab.train.run import cache_file

        cache = cache_file(run.path, file_name(run.which, lang))
        model_run = _model_loader(run.path, run.which)
    report = collect_report(run, images, lang=lang, data_label=data_label or label, notes=notes, split=split,
                            cache=cache, model_run=model_run)
    html = render_html(report)
    write_public(target, html.encode("utf-8"))
    return target


def _load(run_or_path: Any, which: str, force: bool) -> Any:
    """A given ``Run`` or ``RunInfo`` as it is; for a folder, its ``RunInfo`` (no model: a cached report
    needs none; ``collect_report`` loads it when it does)."""
    if isinstance(run_or_path, (str, os.PathLike)):
        path = Path(run_or_path)
        check_not_running(path, force)
        from cnnlab.train.run import read_run_info

        return read_run_info(path, which)
    check_not_running(Path(run_or_path.path), force, status=getattr(run_or_path, "status", None))
    return run_or_path


def _model_loader(path: Path, which: str) -> Any:
    def load() -> Any:
        from cnnlab.train import run

        return run.load_run(path, which)

    return load


def check_not_running(path: Path, force: bool = False, status: dict[str, Any] | None = None) -> None:
    """Refuse a run whose ``status.json`` says ``running`` (unless ``force``), saying whether its process lives."""
    if force:
        return
    if status is None:
        try:
            status = json.loads((path / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # no status: an old or hand-made run folder; load_run checks the rest
    if not isinstance(status, dict) or status.get("state") != "running":
        return
    pid = status.get("pid")
    alive = _pid_alive(pid)
    where = f"epoch {status.get('epoch', '?')}"
    if alive:
        raise RunError(f"run {str(path)!r} is still training ({where}, process {pid}); wait until it finishes "
                       "(the report is written automatically at the end), or pass --force to report the "
                       "checkpoint as it is now")
    raise RunError(f"run {str(path)!r} says it is training ({where}) but its process {pid} is gone: the training "
                   f"probably crashed; continue it with `cnnlab train {path} --resume`, or pass --force to "
                   "report the last checkpoint")


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _images(run: Any, data: Any, lang: str, notes: list[str]) -> tuple[Any, str]:
    """The image set to evaluate on and how to name it; ``(None, "")`` with a note when there is none."""
    if data is not None:
        images = getattr(data, "val", data)  # a DataBundle gives its validation split
        return images, ""
    from cnnlab.inference.dataset import validation_split

    try:
        images, label = validation_split(run, lang)
    except (CnnlabError, OSError) as exc:
        notes.append(tr("report.note.no_data", lang, reason=str(exc), path=str(run.path)))
        return None, ""
    return images, label


def write_public(target: Path, payload: bytes) -> None:
    """Atomic write, then the usual ``rw-r--r--`` permissions (minus the umask) instead of mkstemp's 0600."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
