"""Rendering alone (no model, no training): big networks stay readable and small, text is escaped."""

from __future__ import annotations

from _report_helpers import parse
from cnnlab.analysis import analyze
from cnnlab.i18n import decimal, integer, percent
from cnnlab.report.collect import _row
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


def _handmade() -> ReportData:
    """A report written out by hand (no analysis, no model), so only the renderer shapes the golden file."""
    from cnnlab.report.types import Evaluation, LayerRow

    layers = [
        LayerRow(0, "conv", "conv 3×3, 1→4 + relu", "4×8×8", 40, 2304, "3×3",
                 ["(n·m·l+1)·k = (3·3·1+1)·4 = 40"]),
        LayerRow(1, "pool", "max pool 2×2", "4×4×4", 0, 0, "4×4", ["no parameters"]),
        LayerRow(2, "residual", "residual block", "4×4×4", 296, 4608, "8×8", ["branch + shortcut"],
                 children=[LayerRow(0, "conv", "conv 3×3, 4→4", "4×4×4", 148, 2304, "6×6", ["148"])]),
        LayerRow(3, "output", "output 64→2 (logits)", "(2)", 130, 128, "—", ["(64+1)·2 = 130"]),
    ]
    ev = Evaluation("validation split of toy (10 images)", 10, 0.8, 0.4321, {1: 0.8},
                    [{"name": "cat", "precision": 0.75, "recall": 1.0, "f1": 0.857, "support": 6},
                     {"name": "<dog>", "precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4}],
                    [("<dog>", "cat", 2)])
    return ReportData(
        lang="en", title="toy", subtitle="a hand-written report", run_path="runs/toy",
        generated="2026-01-01 00:00 UTC", version="0.1.0",
        headline=[Item("validation accuracy", "80.00 %", "on 10 images")], layers=layers,
        totals=[Item("parameters", "466")], total_params=466, input_shape="1×8×8",
        config=[Item("epochs", "2")], data=[Item("source", "toy")],
        epochs=[{"epoch": 1, "train_loss": 0.9, "train_acc": 0.5, "val_loss": 0.7, "val_acc": 0.6, "lr": 0.01,
                 "epoch_time_s": 1.25, "images_per_s": 812.4}],
        curves=Picture("curves", "Training curves", "loss and accuracy", b"\x89PNG\r\n", 4, 3),
        evaluation=ev, notes=["a note"], warnings=["a warning"],
    )


def test_golden_page_body() -> None:
    """Regenerate after an intended change: CNNLAB_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_report_render.py"""
    import os
    from pathlib import Path

    html = render_html(_handmade())
    body = html[html.index("<main>"): html.index("</main>") + len("</main>")]
    path = Path(__file__).parent / "golden" / "report_handmade_main.html"
    if os.environ.get("CNNLAB_REGEN_GOLDEN"):
        path.write_text(body, encoding="utf-8")
    assert body == path.read_text(encoding="utf-8"), f"report rendering changed; regenerate with CNNLAB_REGEN_GOLDEN=1 ({path})"


def test_confusion_pairs_read_as_english_and_portuguese() -> None:
    from cnnlab.report.render import _pair_text

    assert _pair_text("9", "4", 1, "en") == "9 taken for 4: once"
    assert _pair_text("9", "4", 2, "en") == "9 taken for 4: 2 times"
    assert _pair_text("9", "4", 1, "pt") == "9 tomado por 4: 1 vez"
    assert _pair_text("9", "4", 1200, "pt") == "9 tomado por 4: 1.200 vezes"
