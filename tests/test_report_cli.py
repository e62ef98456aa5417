"""``cnnlab show ...`` and ``cnnlab report`` through the CLI: PNGs written, bad input exits 2 with a message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from _report_helpers import tiny_run
from cnnlab.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("cli")
        path, bundle = tiny_run(root / "run")
        folder = root / "images"  # the validation images as a class-per-folder data source
        for k, (img, label) in enumerate(zip(bundle.val.images, bundle.val.labels, strict=True)):
            target = folder / bundle.classes[int(label)] / f"{k}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.transpose(1, 2, 0)).save(target)
        yield path, folder
    finally:
        torch.set_num_threads(before)


def _ok(capsys, *argv: str) -> Path:
    assert main(list(argv)) == 0
    out = Path(capsys.readouterr().out.split()[0])
    assert out.is_file()
    return out


def _fails(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_every_show_command_writes_a_png(run_dir, capsys, tmp_path) -> None:
    path, folder = run_dir
    image = str(next(folder.glob("square/*.png")))
    outs = [
        _ok(capsys, "show", "filters", str(path)),
        _ok(capsys, "show", "filters", str(path), "--layer", "2", "--out", str(tmp_path / "f2.png")),
        _ok(capsys, "show", "maps", str(path), image, "--layer", "0", "--layer", "1"),
        _ok(capsys, "show", "cam", str(path), image, "--class", "square"),
        _ok(capsys, "show", "curves", str(path)),
        _ok(capsys, "show", "confusion", str(path), "--data", str(folder), "--split", "auto"),
        _ok(capsys, "show", "mistakes", str(path), "--data", str(folder), "--split", "auto", "-n", "4"),
    ]
    assert outs[0] == path / "figures" / "filters-layer0.png"
    assert outs[1] == tmp_path / "f2.png"
    for out in outs:
        with Image.open(out) as png:
            assert png.format == "PNG" and png.width > 100


def test_bad_input_is_a_message_and_exit_2(run_dir, capsys, tmp_path) -> None:
    path, folder = run_dir
    image = str(next(folder.glob("square/*.png")))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not really a jpeg")
    assert "cannot read image" in _fails(capsys, "show", "maps", str(path), str(broken))
    assert "out of range" in _fails(capsys, "show", "maps", str(path), image, "--layer", "40")
    assert "pool layer, not a conv layer" in _fails(capsys, "show", "filters", str(path), "--layer", "1")
    assert "did you mean 'square'" in _fails(capsys, "show", "cam", str(path), image, "--class", "squares")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for name in ("config.yaml", "spec.yaml", "classes.json", "data.json", "metrics.jsonl", "status.json"):
        (no_weights / name).write_bytes((path / name).read_bytes())
    assert "checkpoint" in _fails(capsys, "show", "filters", str(no_weights))
    assert "checkpoint" in _fails(capsys, "report", str(no_weights))
    assert not (no_weights / "report.html").exists()


def test_cam_on_a_network_without_conv_layers(capsys, tmp_path) -> None:
    from _report_helpers import squares_bundle
    from cnnlab.workflows import train

    spec = {"name": "dense-only", "input": [3, 16, 16], "layers": ["flatten", {"dense": 4}, {"output": 2}]}
    train(spec, squares_bundle(32), out=tmp_path / "dense", quiet=True, report=False, epochs=1, batch_size=16)
    capsys.readouterr()  # training's own warnings (a busy machine) are not under test here
    image = tmp_path / "x.png"
    Image.new("RGB", (16, 16)).save(image)
    assert "needs a conv layer" in _fails(capsys, "show", "cam", str(tmp_path / "dense"), str(image))
    assert "no conv layers" in _fails(capsys, "show", "filters", str(tmp_path / "dense"))
    # the report of such a network simply has no filters / maps / Grad-CAM section
    assert main(["report", str(tmp_path / "dense")]) == 0
    html = (tmp_path / "dense" / "report.html").read_text(encoding="utf-8")
    assert 'id="network"' in html and 'id="learned"' not in html


def test_report_of_a_running_run_is_refused_and_nothing_is_written(run_dir, capsys) -> None:
    path, _ = run_dir
    status = path / "status.json"
    before = status.read_text()
    status.write_text(json.dumps({"state": "running", "epoch": 1, "pid": os.getpid()}))
    try:
        err = _fails(capsys, "report", str(path), "--out", str(path / "r.html"))
        assert "still training" in err and "--force" in err
        assert not (path / "r.html").exists()
    finally:
        status.write_text(before)


@pytest.mark.slow
def test_report_command_in_a_fresh_process(run_dir, tmp_path) -> None:
    path, folder = run_dir
    out = tmp_path / "rel.html"
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "report", str(path), "--data", str(folder),
                           "--split", "auto", "--lang", "pt", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(out)) and "MB" in proc.stdout
    text = out.read_text(encoding="utf-8")
    assert "Matriz de confusão" in text and 'lang="pt-BR"' in text
