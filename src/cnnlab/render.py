"""Render an ``Analysis`` as a rich table, plain text, JSON, Markdown or CSV (render only, no compute).

>>> from cnnlab.analysis import analyze
>>> print(render(analyze("keras-mnist"), "csv").splitlines()[1])
0,conv,conv 3×3 1→32 + relu,"(32, 26, 26)",320,194688,3×3
"""

from __future__ import annotations

import csv
import enum
import io
import json
from typing import Any

from cnnlab.analysis_layers import num
from cnnlab.analysis_types import Analysis, LayerAnalysis
from cnnlab.i18n import tr


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


def human_count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def explanation(row: LayerAnalysis) -> str:
    """Formula, shape formula and notes, one per line."""
    return "\n".join(x for x in (row.formula, row.shape_formula, *row.notes) if x)


def totals_lines(a: Analysis) -> list[tuple[str, str]]:
    """(label, value) pairs of the totals block, translated."""
    lang = a.lang
    out = [
        (tr("analysis.total.params", lang),
         tr("analysis.total.params_value", lang, total=num(a.total_params, lang),
            trainable=num(a.trainable_params, lang), frozen=num(a.non_trainable_params, lang))),
        (tr("analysis.total.buffers", lang), tr("analysis.total.buffers_value", lang, n=num(a.total_buffers, lang))),
        (tr("analysis.total.weights", lang),
         tr("analysis.total.weights_value", lang, size=human_bytes(a.weight_bytes), n=num(a.weight_bytes, lang))),
        (tr("analysis.total.macs", lang),
         tr("analysis.total.macs_value", lang, macs=human_count(a.total_macs), flops=human_count(a.flops),
            n=num(a.total_macs, lang))),
    ]
    if a.memory is not None:
        m = a.memory
        out.append((
            tr("analysis.total.memory", lang, batch=m.batch),
            tr("analysis.total.memory_value", lang, total=human_bytes(m.total), w=human_bytes(m.weights),
               g=human_bytes(m.gradients), o=human_bytes(m.optimizer), act=human_bytes(m.activations)),
        ))
    return out


def rich_renderables(a: Analysis) -> list[Any]:
    """The rich objects for the terminal: title, layer table, totals, warnings."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    lang = a.lang
    table = Table(
        title=tr("analysis.table.title", lang, name=a.name, shape=shape_text(a.input_shape)),
        box=box.SIMPLE_HEAVY, header_style="bold", show_lines=False, expand=False,
    )
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column(tr("analysis.col.layer", lang), style="bold cyan", no_wrap=False, max_width=30)
    table.add_column(tr("analysis.col.output", lang), justify="right", no_wrap=True)
    table.add_column(tr("analysis.col.params", lang), justify="right", style="green", no_wrap=True)
    table.add_column(tr("analysis.col.how", lang), ratio=1, min_width=40)
    table.add_column("MACs", justify="right", style="magenta", no_wrap=True)
    table.add_column("RF", justify="right", style="yellow", no_wrap=True)
    for row in a.walk():
        indent = "  " * row.depth
        how = Text(row.formula)
        for extra in (row.shape_formula, *row.notes):
            if extra:
                how.append("\n" + extra, style="dim")
        table.add_row(
            indent + row.path, indent + row.title, shape_text(row.output_shape),
            num(row.params, lang) if row.params else "—", how,
            human_count(row.macs) if row.macs else "—", rf_text(row),
        )
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for label, value in totals_lines(a):
        totals.add_row(label, value)
    items: list[Any] = [table, totals]
    for w in a.warnings:
        items.append(Text(tr("analysis.warning", lang, text=w), style="yellow"))
    return items


def print_rich(a: Analysis, console: Any = None) -> None:
    from rich.console import Console

    console = console or Console()
    for item in rich_renderables(a):
        console.print(item)


def render_text(a: Analysis, width: int | None = None) -> str:
    """The rich table as plain text (no colours), for files, doctests and ``print(analysis)``."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width or 160, color_system=None, force_terminal=False,
                      record=True)
    print_rich(a, console)
    return console.export_text()


def render_markdown(a: Analysis) -> str:
    lang = a.lang
    head = ["#", tr("analysis.col.layer", lang), tr("analysis.col.output", lang), tr("analysis.col.params", lang),
            "MACs", "RF", tr("analysis.col.how", lang)]
    lines = [f"### {tr('analysis.table.title', lang, name=a.name, shape=shape_text(a.input_shape))}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in a.walk():
        how = "<br>".join(x.replace("|", "\\|") for x in explanation(row).splitlines())
        cells = [row.path, row.title, shape_text(row.output_shape), num(row.params, lang), num(row.macs, lang),
                 rf_text(row), how]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"- **{label}**: {value}" for label, value in totals_lines(a))
    lines.extend(f"- ⚠ {w}" for w in a.warnings)
    return "\n".join(lines) + "\n"


def render_csv(a: Analysis) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "kind", "title", "output_shape", "params", "macs", "receptive_field"])
    for row in a.walk():
        writer.writerow([row.path, row.kind, row.title, str(tuple(row.output_shape)), row.params, row.macs,
                         rf_text(row)])
    return buf.getvalue()
