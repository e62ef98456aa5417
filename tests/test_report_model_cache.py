"""The report's kept model results (``cnnlab.report.cache``): a warm report is the page a fresh one
writes, without loading the model (nor importing torch); every input of the key invalidates it; a
damaged cache file is recomputed.

The reference page is the one written from a loaded ``Run`` object, which never uses this cache.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _report_helpers import tiny_run
from _trust_data import stripes_folder
from cnnlab.report import cache as report_cache
from cnnlab.report import collect
from cnnlab.report.api import write_report
from cnnlab.train import load_run
from cnnlab.train import run as run_module

GENERATED = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


def _page(path: Path) -> bytes:
    return GENERATED.sub(b"(generated)", path.read_bytes())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):  # noqa: ANN001, ANN201
    folder, bundle = tiny_run(tmp_path_factory.mktemp("model-cache") / "run")
    return folder, bundle


@pytest.fixture()
def loads(monkeypatch):  # noqa: ANN001, ANN201
    """Counts the model loads of the report (``load_run`` as the report's model loader calls it)."""
    calls: list[str] = []
    real = run_module.load_run

    def counted(path, which="best", device="cpu"):  # noqa: ANN001, ANN202
        calls.append(str(path))
        return real(path, which, device)

    monkeypatch.setattr(run_module, "load_run", counted)
    return calls


def _reference(folder: Path, data, out: Path, lang: str = "en") -> bytes:  # noqa: ANN001
    """The page from a loaded Run (no report cache involved)."""
    write_report(load_run(folder), data=data, lang=lang, out=out, split="val")
    return _page(out)


def test_warm_report_is_the_fresh_page_without_loading_the_model(tiny, tmp_path, loads) -> None:
    folder, bundle = tiny
    kept = folder / "cache" / report_cache.file_name("best", "en")
    kept.unlink(missing_ok=True)
    write_report(folder, data=bundle.val, out=tmp_path / "cold.html", split="val")
    assert len(loads) == 1 and kept.is_file()
    write_report(folder, data=bundle.val, out=tmp_path / "warm.html", split="val")
    assert len(loads) == 1  # the warm report did not load the model
    reference = _reference(folder, bundle.val, tmp_path / "ref.html")
    assert _page(tmp_path / "cold.html") == reference
    assert _page(tmp_path / "warm.html") == reference
    assert reference.count(b"data:image/png;base64,") >= 6  # curves, confusion, filters, maps, cam, mistakes


def _collect(folder: Path, images, cache: Path, lang: str = "en"):  # noqa: ANN001, ANN202
    info = run_module.read_run_info(folder)
    return collect.collect_report(info, images, lang=lang, cache=cache, model_run=lambda: run_module.load_run(folder))


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def computed(monkeypatch):  # noqa: ANN001, ANN201
    """Replaces the model's work (evaluation and drawing) by a quick stand-in whose results name the
    call that made them; returns the list of calls, so a test sees whether the report recomputed."""
    from cnnlab.inference.evaluation import result_for
    from cnnlab.report.types import Picture

    calls: list[str] = []

    def stand_in(run, images, analysis, lang):  # noqa: ANN001, ANN202
        calls.append(lang)
        n = len(calls)
        logp = np.log(np.full((len(images.labels), len(run.classes)), 1 / len(run.classes), np.float32))
        logp[:, 0] -= n / 100  # results differ from call to call
        pictures = {"curves": Picture("curves", f"call {n}", lang, _png(n, 2), n, 2),
                    "filters": [Picture(f"filters-{i}", "f", "", _png(3, i + 1), 3, i + 1) for i in range(2)]}
        return result_for(images, run.classes, logp), report_cache.Kept(logp, pictures)

    monkeypatch.setattr(collect, "_compute", stand_in)
    return calls


def _pictures(report) -> dict[str, bytes]:  # noqa: ANN001
    return {p.key: p.png for p in report.pictures()}


def test_each_input_of_the_key_invalidates_the_kept_results(tiny, tmp_path, computed) -> None:
    """One cache file for every call: a call whose input changed must recompute; if the key left that
    input out, the kept results of other weights, images or language would be served."""
    from cnnlab.data import ImageSet
    from cnnlab.train.checkpoint import read_weights, write_weights

    folder, bundle = tiny
    cache = tmp_path / "kept.npz"
    first = _collect(folder, bundle.val, cache)
    again = _collect(folder, bundle.val, cache)
    assert len(computed) == 1  # same inputs: kept
    assert _pictures(again) == _pictures(first) and again.evaluation == first.evaluation

    _collect(folder, bundle.val, cache, lang="pt")  # the language (titles, captions, text in the figures)
    assert computed == ["en", "pt"]

    images = bundle.val.images.copy()
    images[0, 0, 0, 0] ^= 0xFF  # one pixel of the evaluated images
    changed = ImageSet(images, bundle.val.labels, bundle.val.classes, bundle.val.sources)
    _collect(folder, changed, cache)
    assert len(computed) == 3

    stem = folder / "checkpoints" / "best"
    weights, meta = read_weights(stem)
    original = {k: v.clone() for k, v in weights.items()}
    try:
        name = next(k for k in weights if k.endswith("weight"))
        weights[name] = weights[name] * 1.5  # the weights
        write_weights(stem, weights, meta)
        got = _collect(folder, changed, cache)
        assert len(computed) == 4
        assert got.curves.title == "call 4"
    finally:
        write_weights(stem, original, meta)
    _collect(folder, changed, cache)  # the original weights again: their entry was replaced, so recomputed
    assert len(computed) == 5


def test_kept_evaluation_equals_a_fresh_one(tiny, tmp_path) -> None:
    """The numbers rebuilt from the kept log-probabilities equal a fresh evaluation's, and PyTorch's."""
    import torch

    folder, bundle = tiny
    cache = tmp_path / "kept.npz"
    cold = _collect(folder, bundle.val, cache)
    warm = _collect(folder, bundle.val, cache)
    assert warm.evaluation == cold.evaluation
    run = load_run(folder)
    with torch.no_grad():
        logits = run.model(run.preprocess(bundle.val.images))  # (N, K)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(bundle.val.labels)).item()
    accuracy = (logits.argmax(1).numpy() == bundle.val.labels).mean()
    assert warm.evaluation.loss == pytest.approx(loss, rel=1e-5)
    assert warm.evaluation.accuracy == pytest.approx(accuracy)


def test_key_changes_with_every_input(tiny) -> None:
    """``cache_key`` against each input it must depend on, one at a time."""
    import dataclasses

    folder, bundle = tiny
    info = run_module.read_run_info(folder)
    weights = report_cache.weights_digest(info.weights_file)
    val = bundle.val

    def key(run=info, digest=weights, images=val, lang="en", batch=256, engine="auto"):  # noqa: ANN001, ANN202
        return report_cache.cache_key(run, digest, images, lang, batch, engine)

    base = key()
    assert key() == base
    pixels = val.images.copy()
    pixels[-1, -1, -1, -1] ^= 1
    labels = val.labels.copy()
    labels[0] = 1 - labels[0]
    variants = {
        "weights": key(digest="0" * 64),
        "pixels": key(images=dataclasses.replace(val, images=pixels)),
        "labels": key(images=dataclasses.replace(val, labels=labels)),
        "class names": key(images=dataclasses.replace(val, classes=["square", "empty"])),
        "no images": key(images=None),
        "language": key(lang="pt"),
        "batch": key(batch=64),
        "engine": key(engine="torch"),
        "metrics": key(run=dataclasses.replace(info, metrics=[*info.metrics[:-1], {**info.metrics[-1], "val_acc": 0.0}])),
        "checkpoint": key(run=dataclasses.replace(info, which="last")),
    }
    assert all(v != base for v in variants.values()), [k for k, v in variants.items() if v == base]
    assert len(set(variants.values())) == len(variants)
    for name in ("spec.yaml", "classes.json", "data.json"):  # the files the model and its inputs come from
        path = folder / name
        before = path.read_bytes()
        try:
            path.write_bytes(before + b"\n")
            assert key() != base, name
        finally:
            path.write_bytes(before)
    assert key() == base


def test_a_damaged_cache_file_is_recomputed(tiny, tmp_path, computed) -> None:
    folder, bundle = tiny
    cache = tmp_path / "kept.npz"
    _collect(folder, bundle.val, cache)
    raw = cache.read_bytes()
    with np.load(cache) as npz:
        arrays = {k: npz[k] for k in npz.files}
    entry = collect._cache_entry(run_module.read_run_info(folder), bundle.val, "en")
    damages = {
        "truncated": lambda: cache.write_bytes(raw[: len(raw) // 2]),
        "garbage": lambda: cache.write_bytes(b"\x00garbage" * 100),
        "empty": lambda: cache.write_bytes(b""),
        "foreign npz": lambda: np.savez(cache, key=np.array("x"), logp=np.zeros((2, 2), np.float32)),
        "oversized": lambda: cache.write_bytes(raw + b"\x00" * report_cache.MAX_PICTURE_BYTES),
        "not a png": lambda: np.savez(cache, **{**arrays, "png0": np.frombuffer(b"not a png at all" * 4, np.uint8)}),
        "wrong size": lambda: np.savez(cache, **{**arrays, "logp": arrays["logp"][:-1]}),
        "bad manifest": lambda: np.savez(cache, **{**arrays, "manifest": np.array("[{")}),
        "a directory": lambda: (cache.unlink(), cache.mkdir()),
    }
    for n, (name, damage) in enumerate(damages.items(), start=2):
        damage()
        got = _collect(folder, bundle.val, cache)  # no error
        assert len(computed) == n, name  # recomputed
        assert got.curves.title == f"call {n}", name
        if cache.is_dir():
            cache.rmdir()
            continue
        assert report_cache.load(cache, entry.key, entry.n, entry.k) is not None, name  # and replaced


def test_a_run_changed_while_drawing_is_not_kept(tiny, tmp_path, monkeypatch, computed) -> None:
    """If the checkpoint's bytes change between the key and the drawing, nothing is stored under the key."""
    folder, bundle = tiny
    cache = tmp_path / "kept.npz"
    digests = iter(["a" * 64, "b" * 64])
    monkeypatch.setattr(report_cache, "weights_digest", lambda path: next(digests))
    _collect(folder, bundle.val, cache)
    assert len(computed) == 1 and not cache.exists()


WARM_SCRIPT = """
import sys
from cnnlab.cli import main
code = main(["report", sys.argv[1], "--out", sys.argv[2]])
heavy = sorted(m for m in ("torch", "matplotlib", "onnxruntime") if m in sys.modules)
print("IMPORTED", ",".join(heavy) or "-")
sys.exit(code)
"""


@pytest.mark.slow
def test_warm_cli_report_imports_neither_torch_nor_matplotlib(tmp_path, monkeypatch) -> None:
    """A run trained on an image folder: training's report fills the cache, and the next `cnnlab report`
    (which reloads the held-out split from the folder) serves it without torch or matplotlib."""
    from cnnlab.workflows import train

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "data-cache"))
    data = stripes_folder(tmp_path / "stripes", n=24)
    spec = {"name": "stripes", "input": [3, 12, 12],
            "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten", {"output": 2}]}
    run = tmp_path / "run"
    train(spec, str(data), out=run, quiet=True, epochs=1, batch_size=8, threads=1)
    assert (run / "cache" / report_cache.file_name("best", "en")).is_file()
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(collect.__file__).parents[2])}
    warm = subprocess.run([sys.executable, "-c", WARM_SCRIPT, str(run), str(tmp_path / "warm.html")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert warm.returncode == 0, warm.stderr
    assert "IMPORTED -" in warm.stdout, warm.stdout
    assert _page(tmp_path / "warm.html") == _page(run / "report.html")  # the training's page, cold
    record = json.loads((run / "data.json").read_text())
    assert record["source"] == str(data)
