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
