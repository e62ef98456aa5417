"""Rendering alone (no model, no training): big networks stay readable and small, text is escaped."""

from __future__ import annotations

from _report_helpers import parse
from cnnlab.analysis import analyze
from cnnlab.report.collect import _row
from cnnlab.report.fmt import decimal, integer, percent
from cnnlab.report.render import render_html
from cnnlab.report.types import Item, Picture, ReportData


def _data(name: str, lang: str = "en", **extra) -> ReportData:
    a = analyze(name, lang=lang)
    return ReportData(
        lang=lang, title=a.name, subtitle="", run_path="runs/x", generated="2026-01-01 00:00 UTC", version="0",
        headline=[Item("parameters", integer(a.total_params, lang))], layers=[_row(la) for la in a.layers],
        totals=[], total_params=a.total_params, input_shape="3×224×224", config=[], data=[], epochs=[], **extra)


def test_vgg16_table_has_every_layer_scrolls_and_stays_small(tmp_path) -> None:
    report = _data("vgg16")
    html = render_html(report)
    out = tmp_path / "vgg.html"
    out.write_text(html, encoding="utf-8")
    page = parse(out)
    a = analyze("vgg16")
    assert len(page.layer_rows) == len(a.layers)
    assert sum(int(r["data-params"]) for r in page.layer_rows) == 138_357_544  # Simonyan & Zisserman, config D
    assert '<div class="scroll"><table id="layers">' in html  # a long table scrolls in its own box
    assert len(html.encode()) < 200_000


def test_short_table_does_not_scroll() -> None:
    html = render_html(_data("lenet5"))
    assert '<div class="scroll"><table id="layers">' not in html and '<table id="layers">' in html


def test_residual_blocks_fold_their_inner_layers() -> None:
    a = analyze("resnet18")
    blocks = [la for la in a.layers if la.children]
    assert blocks, "resnet18 has residual blocks"
    html = render_html(_data("resnet18"))
    assert html.count('<tr class="inner') == sum(len(b.children) for b in blocks)
    assert html.count("<details><summary>") >= len(blocks)


def test_text_from_the_run_is_escaped(tmp_path) -> None:
    report = _data("lenet5")
    report.title = "<script>alert(1)</script>"
    report.notes = ["a & b <i>"]
    report.curves = Picture("curves", "t<", "c>", b"\x89PNG", 1, 1)
    html = render_html(report)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "a &amp; b &lt;i&gt;" in html and 'alt="t&lt;"' in html


def test_number_formats_follow_the_language() -> None:
    assert (integer(1234567, "en"), integer(1234567, "pt")) == ("1,234,567", "1.234.567")
    assert (percent(0.9876, "en"), percent(0.9876, "pt")) == ("98.76 %", "98,76 %")
    assert decimal(float("nan"), "en") == "—" and decimal(0.5, "pt", 2) == "0,50"
