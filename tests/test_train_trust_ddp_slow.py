"""Issue 10 under DDP: a 2-process job (torchrun, gloo on CPU) of a net WITH dropout, killed with
SIGKILL mid-epoch, resumes under DDP to the uninterrupted job's weights. Each rank draws its dropout
masks from its own stream, seeded by (seed, rank, step), so the resumed ranks draw what the lost
ones would have.

Run: ``PYTHONPATH=src python -m pytest -q -m slow tests/test_train_trust_ddp_slow.py`` (~2-3 min).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _trust_data import stripes_folder
from cnnlab.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

SPEC = """name: ddp-dropout
input: [3, 12, 12]
layers:
  - conv: {filters: 6, kernel: 3, padding: 1}
  - pool: 2
  - flatten
  - dropout: 0.5
  - output: 2
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("ddpdrop")
    stripes_folder(base / "data")
    (base / "spec.yaml").write_text(SPEC)
    return base


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    env.update(OMP_NUM_THREADS="1", CNNLAB_DIST_TIMEOUT="20", **extra)
    return env


def _args(root: Path, out: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "--monitor-interval=0.2", "-m", "cnnlab", "train", str(root / "spec.yaml"), "--data", str(root / "data"),
            "--out", str(root / out), "--epochs", "3", "--batch-size", "4", "--seed", "5", "--threads", "1",
            "--device", "cpu", "--quiet", "--no-report"]


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant (read from /proc), as when a node loses power."""
    tree, i = [pid], 0
    while i < len(tree):
        with contextlib.suppress(OSError):
            tree += [int(c) for c in Path(f"/proc/{tree[i]}/task/{tree[i]}/children").read_text().split()]
        i += 1
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def test_ddp_job_with_dropout_killed_mid_epoch_resumes_to_the_same_weights(root):
    ref = subprocess.run(_args(root, "ref"), env=_env(), capture_output=True, text=True, timeout=400)
    assert ref.returncode == 0, ref.stderr[-3000:]
    points = root / "killed.points"
    proc = subprocess.Popen(_args(root, "killed"), env=_env(CNNLAB_POINTS=str(points), CNNLAB_PAUSE_AT="step epoch=1 batch=3"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while "paused step epoch=1 batch=3" not in (points.read_text() if points.exists() else ""):
        assert proc.poll() is None and time.monotonic() < deadline, "the job ended before the kill point"
        time.sleep(0.02)
    _kill_tree(proc.pid)  # agent and workers at once (torchrun gives the workers sessions of their own)
    proc.wait(timeout=60)
    assert json.loads((root / "killed" / "status.json").read_text())["state"] == "running"
    resumed = subprocess.run([sys.executable, "-m", "cnnlab", "train", str(root / "killed"), "--resume",
                              "--devices", "2", "--quiet", "--no-report"], env=_env(), capture_output=True,
                             text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    a, _ = ckpt.read_weights(root / "ref" / "checkpoints" / "last")
    b, meta = ckpt.read_weights(root / "killed" / "checkpoints" / "last")
    assert meta["epoch"] == 3
    for name in a:
        assert torch.equal(a[name], b[name]), name
