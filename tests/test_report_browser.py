"""The report in a real browser (headless Chromium driven by Playwright): it loads offline, every image
decodes, the layer table is right, nothing is fetched, and a screenshot is produced.

Slow (marked ``slow``; CI runs it). Skipped, with the reason, when Chromium or Playwright is missing:
install them with ``apt-get install chromium`` and ``pip install playwright`` (the Python package only;
the system Chromium is used, no browser download). ``CNNLAB_CHROMIUM`` may point at another binary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _report_helpers import SPEC, tiny_run

pytestmark = pytest.mark.slow

def _open(browser, path: Path, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, problems, requests


def test_report_renders_in_chromium(browser, tmp_path) -> None:
    from cnnlab.model import build
    from cnnlab.report import write_report

    run_path, bundle = tiny_run(tmp_path / "run")
    report = write_report(run_path, data=bundle.val)
    page, problems, requests = _open(browser, report)
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({w: e.naturalWidth, h: e.naturalHeight, ok: e.complete, alt: e.alt}))")
    assert len(images) >= 7
    assert all(i["ok"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    rows = page.eval_on_selector_all("#layers > tbody > tr.layer", "els => els.map(e => +e.dataset.params)")
    model = build(SPEC)
    assert len(rows) == len(model.layers)
    assert sum(rows) == sum(p.numel() for p in model.parameters())
    total = page.inner_text("#total-params")
    assert int(total.replace(",", "")) == sum(p.numel() for p in model.parameters())
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"
    assert problems == [] and requests == []
    page.close()


def test_vgg16_table_scrolls_inside_its_box(browser, tmp_path) -> None:
    from cnnlab.report.render import render_html
    from test_report_render import _data

    path = tmp_path / "vgg.html"
    path.write_text(render_html(_data("vgg16")), encoding="utf-8")
    page, problems, _ = _open(browser, path)
    box = page.eval_on_selector("#layers", "t => { const b = t.parentElement; "
                                "return {client: b.clientHeight, scroll: b.scrollHeight, rows: t.tBodies[0].rows.length}; }")
    assert box["scroll"] > box["client"] > 0  # a bounded box whose content scrolls
    assert box["client"] < 900
    assert problems == []
    page.close()
