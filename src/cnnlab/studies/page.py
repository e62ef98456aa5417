"""``STUDY/study.html``: the paper, its claim, what we ran, what differs, our numbers, the plots and the
verdict, from ``study.json`` alone (self-contained: inline CSS and PNGs, no script; the sweep page's
helpers). English or Portuguese.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from cnnlab.i18n import decimal, integer, percent, tr
from cnnlab.studies.defs import get_study
from cnnlab.sweep.page import img_html, new_figure, page_html, png_base64, section_html

OPTION_KEYS = ("batch_size", "lr", "epochs", "schedule", "lr_steps", "batch_schedule")


def render_study_page(doc: dict[str, Any], lang: str = "en") -> str:
    study = get_study(doc["study"])
    summary = doc["summary"]
    parts = [section_html(tr("study.page.paper", lang), f"<p>{escape(doc['paper'])}</p>"),
             section_html(tr("study.page.claim", lang), f"<p><b>{escape(tr(f'study.claim.{study.name}', lang))}</b></p>"),
             section_html(tr("study.page.setup", lang), _setup(doc, lang)),
             section_html(tr("study.page.differences", lang), "<ul>" + "".join(
                 f"<li>{escape(line)}</li>" for line in tr(f"study.diff.{study.name}", lang).splitlines()) + "</ul>"),
             section_html(tr("study.page.measurement", lang), _measurement(doc, lang)),
             section_html(tr("study.page.verdict", lang),
                          f'<p class="verdict" data-code="{escape(summary["verdict"]["code"])}"><b>'
                          f'{escape(summary["verdict"][lang])}</b></p>')]
    if study.kind == "grid":
        parts.append(section_html(tr("study.page.heatmap", lang), img_html(heatmap_png(summary), "heat map")))
        parts.append(section_html(tr("study.page.best_lr", lang), img_html(best_lr_png(summary), "best lr")))
    if study.kind == "gap":
        parts.append(section_html(tr("study.page.gaps", lang), img_html(gaps_png(summary), "gaps")))
    parts.append(section_html(tr("study.page.curves", lang), img_html(curves_png(doc, study.target_error), "curves")))
    command = f"cnnlab study {study.name} --data {doc['data']}" + (" --quick" if doc["size"] == "quick" else "") + \
        f" --seeds {len(doc['seeds'])}"
    parts.append(section_html(tr("study.page.reproduce", lang), f"<pre>{escape(command)}</pre>"))
    title = tr("study.page.title", lang, name=study.name, short=study.short)
    return page_html(title, f"<code>study.json</code> · {escape(doc['size'])}", parts, lang)


def _setup(doc: dict[str, Any], lang: str) -> str:
    arm = doc["arms"][0]
    line = tr("study.page.setup_line", lang, data=doc["data"], train=integer(arm["train_images"], lang),
              subset=tr("study.page.subset" if doc["limit"] else "study.page.whole", lang),
              val=integer(arm["val_images"], lang), test=integer(arm["test_images"], lang),
              choose=tr("study.page.choose", lang) if doc["study"] == "batch-vs-lr" else "",
              epochs=doc["epochs"], seeds=", ".join(map(str, doc["seeds"])), size=doc["size"], wall=decimal(doc["wall_s"], lang, 0),
              load="?" if doc.get("load_avg") is None else decimal(doc["load_avg"], lang, 2))
    nets = sorted({a["spec"] for a in doc["arms"]})
    return f"<p>{escape(line)}</p><p>net: <code>{escape(', '.join(nets))}</code></p>"


def _options(config: dict[str, Any], grid: list[str]) -> str:
    shown = [f"{k}={_value(config[k])}" for k in OPTION_KEYS if config.get(k) not in (None, [], "")]
    shown += grid
    shown += [f"{k}={config[k]}" for k in ("optimizer", "momentum", "weight_decay", "warmup") if k in config]
    return ", ".join(shown)


def _value(v: Any) -> str:
    """0.05656854249492381 -> 0.0565685 (lists of milestones as written)."""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return ",".join(f"{e}:{f:g}" if isinstance(e, int) else str(e) for e, f in v)
    return str(v)


def _measurement(doc: dict[str, Any], lang: str) -> str:
    s = doc["summary"]
    head = "".join(f"<th>{escape(tr(f'study.col.{c}', lang))}</th>" for c in
                   ("arm", "options", "test", "seeds", "updates"))
    rows = []
    for arm in doc["arms"]:
        st = s["arms"][arm["key"]]
        acc = f"{percent(st['test_acc_mean'], lang)} ± {percent(st['test_acc_std'], lang)}"
        seeds = ", ".join(percent(v, lang) for v in st["test_acc"])
        updates = "/".join(integer(u, lang) for u in st["updates"]) + " / " + \
            "/".join(integer(u, lang) for u in st["planned_updates"])
        cells = [f"{arm['key']}: {arm['label']}", _options(arm["config"], arm["grid"]), acc, seeds, updates]
        rows.append(f'<tr data-arm="{escape(arm["key"])}">' + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    html = f'<table class="sweep" id="arms"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    if s["kind"] == "grid":
        html += _best_table(s, lang)
    off = [a["key"] for a in doc["arms"] if s["arms"][a["key"]]["updates"] != s["arms"][a["key"]]["planned_updates"]]
    if off:
        html += f'<p class="note mismatch"><b>{escape(tr("study.page.mismatch", lang, arms=", ".join(off)))}</b></p>'
    return html


def _best_table(s: dict[str, Any], lang: str) -> str:
    head = "".join(f"<th>{escape(tr(f'study.col.{c}', lang))}</th>" for c in ("batch", "best_lr", "val", "test"))
    rows = "".join(f"<tr><td>{b}</td><td>{v['lr']:g}</td><td>{percent(v['val_mean'], lang)}</td>"
                   f"<td>{percent(v['test_mean'], lang)}</td></tr>" for b, v in s["best"].items())
    return f'<table class="sweep" id="best"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


# ------------------------------------------------------------------ plots
def curves_png(doc: dict[str, Any], target_error: float | None = None) -> str:
    fig = new_figure(6.5, 3.4)
    ax = fig.add_subplot()
    groups: dict[str, list[list[list[float]]]] = {}
    best = doc["summary"].get("best")
    for r in doc["runs"]:
        if best is not None:  # batch-vs-lr: each batch size at its best lr
            b = str(r["params"]["batch_size"])
            if float(r["params"]["lr"]) != best[b]["lr"]:
                continue
            key = f"batch {b}, lr {best[b]['lr']:g}"
        else:
            key = r["arm"]
        groups.setdefault(key, []).append(r["curve"])
    for i, (key, curves) in enumerate(groups.items()):
        color = f"C{i % 10}"
        for c in curves:
            ax.plot([e for e, _ in c], [a for _, a in c], color=color, lw=0.7, alpha=0.5)
        n = min(len(c) for c in curves)
        if n:
            mean = [sum(c[k][1] for c in curves) / len(curves) for k in range(n)]
            ax.plot([curves[0][k][0] for k in range(n)], mean, color=color, lw=2, marker="o", ms=3, label=key)
    if target_error is not None:
        ax.axhline(1 - target_error, color="black", ls="--", lw=1, label=f"paper: {1 - target_error:.2%} (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val acc")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return png_base64(fig)


def heatmap_png(summary: dict[str, Any]) -> str:
    import numpy as np

    batches, lrs = summary["batches"], summary["lrs"]
    data = np.full((len(batches), len(lrs)), math.nan)
    for c in summary["cells"]:
        data[batches.index(c["batch_size"]), lrs.index(c["lr"])] = c["test_mean"]
    fig = new_figure(1.4 + 0.9 * len(lrs), 1.2 + 0.6 * len(batches))
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
    ax.set_yticks(range(len(batches)), [str(b) for b in batches])
    ax.set_xlabel("lr")
    ax.set_ylabel("batch size")
    finite = data[np.isfinite(data)]
    mid = float(finite.mean()) if finite.size else 0.0
    for i in range(len(batches)):
        for j in range(len(lrs)):
            if not math.isnan(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.1%}", ha="center", va="center", fontsize=8,
                        color="black" if data[i, j] > mid else "white")
        j = lrs.index(summary["best"][str(batches[i])]["lr"])
        ax.add_patch(_rect(j, i))
    fig.colorbar(im, ax=ax, label="test acc")
    return png_base64(fig)


def _rect(j: int, i: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2)


def best_lr_png(summary: dict[str, Any]) -> str:
    batches = summary["batches"]
    best = [summary["best"][str(b)]["lr"] for b in batches]
    fig = new_figure(5.0, 3.4)
    ax = fig.add_subplot()
    ax.plot(batches, best, "o-", color="C0", lw=2, label=f"best lr (slope {summary['slope']:.2f})")
    b0, l0 = batches[0], best[0]
    ax.plot(batches, [l0 * b / b0 for b in batches], "--", color="C3", label="linear scaling (slope 1)")
    ax.plot(batches, [l0 * math.sqrt(b / b0) for b in batches], ":", color="C2", label="square-root (slope 0.5)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("lr")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return png_base64(fig)


def gaps_png(summary: dict[str, Any]) -> str:
    gaps = summary["gaps"]
    fig = new_figure(5.5, 3.2)
    ax = fig.add_subplot()
    keys = list(gaps)
    ax.bar(range(len(keys)), [100 * gaps[k]["gap"] for k in keys], yerr=[200 * gaps[k]["se"] for k in keys],
           color=["C3" if not gaps[k]["closed"] else "C2" for k in keys], capsize=4)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(keys)), keys)
    ax.set_ylabel("gap (percentage points)")
    ax.grid(alpha=0.3, axis="y")
    return png_base64(fig)


__all__ = ["render_study_page", "curves_png", "heatmap_png", "best_lr_png", "gaps_png"]
