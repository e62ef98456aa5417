"""Rendering for the using commands: rich tables, JSON and CSV on stdout (no computation here).

Each ``render_*`` takes the result object a library function returned (``EvalResult``,
``list[Prediction]``, ``ExportResult``, ``LRFindResult``) and an output format.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cnnlab.i18n import decimal, integer, percent, tr
from cnnlab.inference.messages import localize
from cnnlab.utils.paths import shorten_middle, shown

if TYPE_CHECKING:
    from cnnlab.inference.evaluation import EvalResult
    from cnnlab.inference.export_onnx import ExportResult
    from cnnlab.inference.prediction import Prediction
    from cnnlab.train.lr_find import LRFindResult

MAX_CONFUSION_CLASSES = 20  # wider matrices do not fit a terminal; JSON always has the full matrix


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)  # plain lines: never hard-wrapped mid-number


def _pct(value: float, lang: str = "en") -> str:
    return percent(value, lang)


def _json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- evaluate


def render_evaluation(res: EvalResult, meta: dict[str, Any], fmt: str, *, lang: str = "en",
                      worst: int = 10, confused: int = 10) -> None:
    if fmt == "json":
        _json({**meta, **res.to_dict(top_losses=worst, confused=confused)})
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for row in res.per_class:
            writer.writerow([row["name"], f"{row['precision']:.6f}", f"{row['recall']:.6f}",
                             f"{row['f1']:.6f}", row["support"]])
        return
    con = _console()
    con.print(tr("use.eval.header", lang, run=meta["run"], checkpoint=meta["checkpoint"], data=meta["data"],
                 split=meta["split"], n=integer(res.n, lang)))
    tops = "  ".join(f"top-{k} {_pct(v, lang)}" for k, v in sorted(res.top_k.items()) if k > 1)
    con.print(tr("use.eval.summary", lang, accuracy=_pct(res.accuracy, lang), loss=decimal(res.loss, lang, 4)) + ("  " + tops if tops else ""))
    con.print(_per_class_table(res, lang))
    from cnnlab.inference.evaluation import absent_classes

    if absent_classes(res.per_class):
        con.print(tr("use.eval.absent", lang, names=", ".join(absent_classes(res.per_class))))
    con.print(_confusion_table(res, lang))
    pairs = res.most_confused(confused)
    if pairs:
        con.print(tr("use.eval.confused", lang))
        for true, pred, count in pairs:
            con.print(f"  {true} → {pred}: {count}")
    if worst > 0 and res.n:
        con.print(_worst_table(res, worst, lang))


def _per_class_table(res: EvalResult, lang: str) -> Table:
    from cnnlab.inference.evaluation import averages

    table = Table(title=tr("use.eval.per_class", lang), title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(tr(f"use.col.{col}", lang), justify="left" if col == "class" else "right")
    for row in res.per_class:
        table.add_row(row["name"], decimal(row["precision"], lang, 3), decimal(row["recall"], lang, 3), decimal(row["f1"], lang, 3),
                      integer(row["support"], lang))
    avg = averages(res.per_class)
    table.add_section()
    for kind in ("macro", "weighted"):
        a = avg[kind]
        table.add_row(tr(f"use.eval.{kind}", lang), decimal(a["precision"], lang, 3), decimal(a["recall"], lang, 3),
                      decimal(a["f1"], lang, 3), integer(res.n, lang))
    return table


def _confusion_table(res: EvalResult, lang: str) -> Table | Text:
    k = len(res.classes)
    if k > MAX_CONFUSION_CLASSES:
        return Text(tr("use.eval.confusion_too_wide", lang, k=k, max=MAX_CONFUSION_CLASSES))
    table = Table(title=tr("use.eval.confusion", lang), title_justify="left")
    table.add_column(tr("use.eval.true_pred", lang), justify="left")
    for name in res.classes:
        table.add_column(name, justify="right")
    for i, name in enumerate(res.classes):
        cells = []
        for j in range(k):
            count = int(res.confusion[i, j])
            style = "bold green" if i == j else ("red" if count else "dim")
            cells.append(Text(str(count), style=style))
        table.add_row(name, *cells)
    return table


def _worst_table(res: EvalResult, n: int, lang: str) -> Table:
    table = Table(title=tr("use.eval.worst", lang, n=n), title_justify="left")
    cols = ("index", "source", "true", "predicted", "confidence", "loss")
    for col in cols:
        table.add_column(tr(f"use.col.{col}", lang), justify="right" if col in ("index", "confidence", "loss") else "left",
                         no_wrap=col == "source")
    rows = [[str(s["index"]), shown(s["source"]), s["true"], s["predicted"], _pct(s["confidence"], lang), decimal(s["loss"], lang, 3)]
            for s in res.highest_loss(n)]
    for row in _fit_column(rows, 1, [tr(f"use.col.{c}", lang) for c in cols]):
        table.add_row(*row)
    return table


def _fit_column(rows: list[list[str]], col: int, headers: list[str]) -> list[list[str]]:
    """Shorten column ``col`` (a path) in the middle so the table fits the terminal: the file name stays."""
    width = _console().width
    others = sum(min(40, max([len(headers[i])] + [len(r[i]) for r in rows])) for i in range(len(headers)) if i != col)
    room = max(16, width - others - 3 * len(headers) - 1)  # rich's box: "│ " + " │ " between + " │"
    return [[shorten_middle(c, room) if i == col else c for i, c in enumerate(r)] for r in rows]


# ---------------------------------------------------------------- predict


def render_predictions(results: list[Prediction], fmt: str, *, top_k: int, lang: str = "en") -> None:
    if fmt == "json":
        _json([r.to_dict() for r in results])
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        header = ["source"]
        for i in range(1, top_k + 1):
            header += [f"class_{i}", f"probability_{i}"]
        writer.writerow([*header, "error"])
        for r in results:
            cells: list[Any] = [r.source]
            for i in range(top_k):
                cells += [r.top[i][0], f"{r.top[i][1]:.6f}"] if i < len(r.top) else ["", ""]
            writer.writerow([*cells, r.error or ""])
        return
    con = _console()
    table = Table()
    table.add_column(tr("use.col.source", lang), no_wrap=True)
    table.add_column(tr("use.col.predicted", lang))
    table.add_column(tr("use.col.probability", lang), justify="right")
    wide = top_k > 1 or any(not r.ok for r in results)  # a failed file's reason needs the fourth column
    cols = ("source", "predicted", "probability", "next" if top_k > 1 else "detail")[: 4 if wide else 3]
    if wide:
        table.add_column(tr(f"use.col.{cols[3]}", lang))
    plain = [[shown(r.source), r.label or tr("use.predict.error", lang), _pct(r.probability or 0.0, lang),
              ", ".join(f"{c} {_pct(p, lang)}" for c, p in r.top[1:]) if r.ok else localize(r.error, lang)][: len(cols)]
             for r in results]
    fitted = _fit_column(plain, 0, [tr(f"use.col.{c}", lang) for c in cols])
    short = {r.source: row[0] for r, row in zip(results, fitted, strict=True)}
    for r in results:
        row: list[Any]
        if not r.ok:
            row = [short[r.source], Text(tr("use.predict.error", lang), style="bold red"), "",
                   Text(localize(r.error, lang), style="red")]
        else:
            rest = ", ".join(f"{c} {_pct(p, lang)}" for c, p in r.top[1:])
            row = [short[r.source], Text(r.label or "", style="bold"), _pct(r.probability or 0.0, lang), rest]
        table.add_row(*row[: len(cols)])
    con.print(table)
    failed = sum(not r.ok for r in results)
    con.print(tr("use.predict.summary", lang, ok=len(results) - failed, failed=failed))


# ---------------------------------------------------------------- export / lr-find


def render_export(res: ExportResult, *, tolerance: float, as_json: bool, lang: str = "en") -> None:
    if as_json:
        _json(res.to_dict())
        return
    con = _console()
    con.print(tr("use.export.wrote", lang, path=res.path, kb=f"{res.size_bytes / 1024:,.1f}", opset=res.opset,
                 exporter=res.exporter))
    if math.isnan(res.max_abs_diff):
        con.print(tr("use.export.unchecked", lang))
    else:
        batches = ", ".join(str(b) for b in res.checked_batches)
        con.print(tr("use.export.checked", lang, diff=f"{res.max_abs_diff:.1e}", tol=f"{tolerance:.0e}", batches=batches))
    for note in res.notes:
        con.print(f"note: {note}")


def render_lr_find(res: LRFindResult, plot: Path, fmt: str, *, lang: str = "en") -> None:
    if fmt == "json":
        _json({**res.to_dict(), "plot": str(plot)})
        return
    con = _console()
    con.print(tr("use.lr.steps", lang, steps=len(res.lrs), optimizer=res.optimizer,
                 first=f"{res.lrs[0]:.1e}" if res.lrs else "-", last=f"{res.lrs[-1]:.1e}" if res.lrs else "-",
                 stopped=tr(f"use.lr.stopped.{res.stopped}", lang)))
    if res.suggestion is None:
        con.print(Text(tr("use.lr.no_suggestion", lang), style="bold red"))
    else:
        con.print(tr("use.lr.suggestion", lang, lr=f"{res.suggestion:.2g}", method=tr(f"use.lr.method.{res.method}", lang)))
        if res.lr_at_min is not None:
            con.print(tr("use.lr.minimum", lang, lr=f"{res.lr_at_min:.2g}", tenth=f"{res.lr_at_min / 10:.2g}"))
    con.print(tr("use.lr.plot_written", lang, path=plot))
