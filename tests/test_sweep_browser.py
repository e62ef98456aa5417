"""The sweep report in a real browser (headless Chromium driven by Playwright): it loads offline, every
figure decodes, the table lists every trial of the study with the validation winner highlighted, nothing
is fetched, and a screenshot is produced.

Slow (CI runs it); skipped with the reason when Chromium or Playwright is missing (see
``test_report_browser.py``). ``CNNLAB_SWEEP_REPORT=SWEEP`` checks an existing sweep folder instead of a
tiny generated one, and ``CNNLAB_SWEEP_SCREENSHOT=FILE.png`` keeps the screenshot (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from _sweep_helpers import image_folder, spec_file, trials_of
from test_report_browser import _open

pytestmark = pytest.mark.slow


def _sweep(tmp: Path) -> Path:
    given = os.environ.get("CNNLAB_SWEEP_REPORT")
    if given:
        return Path(given)
    os.environ["CNNLAB_CACHE"] = str(tmp / "cache")
    from cnnlab.sweep import run_sweep

    run_sweep(str(spec_file(tmp / "tiny.yaml")), str(image_folder(tmp / "img")),
              ["lr=0.003,0.03", "batch_size=16,32", "epochs=2", "augment=false"], out=tmp / "sw",
              processes=False, quiet=True, report=False)
    return tmp / "sw"


def test_sweep_report_renders_in_chromium(browser, tmp_path: Path) -> None:
    from cnnlab.sweep import load_sweep, write_sweep_report

    folder = _sweep(tmp_path)
    page_path = write_sweep_report(folder, out=tmp_path / "report.html")
    page, problems, requests = _open(browser, page_path)
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({w: e.naturalWidth, h: e.naturalHeight, ok: e.complete}))")
    assert len(images) >= 3 and all(i["ok"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    rows = page.eval_on_selector_all("#trials tbody tr", "els => els.map(e => +e.dataset.trial)")
    trials = [t for t in trials_of(folder) if not t.user_attrs.get("surplus")]
    assert sorted(rows) == sorted(t.number for t in trials)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(done, key=lambda t: (t.value, -t.number))
    assert page.eval_on_selector("#trials tr.best", "e => +e.dataset.trial") == best.number
    assert load_sweep(folder).best.number == best.number
    shot = tmp_path / "sweep.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("CNNLAB_SWEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    assert problems == [] and requests == []
    page.close()
