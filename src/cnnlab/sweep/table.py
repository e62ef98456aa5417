"""The sweep's table on the terminal: a line whenever a trial starts or ends, then the final ranking.

Render only: rows come from ``results.trial_rows``.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from cnnlab.i18n import tr
from cnnlab.sweep.results import SweepResult, TrialRow


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def options_text(row: TrialRow, names: list[str]) -> str:
    return "  ".join(f"{n}={fmt_value(row.params[n])}" for n in names if n in row.params)


def row_line(row: TrialRow, names: list[str], lang: str) -> str:
    acc = f"{row.value:7.2%}" if row.value is not None else (
        f"{row.curve[-1][1]:7.2%}" if row.curve else "      -")
    time_s = f"{row.time_s:7.1f} s" if row.time_s is not None else "        -"
    state = tr(f"sweep.state.{row.state}", lang)
    if row.retried_by is not None:
        state += " " + tr("sweep.retried_as", lang, number=row.retried_by)
    if row.retry_of is not None:
        state += " " + tr("sweep.retry_of", lang, number=row.retry_of)
    if row.error:
        state += f": {row.error.splitlines()[0][:160]}"
    return f"{row.number:>5}  {options_text(row, names):<44} {acc}  {time_s}  {state}"


def header(lang: str) -> str:
    return (f"{tr('sweep.col.trial', lang):>5}  {tr('sweep.col.options', lang):<44} "
            f"{tr('sweep.col.val_acc', lang):>7}  {tr('sweep.col.time', lang):>9}  {tr('sweep.col.state', lang)}")


class LiveTable:
    """Prints each trial's line when its state changes (polling the study)."""

    def __init__(self, names: list[str], lang: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.names, self.lang, self.enabled = names, lang, enabled
        self.stream = stream or sys.stdout
        self.seen: dict[int, str] = {}
        self.started = False

    def update(self, rows: list[TrialRow]) -> None:
        if not self.enabled:
            return
        for row in rows:
            if row.state == "waiting" or self.seen.get(row.number) == row.state:
                continue
            if not self.started:
                print(header(self.lang), file=self.stream, flush=True)
                self.started = True
            self.seen[row.number] = row.state
            print(row_line(row, self.names, self.lang), file=self.stream, flush=True)


def final_table(result: SweepResult, lang: str, top: int | None = None) -> str:
    """The ranking (complete trials by validation accuracy), then the other trials, then the winner."""
    names = result.space.names
    ranked = result.ranked
    others = [t for t in result.trials if t not in ranked]
    rows = (ranked[:top] if top else ranked) + others
    lines = [header(lang)] + [row_line(r, names, lang) for r in rows]
    counts = ", ".join(f"{n} {tr(f'sweep.state.{s}', lang)}" for s, n in sorted(result.counts().items()))
    lines.append(tr("sweep.counts", lang, counts=counts))
    best = result.best
    if best is not None:
        lines.append(tr("sweep.best", lang, number=best.number, options=options_text(best, names), acc=best.value))
        if result.test:
            lines.append(tr("sweep.test_once", lang, acc=result.test["accuracy"], n=result.test["images"],
                            number=result.test["trial"]))
    return "\n".join(lines)
