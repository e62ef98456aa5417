"""Benchmark: how fast the explore page answers a new image, a layer and a neuron, measured in the browser.

    .venv/bin/python bench/explore_latency.py keras-mnist [--rounds 40]
    .venv/bin/python bench/explore_latency.py resnet18 [--rounds 25]

``keras-mnist``: a run trained here for one epoch on the bundled MNIST sample (kept in
``$TMPDIR/cnnlab-bench-explore-mnist``), explored with its own validation split, as ``cnnlab explore RUN``.
``resnet18``: the spec at 224×224 on random weights (nobody trains it on 2 cores; the arithmetic costs
the same), with 16 real photos of ``/work/shared/data/cats_vs_dogs/validation`` (``$CNNLAB_CATS``).

The real server (uvicorn on 127.0.0.1) and the real page in headless Chromium (Playwright, system
``/usr/bin/chromium``). Each round clicks a thumbnail (``image``), a layer title (``layer``) and a point
of a feature map (``neuron``), cycling through images, layers and channels. The page itself times each
action, from the click to the end of drawing (``performance.now()``, kept in ``window.cnnlabTimings``):
fetch, server compute, JSON, decoding and canvas painting included. Grad-CAM, drawn after an image
for small networks, is a separate action and is awaited (not counted) before the next click.
Targets (issue 12): p95 <= 150 ms for keras-mnist, <= 500 ms for resnet18, on 2 CPU cores.

Prints the figures and writes ``bench/results/explore_latency_<model>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
TARGET_MS = {"keras-mnist": 150.0, "resnet18": 500.0}


def mnist_run() -> Path:
    from cnnlab.workflows import train

    out = Path(tempfile.gettempdir()) / "cnnlab-bench-explore-mnist"
    if not (out / "checkpoints" / "best.safetensors").exists():
        train("keras-mnist", "sample", out=out, epochs=1, quiet=True, report=False, threads=2)
    return out


def cats_images(n: int = 16):
    from cnnlab.data import ImageSet, load_image

    root = Path(os.environ.get("CNNLAB_CATS", "/work/shared/data/cats_vs_dogs/validation"))
    files = sorted((root / "cats").glob("*.jpg"))[: n // 2] + sorted((root / "dogs").glob("*.jpg"))[: n // 2]
    pixels = np.stack([load_image(f, (3, 224, 224), "crop") for f in files])  # (n, 3, 224, 224)
    labels = np.array([0 if f.parent.name == "cats" else 1 for f in files])
    return ImageSet(pixels, labels, ["cats", "dogs"], [str(f) for f in files])


def explorer(model: str, threads: int):
    from cnnlab.explore import open_explorer
    from cnnlab.explore.session import choose_threads

    choose_threads(threads)  # what `cnnlab explore --threads` does (0: auto, 1 on a busy machine)
    if model == "keras-mnist":
        return open_explorer(mnist_run(), max_images=48)
    ex = open_explorer("resnet18", data=cats_images())
    ex.classes = [str(i) for i in range(len(ex.classes))]
    return ex


def start_server(ex):
    import uvicorn

    from cnnlab.explore import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ex), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/"


def done(page) -> int:
    return int(page.evaluate("() => +document.body.dataset.done || 0"))


def wait_idle(page, before: int, settle_ms: int = 60) -> None:
    """Wait for one more finished action, then for any follow-up (Grad-CAM) to finish too."""
    while done(page) <= before:
        page.wait_for_timeout(5)
    while True:
        n = done(page)
        page.wait_for_timeout(settle_ms)
        if done(page) == n:
            return


def click(page, selector: str, **kw) -> dict:
    before = done(page)
    page.click(selector, **kw)
    wait_idle(page, before)
    timings = page.evaluate("() => window.cnnlabTimings")
    return timings[before]  # the action this click started (a Grad-CAM after it comes later)


def measure(model: str, rounds: int, threads: int) -> dict:
    from playwright.sync_api import sync_playwright

    load_start = os.getloadavg()
    ex = explorer(model, threads)
    server, url = start_server(ex)
    ids = ex.image_ids()
    layers = list(range(len(ex.layers)))
    spatial = [i for i in layers if len(ex.analysis.layers[i].output_shape) == 3]
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"image": [], "layer": [], "neuron": []}
    answers: list[float] = []  # of an image action: ms until the server's answer arrived (the rest is drawing)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium"),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_selector("canvas.map")
        wait_idle(page, 0, settle_ms=300)
        for r in range(rounds + 2):  # the first two rounds warm up (not counted)
            image = ids[(r + 1) % len(ids)]
            t_image = click(page, f'.thumb[data-id="{image}"]')
            layer = layers[r % len(layers)]
            t_layer = click(page, f'.layer-title[data-layer="{layer}"]')
            target = spatial[r % len(spatial)]
            canvases = page.locator(f'canvas.map[data-layer="{target}"]')
            k = int(rng.integers(canvases.count()))
            t_neuron = click(page, f'canvas.map[data-layer="{target}"] >> nth={k}',
                             position={"x": int(rng.integers(2, 62)), "y": int(rng.integers(2, 62))})
            if r >= 2:
                for name, t in (("image", t_image), ("layer", t_layer), ("neuron", t_neuron)):
                    assert t["what"] == name, t
                    times[name].append(float(t["ms"]))
                answers.extend(float(ms) for step, ms in t_image.get("phases", []) if step == "answer")
        browser.close()
    server.should_exit = True
    stats = {name: {"n": len(v), "p50_ms": round(float(np.percentile(v, 50)), 1),
                    "p95_ms": round(float(np.percentile(v, 95)), 1), "max_ms": round(max(v), 1)}
             for name, v in times.items()}
    stats["image_answer"] = {"n": len(answers), "p50_ms": round(float(np.percentile(answers, 50)), 1),
                             "p95_ms": round(float(np.percentile(answers, 95)), 1), "max_ms": round(max(answers), 1)}
    return {"model": model, "rounds": rounds, "target_p95_ms": TARGET_MS[model], "stats": stats,
            "console_errors": errors, "cpu_count": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
            "loadavg_at_start": load_start, "torch_threads": _threads(), "python": platform.python_version(), "images": len(ids)}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(TARGET_MS))
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = as `cnnlab explore` chooses")
    args = parser.parse_args()
    result = measure(args.model, args.rounds, args.threads)
    for name, s in result["stats"].items():
        print(f"{args.model:12s} {name:12s} p50 {s['p50_ms']:7.1f} ms  p95 {s['p95_ms']:7.1f} ms  max {s['max_ms']:7.1f} ms  (n={s['n']})")
    print(f"target p95 <= {result['target_p95_ms']:.0f} ms; load average at the end {result['loadavg_at_end']}")
    out = ROOT / "results" / f"explore_latency_{args.model}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
