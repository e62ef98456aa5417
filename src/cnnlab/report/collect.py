"""Compute everything the report shows (``ReportData``) from a loaded run and an image set.

``collect_report(run, images, lang=...)`` evaluates the model on ``images`` (usually the validation
split), draws the pictures and fills the tables; ``render.render_html`` only formats the result. The
pictures that need no model are drawn in a forked process meanwhile (``concurrent``; same bytes).
With ``cache=`` the model's results (log-probabilities and pictures) are kept in that file and, while
nothing they depend on changes, read back instead (``report.cache``; same page): ``run`` may then be
a ``RunInfo`` (no model), and ``model_run()`` loads the model only on a miss.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from cnnlab.analysis.render import explanation, human_count, rf_text, shape_text, totals_lines
from cnnlab.i18n import integer, percent, tr
from cnnlab.report.types import Evaluation, Item, LayerRow, ReportData

if TYPE_CHECKING:
    from cnnlab.analysis.types import Analysis, LayerAnalysis
    from cnnlab.inference.evaluation import EvalResult
    from cnnlab.report.cache import Kept


def collect_report(run: Any, images: Any | None, *, lang: str = "en", data_label: str = "",
                   notes: list[str] | None = None, split: str = "val",
                   cache: str | os.PathLike[str] | None = None,
                   model_run: Callable[[], Any] | None = None) -> ReportData:
    """Everything for the page. ``images``: an ``ImageSet`` (or ``None``: the evaluation sections are
    left out and ``notes`` says why). ``cache``: a ``report.cache`` file for a ``run`` read from its
    folder (``run.path``, ``run.which``); ``model_run()``: the run with its model, when ``run`` has none."""
    from cnnlab import __version__
    from cnnlab.analysis import analyze

    analysis = analyze(run.spec, lang=lang)
    images = _writable(images)
    entry = _cache_entry(run, images, lang) if cache is not None else None
    kept = _load_kept(cache, entry)
    if kept is not None:
        res = _result_of_kept(run, images, kept)
    else:
        res, kept = _compute(model_run() if model_run is not None else run, images, analysis, lang)
        if entry is not None:
            _save_kept(cache, entry, kept)
    report = ReportData(
        lang=lang,
        title=str(run.spec.name),
        subtitle=str(getattr(run.spec, "description", "") or ""),
        run_path=str(run.path),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        headline=_headline(run, analysis, res, lang, split),
        layers=[_row(la) for la in analysis.layers],
        totals=[Item(label, value) for label, value in totals_lines(analysis)],
        total_params=analysis.total_params,
        input_shape=shape_text(tuple(analysis.input_shape)),
        config=_config_items(run),
        data=_data_items(run, lang),
        epochs=list(run.metrics),
        notes=list(notes or []),
        warnings=list(analysis.warnings),
    )
    if res is not None:
        report.evaluation = Evaluation(
            description=data_label or tr("report.eval.default_label", lang, n=res.n),
            n=res.n, accuracy=res.accuracy, loss=res.loss, top_k=dict(res.top_k),
            per_class=list(res.per_class), most_confused=res.most_confused(5),
        )
    pics = kept.pictures
    report.curves, report.filters = pics.get("curves"), list(pics.get("filters", []))
    report.confusion, report.mistakes = pics.get("confusion"), pics.get("mistakes")
    report.maps, report.cams = pics.get("maps"), pics.get("cams")
    return report


def _compute(run: Any, images: Any, analysis: Analysis, lang: str) -> tuple[EvalResult | None, Kept]:
    """Evaluate ``run`` (with its model) on ``images`` and draw every picture: the model-free ones in a
    forked child (``concurrent``) while this process draws the filters, feature maps and Grad-CAM."""
    from cnnlab.report import figures
    from cnnlab.report.cache import Kept
    from cnnlab.report.concurrent import in_background

    res = _evaluate(run, images) if images is not None else None
    figures.preload()  # before the fork: the child inherits matplotlib instead of importing it again
    side = in_background(_plain_pictures(run, images, res, lang))  # another core draws these meanwhile
    pictures: dict[str, Any] = {}
    pictures["filters"] = figures.filter_pictures(run.model, analysis, lang) if analysis.conv_layers else []
    if res is not None and images is not None:
        chosen = figures.cam_examples(res)
        spatial = [row.index for row in analysis.layers if row.kind in ("conv", "pool", "residual")]
        if chosen and spatial:
            pictures["maps"] = figures.maps_picture(run, images.images, chosen[0], analysis, lang)
        if chosen and analysis.conv_layers:
            pictures["cams"] = figures.cam_picture(run, images.images, res, chosen, lang)
    pictures.update(side.results())
    return res, Kept(res.log_probabilities if res is not None else None, pictures)


def _plain_pictures(run: Any, images: Any, res: EvalResult | None, lang: str) -> dict[str, Callable[[], Any]]:
    """The pictures that need no model (curves; confusion and mistakes when there is an evaluation)."""
    from cnnlab.report import figures

    jobs: dict[str, Callable[[], Any]] = {"curves": lambda: figures.curves_picture(run.metrics, lang)}
    if res is not None and images is not None:
        jobs["confusion"] = lambda: figures.confusion_picture(res, lang)
        jobs["mistakes"] = lambda: figures.mistakes_picture(images.images, res, lang)
    return jobs


def _writable(images: Any) -> Any:
    """An in-memory copy of a read-only (memmap) image set: torch warns about tensors over read-only
    arrays, and the report's set is small (at most 10,000 images)."""
    if images is None or getattr(images.images, "flags", None) is None or images.images.flags.writeable:
        return images
    import dataclasses

    import numpy as np

    return dataclasses.replace(images, images=np.array(images.images))


def _evaluate(run: Any, images: Any) -> EvalResult:
    from cnnlab.inference.evaluation import evaluate

    batch, engine = _eval_settings(run)
    cache = None
    if getattr(run, "path", None):  # the run folder keeps the predictions for the next report of the same weights
        from cnnlab.train.run import cache_file

        cache = cache_file(run.path, f"report-eval-{getattr(run, 'which', 'best')}.npz")
    return evaluate(run, images, batch_size=batch, cache=cache, engine=engine)


def _eval_settings(run: Any) -> tuple[int, str]:
    """(batch size, engine choice) of the report's evaluation."""
    from cnnlab.data.defaults import EVAL_BATCH_SIZE

    return int(getattr(run.config, "eval_batch_size", EVAL_BATCH_SIZE) or EVAL_BATCH_SIZE), "auto"


class _Entry(NamedTuple):
    """A run's results in the cache: their ``key``, their size, and the checkpoint (path, SHA-256) it names."""

    key: str
    n: int
    k: int
    weights_file: str
    weights: str


def _cache_entry(run: Any, images: Any, lang: str) -> _Entry | None:
    """The cache key of ``run`` on ``images`` in ``lang`` (``None`` for a run not read from a folder, or
    when a file of it went missing meanwhile: then loading the model says what is wrong)."""
    if not getattr(run, "path", None):
        return None
    from cnnlab.report import cache as report_cache

    weights_file = os.path.join(run.path, "checkpoints", f"{getattr(run, 'which', 'best')}.safetensors")
    try:
        weights = report_cache.weights_digest(weights_file)
        key = report_cache.cache_key(run, weights, images, lang, *_eval_settings(run))
    except OSError:
        return None
    n, k = (len(images.labels), len(run.classes)) if images is not None else (0, 0)
    return _Entry(key, n, k, weights_file, weights)


def _load_kept(cache: Any, entry: _Entry | None) -> Kept | None:
    if cache is None or entry is None:
        return None
    from cnnlab.report import cache as report_cache

    return report_cache.load(cache, entry.key, entry.n, entry.k)


def _result_of_kept(run: Any, images: Any, kept: Kept) -> EvalResult | None:
    """The evaluation result of the kept log-probabilities (``None`` when the report had no images)."""
    if kept.logp is None or images is None:
        return None
    from cnnlab.inference.evaluation import result_for

    return result_for(images, run.classes, kept.logp)


def _save_kept(cache: Any, entry: _Entry, kept: Kept) -> None:
    """Keep the results, unless the checkpoint changed while they were computed (they could then be of
    other weights than the key names)."""
    from cnnlab.report import cache as report_cache

    try:
        unchanged = report_cache.weights_digest(entry.weights_file) == entry.weights
    except OSError:
        unchanged = False
    if unchanged:
        report_cache.save(cache, entry.key, kept)


def _row(la: LayerAnalysis) -> LayerRow:
    return LayerRow(
        index=la.index, kind=str(la.kind), title=la.title, output=shape_text(tuple(la.output_shape)),
        params=la.params, macs=la.macs, receptive_field=rf_text(la),
        explanation=[line for line in explanation(la).split("\n") if line],
        children=[_row(child) for child in la.children],
    )


def _headline(run: Any, analysis: Analysis, res: EvalResult | None, lang: str, split: str = "val") -> list[Item]:
    metrics = list(run.metrics)
    best = max(metrics, key=lambda m: _num(m.get("val_acc"), -1.0)) if metrics else {}
    items = []
    if res is not None:  # named after the images it was measured on: a test accuracy is not a validation one
        title = tr("report.card.accuracy", lang) if split == "val" else tr(f"report.card.accuracy_{split}", lang)
        items.append(Item(title, percent(res.accuracy, lang),
                          tr("report.card.accuracy_hint", lang, n=integer(res.n, lang))))
    if (res is None or split != "val") and best.get("val_acc") is not None:
        items.append(Item(tr("report.card.best_val", lang), percent(_num(best["val_acc"]), lang),
                          tr("report.card.epoch_hint", lang, epoch=best.get("epoch", "?"))))
    planned = getattr(run.config, "epochs", None)
    done = len(metrics)
    items.append(Item(tr("report.card.epochs", lang), f"{done}" + (f" / {planned}" if planned else ""),
                      tr("report.card.state", lang, state=_state(run.status.get("state", "?"), lang))))
    macs = human_count(analysis.total_macs)
    items.append(Item(tr("report.card.params", lang), integer(analysis.total_params, lang),
                      tr("report.card.macs", lang, macs=macs.replace(".", ",") if lang == "pt" else macs)))
    times = [_num(m.get("epoch_time_s")) for m in metrics if m.get("epoch_time_s") is not None]
    if times:
        speed = [_num(m.get("images_per_s")) for m in metrics if m.get("images_per_s")]
        hint = tr("report.card.speed", lang, speed=integer(round(statistics.median(speed)), lang)) if speed else ""
        items.append(Item(tr("report.card.time", lang), _duration(sum(times)), hint))
    return items


def _state(state: str, lang: str) -> str:
    key = f"report.state.{state}"
    text = tr(key, lang)
    return state if text == key else text


def _config_items(run: Any) -> list[Item]:
    config = run.config.to_dict() if hasattr(run.config, "to_dict") else dict(run.config or {})
    return [Item(str(k), _plain(v)) for k, v in config.items()]


def _data_items(run: Any, lang: str) -> list[Item]:
    data = dict(run.data or {})
    keys = ("source", "description", "input_shape", "resize", "counts", "mean", "std", "skipped")
    out = [Item(tr(f"report.data.{k}", lang), _plain(data[k])) for k in keys if k in data]
    out.append(Item(tr("report.data.classes", lang), _plain(list(run.classes))))
    return out


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        shown = [_plain(v) for v in value[:20]]
        return ", ".join(shown) + (f", … ({len(value)})" if len(value) > 20 else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "value", value))


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else (f"{minutes} min {sec:02d} s" if minutes else f"{sec} s")
