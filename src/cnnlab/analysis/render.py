"""Render an ``Analysis`` as a text table (coloured on a terminal), JSON, Markdown or CSV (render only, no compute).

>>> from cnnlab.analysis import analyze
>>> print(render(analyze("keras-mnist"), "csv").splitlines()[1])
0,conv,"conv 3×3, 1→32 + relu","(32, 26, 26)",320,194688,3×3,0
"""

from __future__ import annotations

import csv
import enum
import io
import json
import sys
from typing import TextIO

from cnnlab.analysis.render_text import draw_table, paint, terminal_width, use_color
from cnnlab.analysis.types import Analysis, LayerAnalysis
from cnnlab.i18n import integer, point, tr


class Format(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    CSV = "csv"


def render(a: Analysis, fmt: Format | str = Format.TABLE, width: int | None = None) -> str:
    """The analysis as text in ``fmt`` (``table`` gives the plain-text form of the rich table)."""
    fmt = Format(fmt)
    if fmt == Format.JSON:
        return json.dumps(a.to_dict(), indent=2, ensure_ascii=False)
    if fmt == Format.MARKDOWN:
        return render_markdown(a)
    if fmt == Format.CSV:
        return render_csv(a)
    return render_text(a, width=width)


def shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return f"{shape[0]}×{shape[1]}×{shape[2]}"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def rf_text(row: LayerAnalysis) -> str:
    rf = row.receptive_field
    if rf is None:
        return "—" if len(row.output_shape) != 3 else ""
    if rf.size[0] == rf.size[1]:
        return f"{rf.size[0]}×{rf.size[1]}"
    return f"{rf.size[0]}×{rf.size[1]}"


def human_count(n: int, lang: str = "en") -> str:
    """``1.81 G`` (en) / ``1,81 G`` (pt)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return point(f"{n / scale:.2f} {unit}", lang)
    return str(n)


def human_bytes(n: int, lang: str = "en") -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return point(f"{n / scale:.1f} {unit}", lang)
    return f"{n} B"


def explanation(row: LayerAnalysis) -> str:
    """Formula, shape formula and notes, one per line."""
    return "\n".join(x for x in (row.formula, row.shape_formula, *row.notes) if x)


def totals_lines(a: Analysis) -> list[tuple[str, str]]:
    """(label, value) pairs of the totals block, translated."""
    lang = a.lang
    out = [
        (tr("analysis.total.params", lang),
         tr("analysis.total.params_value", lang, total=integer(a.total_params, lang),
            trainable=integer(a.trainable_params, lang), frozen=integer(a.non_trainable_params, lang))),
        (tr("analysis.total.buffers", lang), tr("analysis.total.buffers_value", lang, n=integer(a.total_buffers, lang))),
        (tr("analysis.total.weights", lang),
         tr("analysis.total.weights_value", lang, size=human_bytes(a.weight_bytes, lang), n=integer(a.weight_bytes, lang))),
        (tr("analysis.total.macs", lang),
         tr("analysis.total.macs_value", lang, macs=human_count(a.total_macs, lang), flops=human_count(a.flops, lang),
            n=integer(a.total_macs, lang))),
    ]
    if a.memory is not None:
        m = a.memory
        out.append((
            tr("analysis.total.memory", lang, batch=m.batch),
            tr("analysis.total.memory_value", lang, total=human_bytes(m.total, lang), w=human_bytes(m.weights, lang),
               g=human_bytes(m.gradients, lang), o=human_bytes(m.optimizer, lang),
               act=human_bytes(m.activations, lang)),
        ))
    return out


def layer_rows(a: Analysis) -> list[list[str]]:
    """The table's cells, one list per row (residual children indented under their block)."""
    lang = a.lang
    rows = []
    for row in a.walk():
        indent = "  " * row.depth
        rows.append([
            indent + row.path, indent + row.title, shape_text(row.output_shape),
            integer(row.params, lang) if row.params else "—", human_count(row.macs, lang) if row.macs else "—",
            rf_text(row) or "—", explanation(row),
        ])
    return rows


def render_text(a: Analysis, width: int | None = None, color: bool = False) -> str:
    """The summary table, totals and warnings as text (``width=None``: formulas never wrap)."""
    lang = a.lang
    headers = ["#", tr("analysis.col.layer", lang), tr("analysis.col.output", lang), tr("analysis.col.params", lang),
               "MACs", "RF", tr("analysis.col.how", lang)]
    title = tr("analysis.table.title", lang, name=a.name, shape=shape_text(a.input_shape))
    table = draw_table(headers, layer_rows(a), align="rlrrrrl",
                       styles=["dim", "cyan", None, "green", "magenta", "yellow", None], width=width, color=color)
    lines = [paint(title, "bold", color), "", table, ""]
    totals = totals_lines(a)
    pad = max(len(label) for label, _ in totals)
    lines.extend(f"{paint(label.ljust(pad), 'bold', color)}  {value}" for label, value in totals)
    for w in a.warnings:
        lines.append(paint(tr("analysis.warning", lang, text=w), "yellow", color))
    return "\n".join(lines) + "\n"


def print_summary(a: Analysis, stream: TextIO | None = None, width: int | None = None) -> None:
    """Write the table to ``stream`` (stdout): coloured and wrapped to the terminal when it is one."""
    stream = stream or sys.stdout
    stream.write(render_text(a, width=width or terminal_width(stream), color=use_color(stream)))


def render_markdown(a: Analysis) -> str:
    lang = a.lang
    head = ["#", tr("analysis.col.layer", lang), tr("analysis.col.output", lang), tr("analysis.col.params", lang),
            "MACs", "RF", tr("analysis.col.how", lang)]
    lines = [f"### {tr('analysis.table.title', lang, name=a.name, shape=shape_text(a.input_shape))}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in a.walk():
        how = "<br>".join(x.replace("|", "\\|") for x in explanation(row).splitlines())
        cells = [row.path, row.title, shape_text(row.output_shape), integer(row.params, lang), integer(row.macs, lang),
                 rf_text(row), how]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"- **{label}**: {value}" for label, value in totals_lines(a))
    lines.extend(f"- ⚠ {w}" for w in a.warnings)
    return "\n".join(lines) + "\n"


def render_csv(a: Analysis) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "kind", "title", "output_shape", "params", "macs", "receptive_field", "depth"])
    for row in a.walk():  # depth > 0: rows inside a residual block (already counted in the block's row)
        writer.writerow([row.path, row.kind, row.title, str(tuple(row.output_shape)), row.params, row.macs,
                         rf_text(row), row.depth])
    return buf.getvalue()
