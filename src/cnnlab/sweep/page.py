"""``cnnlab sweep report SWEEP``: one self-contained HTML page (inline CSS, PNG figures as base64, no
script, no network): heat map over two options, accuracy against each option, the best trials'
curves, the table, and the winner's options as a ready ``--config`` YAML.

Figures are computed from ``SweepResult`` only (``heat_grid`` is pure and tested on its own).
"""

from __future__ import annotations

import base64
import io
import math
from datetime import datetime, timezone
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from cnnlab.i18n import tr
from cnnlab.sweep.results import SweepResult, TrialRow
from cnnlab.sweep.table import fmt_value, options_text

CURVES_TOP = 5


def pick_axes(result: SweepResult, x: str | None = None, y: str | None = None) -> tuple[str, str] | None:
    """The heat map's two options: as asked, else lr × batch_size when both vary, else the first two."""
    names = result.space.names
    if x and y:
        from cnnlab.errors import CnnlabError, did_you_mean

        for n in (x, y):
            if n not in names:
                raise CnnlabError(f"sweep report: {n!r} is not an option of this sweep{did_you_mean(n, names)}; "
                                  f"options: {', '.join(names)}")
        return x, y
    if "lr" in names and "batch_size" in names:
        return "lr", "batch_size"
    return (names[0], names[1]) if len(names) >= 2 else None


def heat_grid(rows: list[TrialRow], x: str, y: str) -> tuple[list[Any], list[Any], list[list[float | None]]]:
    """(x values, y values, cells[y][x]): the best validation accuracy of complete trials per pair.

    >>> r = [TrialRow(0, "complete", {"a": 1, "b": 2}, 0.5), TrialRow(1, "complete", {"a": 1, "b": 2}, 0.7),
    ...      TrialRow(2, "complete", {"a": 3, "b": 2}, 0.6), TrialRow(3, "failed", {"a": 3, "b": 4})]
    >>> heat_grid(r, "a", "b")
    ([1, 3], [2, 4], [[0.7, 0.6], [None, None]])
    """
    xs = sorted({r.params[x] for r in rows if x in r.params}, key=_order)
    ys = sorted({r.params[y] for r in rows if y in r.params}, key=_order)
    cells: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for r in rows:
        if r.state != "complete" or r.value is None or x not in r.params or y not in r.params:
            continue
        i, j = ys.index(r.params[y]), xs.index(r.params[x])
        old = cells[i][j]
        cells[i][j] = r.value if old is None else max(old, r.value)
    return xs, ys, cells


def _order(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))


def png_base64(fig: Any) -> str:
    """A figure as base64 PNG text for an inline <img> (sweep and study pages)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def new_figure(w: float, h: float) -> Any:
    """A matplotlib Figure drawn off-screen (Agg), not registered with pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def heatmap_png(result: SweepResult, x: str, y: str) -> str:
    xs, ys, cells = heat_grid(result.trials, x, y)
    fig = new_figure(1.2 + 0.9 * len(xs), 1.0 + 0.6 * len(ys))
    ax = fig.add_subplot()
    import numpy as np

    data = np.array([[math.nan if c is None else c for c in row] for row in cells], dtype=float)
    im = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), [fmt_value(v) for v in xs])
    ax.set_yticks(range(len(ys)), [fmt_value(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    finite = data[np.isfinite(data)]
    mid = float(finite.mean()) if finite.size else 0.0
    for i in range(len(ys)):
        for j in range(len(xs)):
            text = "–" if math.isnan(data[i, j]) else f"{data[i, j]:.1%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if not math.isnan(data[i, j]) and data[i, j] > mid else "white")
    fig.colorbar(im, ax=ax, label="val acc")
    return png_base64(fig)


def per_option_png(result: SweepResult) -> str:
    names = result.space.names
    params = {p.name: p for p in result.space.params}
    fig = new_figure(3.2 * len(names), 2.6)
    done = [t for t in result.trials if t.state == "complete" and t.value is not None]
    for k, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), k + 1)
        vals = [t.params.get(name) for t in done]
        accs = [t.value for t in done]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
        if numeric:
            nums = [float(v) for v in vals if v is not None]
            ax.scatter(nums, accs, s=22, alpha=0.8)
            if params[name].log or (nums and min(nums) > 0 and max(nums) / min(nums) >= 10):
                ax.set_xscale("log")
        else:
            cats = sorted({str(v) for v in vals})
            ax.scatter([cats.index(str(v)) for v in vals], accs, s=22, alpha=0.8)
            ax.set_xticks(range(len(cats)), cats)
        ax.set_xlabel(name)
        if k == 0:
            ax.set_ylabel("val acc")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_base64(fig)


def curves_png(result: SweepResult, top: int = CURVES_TOP) -> str | None:
    best = [t for t in result.ranked[:top] if t.curve]
    if not best:
        return None
    fig = new_figure(6.5, 3.2)
    ax = fig.add_subplot()
    names = result.space.names
    for t in best:
        ax.plot([e for e, _ in t.curve], [a for _, a in t.curve], marker="o", ms=3,
                label=f"#{t.number} {options_text(t, names)}")
    epochs = sorted({e for t in best for e, _ in t.curve})
    ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: max(1, len(epochs) // 10)])
    ax.set_xlabel("epoch")
    ax.set_ylabel("val acc")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return png_base64(fig)


def img_html(b64: str, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{b64}" style="max-width:100%">'


def _table(result: SweepResult, lang: str) -> str:
    names = result.space.names
    head = "".join(f"<th>{escape(h)}</th>" for h in
                   [tr("sweep.col.trial", lang), *names, tr("sweep.col.val_acc", lang), tr("sweep.col.time", lang),
                    tr("sweep.col.state", lang), "run"])
    best = result.best.number if result.best else None
    body = []
    for t in result.ranked + [t for t in result.trials if t not in result.ranked]:
        state = tr(f"sweep.state.{t.state}", lang) + (f": {t.error.splitlines()[0]}" if t.error else "")
        if t.retried_by is not None:
            state += " " + tr("sweep.retried_as", lang, number=t.retried_by)
        cells = [str(t.number), *[fmt_value(t.params.get(n, "")) for n in names],
                 "" if t.value is None else f"{t.value:.2%}", "" if t.time_s is None else f"{t.time_s:.1f} s",
                 state, t.run or ""]
        cls = ' class="best"' if t.number == best else ""
        body.append(f'<tr data-trial="{t.number}" data-state="{t.state}"{cls}>' + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="sweep" id="trials"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def section_html(title: str, html: str, lead: str = "") -> str:
    lead_html = f'<p class="lead">{escape(lead)}</p>' if lead else ""
    return f'<section class="card"><h2>{escape(title)}</h2>{lead_html}{html}</section>'


def render_page(result: SweepResult, lang: str = "en", x: str | None = None, y: str | None = None) -> str:
    """The whole page as a string."""
    counts = ", ".join(f"{n} {tr(f'sweep.state.{s}', lang)}" for s, n in sorted(result.counts().items()))
    meta = result.meta
    summary = tr("sweep.page.summary", lang, n=len(result.trials), spec=meta.get("spec_name", "?"),
                 data=meta.get("data", "?"), counts=counts, sampler=result.space.sampler)
    parts = [f'<p class="lead">{escape(summary)}</p>']
    best = result.best
    if best is not None:
        line = tr("sweep.best", lang, number=best.number, options=options_text(best, result.space.names), acc=best.value)
        test = result.test
        test_html = (tr("sweep.page.test", lang, acc=test["accuracy"], n=test["images"], number=test["trial"])
                     if test else tr("sweep.page.no_test", lang, reason="the sweep is not finished, has no test "
                                     "split, or the winner's run folder is on another machine"))
        parts.append(section_html(tr("sweep.page.best", lang), f"<p><b>{escape(line)}</b></p><p class=\"note\">"
                                  f"{escape(test_html)}</p>"))
    axes = pick_axes(result, x, y)
    if axes:
        parts.append(section_html(tr("sweep.page.heatmap", lang, x=axes[0], y=axes[1]),
                                  img_html(heatmap_png(result, *axes), "heat map"), tr("sweep.page.heatmap_note", lang)))
    parts.append(section_html(tr("sweep.page.per_option", lang), img_html(per_option_png(result), "accuracy per option")))
    curves = curves_png(result)
    if curves:
        parts.append(section_html(tr("sweep.page.curves", lang), img_html(curves, "curves")))
    note = tr("sweep.page.pruned_note", lang) if result.counts().get("pruned") else ""
    parts.append(section_html(tr("sweep.page.table", lang), _table(result, lang), note))
    if best is not None:
        parts.append(section_html(tr("sweep.page.config", lang), f"<pre>{escape(result.best_config())}</pre>",
                                  tr("sweep.page.exports", lang)))
    title = tr("sweep.page.title", lang, name=result.name)
    return page_html(title, f"<code>{escape(str(result.folder))}</code> · {escape(result.url)}", parts, lang)


PAGE_CSS = ("table.sweep{border-collapse:collapse;font-size:.85rem;width:100%}"
            "table.sweep td,table.sweep th{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left}"
            "table.sweep tr.best{background:#e8f5e9;font-weight:600}pre{background:var(--soft);padding:10px}")


def page_html(title: str, meta_html: str, parts: list[str], lang: str) -> str:
    """A self-contained page in the report's style (inline CSS, no script): the sweep and study pages."""
    style = (resources.files("cnnlab.report") / "style.css").read_text(encoding="utf-8")
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html><html lang="{"pt-BR" if lang == "pt" else "en"}"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{style}{PAGE_CSS}</style></head><body>"
            f'<header class="top"><div class="wrap"><h1>{escape(title)}</h1><p class="meta">'
            f"{meta_html} · {generated}</p></div></header>"
            f'<main><div class="wrap">{"".join(parts)}</div></main></body></html>')


def write_sweep_report(result: SweepResult | str | Path, *, lang: str = "en", out: str | Path | None = None,
                       x: str | None = None, y: str | None = None, storage: str | None = None) -> Path:
    """Write ``SWEEP/report.html`` (atomically) and return its path."""
    from cnnlab.sweep.results import load_sweep
    from cnnlab.utils.io import atomic_write_text

    if not isinstance(result, SweepResult):
        result = load_sweep(result, storage)
    path = Path(out) if out else result.folder / "report.html"
    atomic_write_text(path, render_page(result, lang, x, y))
    return path
