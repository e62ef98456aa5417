"""Slow: ``--batch-schedule`` and ``--lr-scaling`` in real ``cnnlab train`` processes.

- SIGKILL of a real process mid-epoch right after the batch size changed, then ``--resume``: the
  final weights equal the uninterrupted run's bit for bit (RGB input, multi-channel convs, BatchNorm,
  dropout; CPU defaults: channels-last, fused AdamW);
- DDP on 2 CPU processes (gloo) with per-process batch 4 -> 8 and ``--lr-scaling linear`` ends with
  the weights of one process with batch 8 -> 16: the batch schedule multiplies each process's
  batch, and the lr is scaled from the global batch (0.1 x 8/16 in both).

Run: ``PYTHONPATH=src python -m pytest -q -m slow tests/test_train_batch_schedule_slow.py`` (~1-2 min
on 2 busy cores).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _trust_data import RESUME_SPEC, stripes_folder
from cnnlab.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

KILL_SPEC = RESUME_SPEC.format(name="schedkill")
DDP_SPEC = """name: schedddp
input: [3, 12, 12]
layers:
  - conv: {filters: 6, kernel: 3, padding: 1}
  - pool: 2
  - flatten
  - output: 2
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sched")
    stripes_folder(base / "data", n=64)  # 128 images: 115 train / 13 val with the default split
    (base / "kill.yaml").write_text(KILL_SPEC)
    (base / "ddp.yaml").write_text(DDP_SPEC)
    return base


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, CNNLAB_CACHE=str(root / "cache"), OMP_NUM_THREADS="1", CNNLAB_DIST_TIMEOUT="20", **extra)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    src = str(Path(__file__).parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _same_weights(a: Path, b: Path, exact: bool = True) -> None:
    ref, _ = ckpt.read_weights(a / "checkpoints" / "last")
    got, _ = ckpt.read_weights(b / "checkpoints" / "last")
    assert ref.keys() == got.keys()
    for name in ref:
        if exact:
            assert torch.equal(ref[name], got[name]), name
        else:
            torch.testing.assert_close(got[name], ref[name], atol=2e-5, rtol=1e-4, msg=name)


def test_sigkill_right_after_the_batch_change_then_resume_is_bit_identical(root: Path) -> None:
    # batch 8 (115 images: 14 steps), then 16 (7 steps), then 32 (3 steps); checkpoint after every step
    args = ["--data", str(root / "data"), "--epochs", "3", "--batch-size", "8", "--batch-schedule", "1:2,2:2",
            "--threads", "1", "--seed", "5", "--checkpoint-steps", "1", "--quiet", "--no-report"]
    cmd = [sys.executable, "-m", "cnnlab", "train"]
    ref = subprocess.run([*cmd, str(root / "kill.yaml"), "--out", str(root / "ref"), *args],
                         env=_env(root), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]
    points, tag = root / "kill.points", "step epoch=1 batch=2"  # the third batch of 16
    proc = subprocess.Popen([*cmd, str(root / "kill.yaml"), "--out", str(root / "cut"), *args],
                            env=_env(root, CNNLAB_POINTS=str(points), CNNLAB_PAUSE_AT=tag),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while f"paused {tag}" not in (points.read_text() if points.exists() else ""):
        assert proc.poll() is None and time.time() < deadline, "the run never reached the kill point"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    resumed = subprocess.run([*cmd, str(root / "cut"), "--resume", "--quiet", "--no-report", "--threads", "1"],
                             env=_env(root), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _same_weights(root / "ref", root / "cut")


def test_ddp_with_a_batch_schedule_and_lr_scaling_equals_one_process_with_the_global_batch(root: Path) -> None:
    def args(out: str, batch: int) -> list[str]:
        return ["train", str(root / "ddp.yaml"), "--data", str(root / "data"), "--out", str(root / out),
                "--epochs", "2", "--batch-size", str(batch), "--batch-schedule", "1:2", "--optimizer", "sgd",
                "--lr", "0.1", "--lr-scaling", "linear", "--lr-reference-batch", "16", "--schedule", "constant",
                "--no-augment", "--seed", "5", "--threads", "1", "--device", "cpu", "--no-report"]

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "--monitor-interval=0.2", "-m", "cnnlab"]
    ddp = subprocess.run([*torchrun, *args("ddp", 4)], env=_env(root), capture_output=True, text=True, timeout=400)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    log = ddp.stdout + ddp.stderr
    assert "learning rate 0.0500 = 0.1000 (meant for batch 16) scaled linear to the initial batch 8" in log, log[-3000:]
    single = subprocess.run([sys.executable, "-m", "cnnlab", *args("single", 8), "--quiet"], env=_env(root),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    _same_weights(root / "single", root / "ddp", exact=False)
    for run in ("single", "ddp"):  # 115 images: 14 steps of 8 (global), then 7 of 16
        meta = ckpt.read_weights(root / run / "checkpoints" / "last")[1]
        assert meta["step"] == 21, run
