"""Compute everything the report shows (``ReportData``) from a loaded run and an image set.

``collect_report(run, images, lang=...)`` evaluates the model on ``images`` (usually the validation
split), draws the pictures and fills the tables; ``render.render_html`` only formats the result. The
pictures that need no model are drawn in a forked process meanwhile (``concurrent``; same bytes).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnlab.analysis.render import explanation, human_count, rf_text, shape_text, totals_lines
from cnnlab.i18n import integer, percent, tr
from cnnlab.report import figures
from cnnlab.report.concurrent import in_background
from cnnlab.report.types import Evaluation, Item, LayerRow, ReportData

if TYPE_CHECKING:
    from cnnlab.analysis.types import Analysis, LayerAnalysis
    from cnnlab.inference.evaluation import EvalResult


def collect_report(run: Any, images: Any | None, *, lang: str = "en", data_label: str = "",
                   notes: list[str] | None = None, split: str = "val") -> ReportData:
    """Everything for the page. ``images``: an ``ImageSet`` (or ``None``: the evaluation sections are
    left out and ``notes`` says why)."""
    from cnnlab import __version__
    from cnnlab.analysis import analyze

    analysis = analyze(run.spec, lang=lang)
    images = _writable(images)
    res = _evaluate(run, images) if images is not None else None
    side = in_background(_plain_pictures(run, images, res, lang))  # another core draws these meanwhile
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
    report.filters = figures.filter_pictures(run.model, analysis, lang) if analysis.conv_layers else []
    if res is not None and images is not None:
        _add_evaluation(report, run, images, res, analysis, data_label, lang)
    drawn = side.results()
    report.curves = drawn["curves"]
    if "confusion" in drawn:
        report.confusion, report.mistakes = drawn["confusion"], drawn["mistakes"]
    return report


def _plain_pictures(run: Any, images: Any, res: EvalResult | None, lang: str) -> dict[str, Callable[[], Any]]:
    """The pictures that need no model (curves; confusion and mistakes when there is an evaluation)."""
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
    from cnnlab.data.defaults import EVAL_BATCH_SIZE
    from cnnlab.inference.evaluation import evaluate

    batch = int(getattr(run.config, "eval_batch_size", EVAL_BATCH_SIZE) or EVAL_BATCH_SIZE)
    cache = None
    if getattr(run, "path", None):  # the run folder keeps the predictions for the next report of the same weights
        from cnnlab.train.run import cache_file

        cache = cache_file(run.path, f"report-eval-{getattr(run, 'which', 'best')}.npz")
    return evaluate(run, images, batch_size=batch, cache=cache)


def _add_evaluation(report: ReportData, run: Any, images: Any, res: EvalResult, analysis: Analysis,
                    data_label: str, lang: str) -> None:
    pixels = images.images
    report.evaluation = Evaluation(
        description=data_label or tr("report.eval.default_label", lang, n=res.n),
        n=res.n, accuracy=res.accuracy, loss=res.loss, top_k=dict(res.top_k),
        per_class=list(res.per_class), most_confused=res.most_confused(5),
    )
    chosen = figures.cam_examples(res)
    spatial = [row.index for row in analysis.layers if row.kind in ("conv", "pool", "residual")]
    if chosen and spatial:
        report.maps = figures.maps_picture(run, pixels, chosen[0], analysis, lang)
    if chosen and analysis.conv_layers:
        report.cams = figures.cam_picture(run, pixels, res, chosen, lang)


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
