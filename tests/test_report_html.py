"""The HTML report of a real (tiny) run: self-contained, complete, correct totals, atomic, refusals."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from PIL import Image

from _report_helpers import SPEC, parse, tiny_run
from cnnlab.errors import CnnlabError, RunError
from cnnlab.report import write_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield tiny_run(tmp_path_factory.mktemp("report") / "run")
    finally:
        torch.set_num_threads(before)


def test_report_is_complete_and_self_contained(run_dir) -> None:
    from cnnlab.model import build

    path, bundle = run_dir
    out = write_report(path, data=bundle.val)
    assert out == path / "report.html"
    page = parse(out)
    # one row per spec layer, and the parameters add up to what PyTorch counts
    model = build(SPEC)
    assert len(page.layer_rows) == len(SPEC["layers"]) == len(model.layers)
    torch_total = sum(p.numel() for p in model.parameters())
    assert sum(int(r["data-params"]) for r in page.layer_rows) == torch_total
    for row, layer in zip(page.layer_rows, model.layers, strict=True):
        assert int(row["data-params"]) == sum(p.numel() for p in layer.parameters())
    # every picture is an inline PNG that decodes, with the size it claims
    keys = {img["alt"] for img in page.images}
    assert len(page.images) >= 7, keys  # curves, confusion, 2 filter grids, maps, Grad-CAM, mistakes
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as png:
            assert (png.width, png.height) == (int(img["width"]), int(img["height"]))
    # nothing fetched from anywhere, no script
    assert page.links == [] and page.scripts == 0
    for section in ("network", "training", "results", "learned", "mistakes", "setup", "total-params"):
        assert section in page.ids
    assert page.html_lang == "en"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by others, unlike mkstemp's 0600


def test_without_data_the_evaluation_sections_are_explained(run_dir) -> None:
    path, _ = run_dir
    out = write_report(path, out=path / "no-data.html")  # trained from memory: no source to reload
    text = out.read_text(encoding="utf-8")
    page = parse(out)
    assert "results" not in page.ids and "mistakes" not in page.ids
    assert "could not be loaded" in text and "--data SOURCE" in text
    assert "training" in page.ids and "network" in page.ids


def test_portuguese_report(run_dir) -> None:
    path, _ = run_dir
    out = write_report(path, lang="pt", out=path / "relatorio.html")
    text = out.read_text(encoding="utf-8")
    assert parse(out).html_lang == "pt-BR"
    for phrase in ("A rede, camada por camada", "Curvas de treino", "O que a rede aprendeu", "parâmetros",
                   "não puderam ser carregados"):
        assert phrase in text
    assert "The network, layer by layer" not in text


class _Reached(Exception):
    pass


def _stub_collect(write, path, bundle, target) -> None:
    from cnnlab.report import collect

    original = collect.collect_report

    def reached(*_args, **_kwargs):
        raise _Reached

    collect.collect_report = reached
    try:
        write(path, data=bundle.val, out=target, force=True)
    finally:
        collect.collect_report = original


def _set_status(path, **status) -> str:
    before = (path / "status.json").read_text()
    (path / "status.json").write_text(json.dumps(status))
    return before


def test_refuses_a_run_that_is_still_training(run_dir) -> None:
    path, bundle = run_dir
    target = path / "running.html"
    before = _set_status(path, state="running", epoch=1, pid=os.getpid())
    try:
        with pytest.raises(RunError, match=r"still training \(epoch 1, process \d+\).*--force"):
            write_report(path, data=bundle.val, out=target)
        assert not target.exists()
        _set_status(path, state="running", epoch=1, pid=2**22 + 12345)  # no such process
        with pytest.raises(RunError, match="process .* is gone.*--resume"):
            write_report(path, data=bundle.val, out=target)
        with pytest.raises(_Reached):  # --force passes the gate and goes on to build the page
            _stub_collect(write_report, path, bundle, target)
    finally:
        (path / "status.json").write_text(before)


def test_a_crash_after_the_page_is_written_leaves_the_old_report_untouched(run_dir, monkeypatch) -> None:
    """The page is complete and on disk when the final step fails: an atomic writer has written it to
    a temporary file, so the old report survives; a writer that wrote in place would have replaced it
    (or never reached the rename, and then this raises nothing)."""
    import os

    path, bundle = run_dir
    target = path / "atomic.html"
    target.write_text("old report")

    def crash(*_args, **_kwargs):
        raise OSError("power cut before the rename")

    monkeypatch.setattr(os, "replace", crash)
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="power cut"):
        write_report(path, data=bundle.val, out=target)
    assert target.read_text() == "old report"
    assert [p.name for p in path.iterdir() if "atomic" in p.name] == ["atomic.html"]  # no temporary left


def test_bad_output_name_and_missing_weights(run_dir, tmp_path) -> None:
    path, _ = run_dir
    with pytest.raises(CnnlabError, match=r"must end in \.html"):
        write_report(path, out=tmp_path / "report.pdf")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    for name in ("config.yaml", "spec.yaml", "classes.json", "data.json", "metrics.jsonl", "status.json"):
        (empty / name).write_bytes((path / name).read_bytes())
    with pytest.raises(RunError, match="no best checkpoint"):
        write_report(empty)
    assert not (empty / "report.html").exists()
