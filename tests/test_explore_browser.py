"""The explore page in real headless Chromium (Playwright), served by the real server (uvicorn on 127.0.0.1):
pick a validation image, click a layer and a neuron, and the number on the page equals torch's
activation while the arithmetic on the page adds up to it; upload a file; open the static export from
disk; no console errors anywhere. Screenshots go to ``tmp_path`` (and to ``$CNNLAB_EXPLORE_SHOTS`` if set).

Slow (marked ``slow``; CI runs it). Skipped when Chromium or Playwright is missing, as the report's test.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _report_helpers import tiny_run

pytestmark = pytest.mark.slow
pytest.importorskip("uvicorn", reason="the explore server needs the [explore] extra (starlette, uvicorn)")

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("explore") / "run")


@pytest.fixture(scope="module")
def server(trained):
    import uvicorn

    from cnnlab.explore import create_app, open_explorer

    run, bundle = trained
    ex = open_explorer(run, data=bundle)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(ex), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the explore server did not start"
    yield f"http://127.0.0.1:{port}/", ex
    srv.should_exit = True
    thread.join(timeout=10)


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "file:", "data:", "blob:")) else None)
    page.goto(url, wait_until="load")
    page.wait_for_selector("canvas.map")
    _done(page, 0)
    return page, problems, outside


def _count(page) -> int:
    return int(page.evaluate("() => +document.body.dataset.done || 0"))


def _done(page, before: int, timeout: float = 30.0) -> None:
    """Wait until the page has finished one more action and any follow-up (a neuron click on another
    layer also loads that layer): no new action for 150 ms. The page's CSP forbids wait_for_function."""
    deadline = time.monotonic() + timeout
    while _count(page) <= before:
        assert time.monotonic() < deadline, "the page did not finish the action"
        page.wait_for_timeout(20)
    while True:
        n = _count(page)
        page.wait_for_timeout(150)
        if _count(page) == n:
            return


def _click(page, selector: str, **kw) -> None:
    before = _count(page)
    page.click(selector, **kw)
    _done(page, before)


def _values(page, selector: str) -> list[float]:
    found = page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.value)")
    return [float(v) for v in found if v != "null"]  # "null": a padding cell of a pooling window


def _value(page, selector: str) -> float:
    return float(page.get_attribute(selector, "data-value"))


def _shot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 10_000
    if os.environ.get("CNNLAB_EXPLORE_SHOTS"):
        target = Path(os.environ["CNNLAB_EXPLORE_SHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / name)
    return shot


def _reference(trained, pixels: np.ndarray) -> list[torch.Tensor]:
    """Every layer's output for ``pixels`` from the run as `load_run` gives it (independent of explore)."""
    from cnnlab.train import load_run

    run = load_run(trained[0])
    outs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o.detach()[0])) for m in run.model.layers]
    try:
        with torch.no_grad():
            run.model(run.preprocess(pixels[None]))
    finally:
        for h in hooks:
            h.remove()
    return outs


def test_neuron_on_the_page_equals_torch(browser, server, trained, tmp_path) -> None:
    url, ex = server
    page, problems, outside = _open(browser, url)
    _click(page, '.thumb[data-id="v3"]')
    assert page.get_attribute(".thumb.selected", "data-id") == "v3"
    ref = _reference(trained, trained[1].val.images[ex_index(ex, "v3", trained)])

    _click(page, '.layer-title[data-layer="2"]')
    assert "(n·m·l+1)·k = (3·3·4+1)·6 = 222" in page.inner_text("#explanation")
    _click(page, 'canvas.map[data-layer="2"][data-channel="3"]', position={"x": 40, "y": 20})
    body = page.locator("#neuron-body")
    c, y, x = (int(body.get_attribute(f"data-{k}")) for k in ("channel", "y", "x"))
    value = _value(page, "#neuron-value")
    assert value == pytest.approx(float(ref[2][c, y, x]), abs=1e-5)
    partials, bias, total = _values(page, "#neuron .partial"), _value(page, "#neuron .bias"), _value(page, "#neuron .sum")
    assert len(partials) == 4 and sum(partials) + bias == pytest.approx(total, abs=1e-6)
    assert max(total, 0.0) == pytest.approx(value, abs=1e-5)  # relu
    assert _value(page, "#neuron .activation") == pytest.approx(value, abs=1e-5)
    window = np.array(_values(page, '#neuron .channel[data-channel="0"] table.window td'))
    kernel = np.array(_values(page, '#neuron .channel[data-channel="0"] table.kernel td'))
    assert float((window * kernel).sum()) == pytest.approx(partials[0], abs=1e-5)
    assert page.locator("#rf").count() == 1

    _click(page, 'canvas.map[data-layer="1"][data-channel="2"]', position={"x": 10, "y": 50})  # max pool
    c, y, x = (int(body.get_attribute(f"data-{k}")) for k in ("channel", "y", "x"))
    assert _value(page, "#neuron-value") == pytest.approx(float(ref[1][c, y, x]), abs=1e-5)
    assert _value(page, "#neuron .pooled") == max(_values(page, "#neuron table.window td"))

    _click(page, 'canvas.flat[data-layer="4"]', position={"x": 20, "y": 4})  # dense unit
    unit = int(body.get_attribute("data-channel"))
    total = _value(page, "#neuron .sum")
    terms = sum(_values(page, "#neuron .product")) + _value(page, "#neuron .rest") + _value(page, "#neuron .bias")
    assert terms == pytest.approx(total, abs=1e-5)
    assert _value(page, "#neuron-value") == pytest.approx(float(ref[4][unit]), abs=1e-5)

    probs = [float(p) for p in page.eval_on_selector_all(".prob", "els => els.map(e => e.dataset.p)")]
    assert sorted(probs, reverse=True) == pytest.approx(sorted(torch.softmax(ref[-1], 0).tolist(), reverse=True), abs=1e-6)
    _click(page, "#patches-button")
    assert page.locator("#patch-grid img").count() > 0
    _shot(page, tmp_path, "explore-neuron.png")
    assert problems == [] and outside == []
    page.close()


def ex_index(ex, key: str, trained) -> int:
    """Index in the validation split of the explorer's image ``key`` (matched by pixels)."""
    val = trained[1].val.images
    hits = [i for i in range(len(val)) if np.array_equal(val[i], ex.entries[key].pixels)]
    assert hits
    return hits[0]


def test_upload_an_image_file(browser, server, trained, tmp_path) -> None:
    from PIL import Image

    from cnnlab.data import load_image

    url, _ = server
    page, problems, outside = _open(browser, url)
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
    pixels[8:30, 10:32] = 230  # a bright square, larger than the input: the run's crop/resize applies
    path = tmp_path / "square.png"
    Image.fromarray(pixels).save(path)
    before = _count(page)
    page.set_input_files("#upload", str(path))
    _done(page, before)
    page.wait_for_selector(".thumb.selected")
    key = page.get_attribute(".thumb.selected", "data-id")
    assert key.startswith("u")
    ref = _reference(trained, load_image(path, (3, 16, 16), "crop"))
    probs = {int(k): float(p) for k, p in page.eval_on_selector_all(".prob", "els => els.map(e => [e.dataset.cls, e.dataset.p])")}
    expected = torch.softmax(ref[-1], 0)
    assert [probs[k] for k in range(2)] == pytest.approx(expected.tolist(), abs=1e-6)
    assert page.locator(f'.thumb[data-id="{key}"] img').count() == 1
    _shot(page, tmp_path, "explore-upload.png")

    dropped = tmp_path / "dropped.png"
    Image.fromarray(pixels[::-1].copy()).save(dropped)
    transfer = page.evaluate_handle(
        "(data) => { const t = new DataTransfer(); "
        "t.items.add(new File([new Uint8Array(data)], 'dropped.png', {type: 'image/png'})); return t; }",
        list(dropped.read_bytes()))
    before = _count(page)
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    _done(page, before)
    second = page.get_attribute(".thumb.selected", "data-id")
    assert second.startswith("u") and second != key
    ref = _reference(trained, load_image(dropped, (3, 16, 16), "crop"))
    probs = {int(k): float(p) for k, p in page.eval_on_selector_all(".prob", "els => els.map(e => [e.dataset.cls, e.dataset.p])")}
    assert [probs[k] for k in range(2)] == pytest.approx(torch.softmax(ref[-1], 0).tolist(), abs=1e-6)
    assert problems == [] and outside == []
    page.set_input_files("#upload", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}])
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot read image 'notes.png'" in page.inner_text("#error")
    # Chromium itself logs every 4xx answer; that one (the refused file) is the only message allowed
    assert all("status of 400" in p for p in problems) and len(problems) <= 1, problems
    page.close()


def test_static_export_works_from_disk(browser, server, tmp_path) -> None:
    from cnnlab.explore import export_static

    _, ex = server
    index = export_static(ex, tmp_path / "site", max_pages=2)
    page, problems, outside = _open(browser, index.resolve().as_uri())
    assert page.locator(".thumb").count() == len(ex.image_ids())
    assert page.locator("#upload-box").is_hidden()
    _click(page, '.thumb[data-id="v1"]')
    _click(page, '.layer-title[data-layer="0"]')
    assert "(3·3·3+1)·4 = 112" in page.inner_text("#explanation")
    assert page.locator("#filters canvas").count() == 4
    assert page.locator("#cam-box canvas.heat").count() == 1
    _click(page, 'canvas.map[data-layer="0"][data-channel="0"]')
    assert "not in this static copy" in page.inner_text("#error")
    _shot(page, tmp_path, "explore-static.png")
    assert problems == [] and outside == []
    page.close()


def test_untrained_spec_is_marked(browser, tmp_path) -> None:
    from cnnlab.explore import export_static, open_explorer

    ex = open_explorer("keras-mnist", data="sample", max_images=3)
    page, problems, _ = _open(browser, export_static(ex, tmp_path / "spec").resolve().as_uri())
    assert "UNTRAINED" in page.inner_text("#untrained")
    assert problems == []
    page.close()
