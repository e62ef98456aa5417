"""Turn a ``ReportData`` into one self-contained HTML page (inline CSS, images as base64 PNG, no script).

Render only: every number is already in ``ReportData``. Every text from the run (class names, paths,
formulas) is HTML-escaped.

>>> from cnnlab.report.types import Item
>>> _items_dl([Item("epochs", "<3>")])
'<dl class="kv"><dt>epochs</dt><dd>&lt;3&gt;</dd></dl>'
"""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template
from typing import Any

from cnnlab.i18n import decimal, integer, percent, tr
from cnnlab.report.types import Evaluation, Item, LayerRow, Picture, ReportData

SCROLL_ROWS = 14  # a longer layer table scrolls inside its box (VGG-16 stays one screen tall)
PER_CLASS_OPEN = 12  # more classes than this: the per-class table starts folded


def render_html(report: ReportData) -> str:
    """The complete page."""
    lang = report.lang
    sections = [
        ("network", tr("report.nav.network", lang), _network(report)),
        ("training", tr("report.nav.training", lang), _training(report)),
        ("results", tr("report.nav.results", lang), _results(report)),
        ("learned", tr("report.nav.learned", lang), _learned(report)),
        ("mistakes", tr("report.nav.mistakes", lang), _mistakes(report)),
        ("setup", tr("report.nav.setup", lang), _setup(report)),
    ]
    shown = [(key, name, html) for key, name, html in sections if html]
    toc = "\n".join(f'<a href="#{key}">{escape(name)}</a>' for key, name, _ in shown)
    body = _cards(report.headline) + _notes(report) + "\n".join(html for _, _, html in shown)
    page = Template(_resource("template.html"))
    return page.substitute(
        html_lang="pt-BR" if lang == "pt" else "en",
        version=escape(report.version),
        title=escape(tr("report.page_title", lang, name=report.title)),
        style=_resource("style.css"),
        header=_header(report),
        toc=toc,
        body=body,
        footer=tr("report.footer", lang, version=escape(report.version), generated=escape(report.generated),
                  command=f"<code>cnnlab report {escape(report.run_path)}</code>"),
    )


def _resource(name: str) -> str:
    return (resources.files("cnnlab.report") / name).read_text(encoding="utf-8")


def _header(r: ReportData) -> str:
    sub = f'<p class="subtitle">{escape(r.subtitle)}</p>' if r.subtitle else ""
    meta = tr("report.meta", r.lang, path=f"<code>{escape(r.run_path)}</code>", generated=escape(r.generated),
              shape=escape(r.input_shape))
    return f"<h1>{escape(r.title)}</h1>{sub}<div class=\"meta\">{meta}</div>"


def _cards(items: list[Item]) -> str:
    cards = "".join(
        f'<div class="stat"><div class="label">{escape(i.label)}</div><div class="value">{escape(i.value)}</div>'
        f'<div class="hint">{escape(i.hint)}</div></div>' for i in items)
    return f'<div class="cards">{cards}</div>'


def _notes(r: ReportData) -> str:
    out = "".join(f'<div class="note">{escape(n)}</div>' for n in r.notes)
    return out + "".join(f'<div class="note warn">{escape(w)}</div>' for w in r.warnings)


def _section(key: str, title: str, lead: str, inner: str) -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section class="card" id="{key}"><h2>{escape(title)}</h2>{lead_html}{inner}</section>'


def _figure(p: Picture | None) -> str:
    if p is None:
        return ""
    caption = f"<figcaption>{escape(p.caption)}</figcaption>" if p.caption else ""
    return (f'<figure id="fig-{escape(p.key)}"><img src="{p.data_uri()}" width="{p.width}" height="{p.height}" '
            f'alt="{escape(p.title)}" loading="eager">{caption}</figure>')


# ------------------------------------------------------------------ network table


def _network(r: ReportData) -> str:
    lang = r.lang
    head = "".join(_th(tr(k, lang), c) for k, c in (
        ("report.table.index", "num"), ("report.table.layer", ""), ("report.table.output", ""),
        ("report.table.params", "num"), ("report.table.macs", "num"), ("report.table.rf", ""),
        ("report.table.how", "")))
    rows = "\n".join(_layer_tr(row, lang, "layer") for row in r.layers)
    foot = (f'<tr><td></td><td colspan="2">{escape(tr("report.table.total", lang))}</td>'
            f'<td class="num" id="total-params" data-params="{r.total_params}">{integer(r.total_params, lang)}</td>'
            f'<td class="num">{integer(sum(x.macs for x in r.layers), lang)}</td><td colspan="2"></td></tr>')
    table = (f'<table id="layers"><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody>'
             f"<tfoot>{foot}</tfoot></table>")
    wrapped = f'<div class="scroll">{table}</div>' if len(r.layers) > SCROLL_ROWS else table
    totals = _items_dl(r.totals)
    lead = tr("report.network.lead", lang, n=len(r.layers), shape=escape(r.input_shape))
    return _section("network", tr("report.network.title", lang), lead, wrapped + "<br>" + totals)


def _layer_tr(row: LayerRow, lang: str, cls: str) -> str:
    lines = "".join(f"<div>{escape(line)}</div>" for line in row.explanation)
    inner = ""
    if row.children:
        sub = "".join(_layer_tr(child, lang, "inner") for child in row.children)
        inner = (f"<details><summary>{escape(tr('report.table.inner', lang, n=len(row.children)))}</summary>"
                 f'<table class="inner"><tbody>{sub}</tbody></table></details>')
    params = integer(row.params, lang) if row.params else "—"
    macs = integer(row.macs, lang) if row.macs else "—"
    return (f'<tr class="{cls} kind-{escape(row.kind)}" data-index="{row.index}" data-params="{row.params}">'
            f'<td class="num idx">{row.index}</td><td class="kind">{escape(row.title)}</td>'
            f'<td class="shape">{escape(row.output)}</td><td class="num">{params}</td><td class="num">{macs}</td>'
            f'<td class="shape">{escape(row.receptive_field)}</td><td class="formula">{lines}{inner}</td></tr>')


def _th(text: str, cls: str) -> str:
    return f'<th class="{cls}">{escape(text)}</th>' if cls else f"<th>{escape(text)}</th>"


def _items_dl(items: list[Item]) -> str:
    inner = "".join(f"<dt>{escape(i.label)}</dt><dd>{escape(i.value)}</dd>" for i in items)
    return f'<dl class="kv">{inner}</dl>'


# ------------------------------------------------------------------ training and results


def _training(r: ReportData) -> str:
    if not r.epochs and r.curves is None:
        return ""
    lang = r.lang
    cols = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s", "images_per_s")
    head = "".join(f'<th class="num">{escape(tr("report.epochs." + c, lang))}</th>' for c in cols)
    body = "".join("<tr>" + "".join(f'<td class="num">{_cell(c, row.get(c), lang)}</td>' for c in cols) + "</tr>"
                   for row in r.epochs)
    table = (f"<details><summary>{escape(tr('report.epochs.show', lang, n=len(r.epochs)))}</summary>"
             f'<div class="scroll"><table id="epochs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
             "</details>")
    return _section("training", tr("report.curves.title", lang), "", _figure(r.curves) + table)


def _cell(column: str, value: Any, lang: str) -> str:
    if value is None:
        return "—"
    if column == "epoch":
        return str(value)
    if column.endswith("_acc"):
        return percent(value, lang)
    if column == "images_per_s":
        return integer(round(float(value)), lang)
    if column == "epoch_time_s":
        return decimal(value, lang, 1)
    return decimal(value, lang, 4)


def _pair_text(true: str, pred: str, count: int, lang: str) -> str:
    key = "report.results.pair_one" if count == 1 else "report.results.pair"
    return tr(key, lang, true=true, pred=pred, n=integer(count, lang))


def _results(r: ReportData) -> str:
    ev = r.evaluation
    if ev is None:
        return ""
    lang = r.lang
    topk = " · ".join(f"top-{k}: {percent(v, lang)}" for k, v in sorted(ev.top_k.items()))
    lead = tr("report.results.lead", lang, data=escape(ev.description), n=integer(ev.n, lang),
              acc=percent(ev.accuracy, lang), loss=decimal(ev.loss, lang), topk=escape(topk))
    pairs = "".join(f"<li>{escape(_pair_text(t, p, c, lang))}</li>"
                    for t, p, c in ev.most_confused if c > 0)
    confused = (f"<h3>{escape(tr('report.results.confused', lang))}</h3><ul class=\"pairs\">{pairs}</ul>"
                if pairs else "")
    return _section("results", tr("report.results.title", lang), lead,
                    _figure(r.confusion) + f'<div class="cols"><div>{_per_class(ev, lang)}</div><div>{confused}</div></div>')


def _per_class(ev: Evaluation, lang: str) -> str:
    head = "".join(_th(tr(k, lang), c) for k, c in (
        ("report.class.name", ""), ("report.class.precision", "num"), ("report.class.recall", "num"),
        ("report.class.f1", "num"), ("report.class.support", "num")))
    rows = "".join(
        f"<tr><td>{escape(str(c['name']))}</td><td class=\"num\">{percent(c['precision'], lang, 1)}</td>"
        f"<td class=\"num\">{percent(c['recall'], lang, 1)}</td><td class=\"num\">{percent(c['f1'], lang, 1)}</td>"
        f"<td class=\"num\">{integer(c['support'], lang)}</td></tr>" for c in ev.per_class)
    table = f'<table id="per-class"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    if len(ev.per_class) > PER_CLASS_OPEN:
        table = f"<div class=\"scroll\">{table}</div>"
    summary = escape(tr("report.class.title", lang, n=len(ev.per_class)))
    opened = " open" if len(ev.per_class) <= PER_CLASS_OPEN else ""
    return f"<details{opened}><summary>{summary}</summary>{table}</details>"


# ------------------------------------------------------------------ what it learned, mistakes, setup


def _learned(r: ReportData) -> str:
    if not (r.filters or r.maps or r.cams):
        return ""
    lang = r.lang
    parts = []
    for pic in r.filters:
        parts.append(f"<h3>{escape(pic.title)}</h3>{_figure(pic)}")
    if r.maps is not None:
        parts.append(f"<h3>{escape(r.maps.title)}</h3>{_figure(r.maps)}")
    if r.cams is not None:
        parts.append(f"<h3>{escape(r.cams.title)}</h3>{_figure(r.cams)}")
    return _section("learned", tr("report.learned.title", lang), escape(tr("report.learned.lead", lang)),
                    "".join(parts))


def _mistakes(r: ReportData) -> str:
    if r.mistakes is None:
        return ""
    return _section("mistakes", r.mistakes.title, "", _figure(r.mistakes))


def _setup(r: ReportData) -> str:
    lang = r.lang
    inner = (f'<div class="cols"><div><h3>{escape(tr("report.setup.training", lang))}</h3>{_items_dl(r.config)}</div>'
             f'<div><h3>{escape(tr("report.setup.data", lang))}</h3>{_items_dl(r.data)}</div></div>')
    return _section("setup", tr("report.setup.title", lang), "", inner)
