"""Exact resume through the real CLI: SIGKILL (or Ctrl-C) a training process at some step, run
``cnnlab train RUN --resume``, and the final weights equal an uninterrupted run's, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from cnnlab.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

SPEC = """name: tiny
input: [1, 12, 12]
layers:
  - conv: {filters: 6, kernel: 3, padding: 1}
  - batchnorm
  - pool: 2
  - flatten
  - dropout: 0.3
  - output: 2
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(0)
    for label, name in enumerate(("rows", "cols")):
        folder = root / "data" / name
        folder.mkdir(parents=True)
        for i in range(60):
            img = rng.integers(0, 90, size=(12, 12))
            if label == 0:
                img[::2, :] += 150
            else:
                img[:, ::2] += 150
            Image.fromarray(img.astype(np.uint8)).save(folder / f"{i}.png")
    (root / "tiny.yaml").write_text(SPEC)
    _cli(root, "ref").check_returncode()
    return root


def _args(root: Path, out: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab", "train", str(root / "tiny.yaml"), "--data", str(root / "data"),
            "--out", str(root / out), "--epochs", "3", "--batch-size", "8", "--checkpoint-steps", "1",
            "--threads", "1", "--seed", "7", "--quiet", "--no-report"]


def _cli(root: Path, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_args(root, out) + list(extra), capture_output=True, text=True, timeout=300)


def _saved_step(run: Path) -> int:
    try:
        with safe_open(str(run / "checkpoints" / "resume.safetensors"), framework="pt") as fh:
            return int(json.loads(fh.metadata()["cnnlab"])["position"]["step"])
    except Exception:  # not written yet, or being replaced this instant
        return -1


def _interrupt_at(root: Path, out: str, step: int, sig: int) -> int:
    proc = subprocess.Popen(_args(root, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while _saved_step(root / out) < step and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, f"training ended before step {step}: {proc.stderr.read() if proc.stderr else ''}"
    os.kill(proc.pid, sig)
    return proc.wait(timeout=120)


def _same_weights(a: Path, b: Path) -> None:
    ref, _ = ckpt.read_weights(a / "checkpoints" / "last")
    got, meta = ckpt.read_weights(b / "checkpoints" / "last")
    assert meta["epoch"] == 3
    assert ref.keys() == got.keys()
    for name in ref:
        assert torch.equal(ref[name], got[name]), name


@pytest.mark.parametrize("step", [1, 11, 19, 27])  # 13 steps per epoch (108 images, batch 8): epochs 1, 1, 2, 3
def test_sigkill_then_resume_gives_identical_weights(workdir, step):
    out = f"kill{step}"
    assert _interrupt_at(workdir, out, step, signal.SIGKILL) == -signal.SIGKILL
    done = _cli(workdir, out, "--resume")
    assert done.returncode == 0, done.stderr
    _same_weights(workdir / "ref", workdir / out)
    rows = (workdir / out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


def test_ctrl_c_saves_exits_130_and_resumes_exactly(workdir):
    assert _interrupt_at(workdir, "ctrlc", 5, signal.SIGINT) == 130
    assert json.loads((workdir / "ctrlc" / "status.json").read_text())["state"] == "interrupted"
    resumed = subprocess.run([sys.executable, "-m", "cnnlab", "train", str(workdir / "ctrlc"), "--resume",
                              "--quiet", "--no-report"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _same_weights(workdir / "ref", workdir / "ctrlc")
