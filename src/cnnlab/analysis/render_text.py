"""A small, fast text-table drawer (ANSI colours on a terminal) for the summary and models tables.

Hand-written rather than rich: ``cnnlab summary resnet18`` must answer in well under half a second,
and a deterministic plain form makes the golden files stable.

>>> print(draw_table(["a", "bb"], [["1", "x"], ["22", "y\\nz"]], align="rl"))
 a  bb
━━━━━━
 1  x
22  y
    z
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

STYLES = {"bold": "1", "dim": "2", "cyan": "36", "green": "32", "magenta": "35", "yellow": "33",
          "bold cyan": "1;36", "bold yellow": "1;33", "red": "31"}


def use_color(stream: TextIO | None = None) -> bool:
    """Colours only on a terminal, and never when ``NO_COLOR`` is set."""
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def paint(text: str, style: str | None, color: bool) -> str:
    if not color or not style or not text.strip():
        return text
    return f"\x1b[{STYLES[style]}m{text}\x1b[0m"


def terminal_width(stream: TextIO | None = None) -> int | None:
    """The terminal's width, or None (no wrapping) when writing to a file or a pipe."""
    stream = stream or sys.stdout
    if not getattr(stream, "isatty", lambda: False)():
        return None
    import shutil

    return shutil.get_terminal_size((120, 40)).columns


def draw_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    align: str,
    styles: Sequence[str | None] | None = None,
    width: int | None = None,
    color: bool = False,
    sub_style: str | None = "dim",
) -> str:
    """Columns separated by two spaces; the LAST column takes the remaining width and wraps.

    A cell may hold several lines; lines after the first of the last column use ``sub_style``.
    """
    ncol = len(headers)
    styles = styles or [None] * ncol
    cells = [[str(c).split("\n") for c in row] for row in rows]
    widths = [max([len(headers[j])] + [len(line) for row in cells for line in row[j]]) for j in range(ncol)]
    fixed = sum(widths[:-1]) + 2 * (ncol - 1)
    if width is not None:
        widths[-1] = max(min(widths[-1], width - fixed), 20)
    total = sum(widths) + 2 * (ncol - 1)
    out = ["  ".join(paint(_fit(h, widths[j], align[j]), "bold", color) for j, h in enumerate(headers)).rstrip(),
           paint("━" * min(total, width or 110), "dim", color)]
    for row in cells:
        last: list[tuple[str, bool]] = []
        for k, line in enumerate(row[-1]):
            wrapped = textwrap.wrap(line, widths[-1], subsequent_indent="  ") if width is not None else [line]
            last.extend((text, k > 0) for text in (wrapped or [""]))
        height = max([len(c) for c in row[:-1]] + [len(last)])
        for i in range(height):
            parts = []
            for j in range(ncol - 1):
                text = row[j][i] if i < len(row[j]) else ""
                parts.append(paint(_fit(text, widths[j], align[j]), styles[j], color))
            text, sub = last[i] if i < len(last) else ("", False)
            parts.append(paint(text, sub_style if sub else styles[-1], color))
            out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def _fit(text: str, width: int, align: str) -> str:
    return text.rjust(width) if align == "r" else text.ljust(width)
