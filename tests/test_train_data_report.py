"""What ``cnnlab train`` says about its data: the "N images, K skipped: see RUN/skipped.txt" line,
``skipped.txt`` listing the unreadable file, and ``--strict`` refusing it (exit 2, nothing trained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnlab.cli import main

SPEC = {
    "name": "tiny", "input": [1, 8, 8],
    "layers": [{"conv": {"filters": 2, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten", {"output": 2}],
}


@pytest.fixture()
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two classes x 10 grey 8x8 PNGs, plus one .jpg that is not a JPEG."""
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(SPEC))
    return root


def _argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(root.parent / "tiny.yaml"), "--data", str(root), "--out", str(out), "--epochs", "1",
            "--batch-size", "8", "--threads", "1", "--no-report", "--lang", "en", *extra]


def test_train_reports_the_skipped_file_and_lists_it(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_argv(dataset, out)) == 0
    text = capsys.readouterr().out
    # 20 readable images (10 per class), 1 skipped: counted independently of the loader
    assert "20 images (" in text and f"1 skipped: see {out / 'skipped.txt'}" in text
    lines = (out / "skipped.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].split("\t")[0].endswith("broken.jpg")


def test_strict_exits_2_and_writes_no_checkpoint(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_argv(dataset, out, "--strict")) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "--strict" in err and "Traceback" not in err
    assert not (out / "checkpoints").exists()


def test_the_final_report_gets_the_validation_split_and_the_language(tmp_path: Path, monkeypatch) -> None:
    import importlib

    from cnnlab.data import DataBundle, ImageSet
    from cnnlab.workflows import train

    rng = np.random.default_rng(1)

    def images(n: int) -> ImageSet:
        return ImageSet(rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 2, ["a", "b"],
                        [f"gen:{i}" for i in range(n)])

    calls: list[dict] = []

    def fake_write_report(run_or_path, **kwargs):
        calls.append(kwargs)
        return Path(run_or_path) / "report.html"

    # the module: `cnnlab.report` is also the function the package exports
    monkeypatch.setattr(importlib.import_module("cnnlab.report"), "write_report", fake_write_report)
    monkeypatch.setattr("cnnlab.data.load_data", lambda *a, **k: pytest.fail("the report reloaded the data"))
    data = DataBundle(images(48), images(32), None, ["a", "b"], (0.5,), (0.25,), (1, 8, 8), source="noise")
    train(SPEC, data, out=tmp_path / "run", epochs=1, batch_size=16, threads=1, quiet=True, lang="pt")
    assert len(calls) == 1
    assert calls[0]["lang"] == "pt"
    assert calls[0]["data"] is data.val and len(calls[0]["data"].labels) == 32
    assert "32" in calls[0]["data_label"]
