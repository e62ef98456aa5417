"""End to end, as a user types it (slow: real training in subprocesses): train a tiny run on a
generated folder, then evaluate, predict, export and lr-find it with the ``cnnlab`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SPEC = """name: stripes
input: [1, 12, 12]
layers:
  - conv: {filters: 4, kernel: 3, padding: 1}
  - pool: 2
  - flatten
  - output: 2
"""


def _cnnlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNLAB_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_train_then_use(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("left", "right"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(40):
            a = rng.integers(0, 60, (12, 12)).astype(np.uint8)
            a[:, :6] += 150 if cls == "left" else 0
            a[:, 6:] += 150 if cls == "right" else 0
            Image.fromarray(a).save(tmp_path / "images" / cls / f"{i}.png")
    (tmp_path / "spec.yaml").write_text(SPEC)
    done = _cnnlab("train", "spec.yaml", "--data", "images", "--epochs", "3", "--batch-size", "8", "--out", "run",
                   "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    ev = _cnnlab("evaluate", "run", "--format", "json", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["split"] == "val" and res["accuracy"] >= 0.9  # an easy problem, learned

    (tmp_path / "notes.txt").write_text("hello")
    pr = _cnnlab("predict", "run", "images/left/0.png", "images/right/1.png", "notes.txt", "--format", "json",
                 cwd=tmp_path)
    assert pr.returncode == 1  # one input failed, the others were predicted
    preds = json.loads(pr.stdout)
    assert [p["label"] for p in preds[:2]] == ["left", "right"] and preds[2]["error"]
    assert "Traceback" not in pr.stderr

    ex = _cnnlab("export", "run", "--format", "onnx", cwd=tmp_path)
    assert ex.returncode == 0, ex.stderr
    assert (tmp_path / "run" / "model.onnx").is_file() and "onnxruntime matches PyTorch" in ex.stdout

    lr = _cnnlab("lr-find", "spec.yaml", "--data", "images", "--iters", "40", "--batch-size", "16", cwd=tmp_path)
    assert lr.returncode == 0, lr.stderr
    assert "suggested learning rate" in lr.stdout and (tmp_path / "lr-find-stripes.png").is_file()
