"""Slow tests: ``cnnlab train`` under torchrun on 2 CPU processes (gloo), on a tiny generated set.

Run: .venv/bin/pytest -m slow tests/test_scale_ddp_train.py

Facts checked against independent references:
- DDP with per-rank batch 8 on 2 ranks gives the weights of one process with batch 16 (the same
  command without DDP; test_scale_ddp_helpers.py checks DDP against bare PyTorch), and rank 0 alone
  writes the run folder;
- the validation accuracy logged under DDP equals plain PyTorch's accuracy of the saved weights on
  the 7 validation images (odd: 4 + 3 per rank; a padded duplicate would make it k/8);
- a job killed mid-epoch resumes under DDP (via ``--devices 2``) to the uninterrupted run's weights;
- SIGKILL of one rank ends the job with a non-zero exit and torchrun naming the failed rank; without
  torchrun the survivor exits 1 within the timeout with a clear message and status.json "failed".
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

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

pytestmark = pytest.mark.slow

SPEC = """name: ddp-tiny
input: [1, 12, 12]
layers:
  - conv: {filters: 6, kernel: 3, padding: 1}
  - pool: 2
  - flatten
  - output: 2
"""
BN_SPEC = """name: ddp-bn
input: [1, 12, 12]
layers:
  - conv: {filters: 6, kernel: 3, padding: 1, bias: false, activation: none}
  - batchnorm: relu
  - pool: 2
  - flatten
  - output: 2
"""
TRAIN_PER_CLASS, VAL_COUNTS = 64, (4, 3)  # 128 training images; 7 validation images, 2 mislabelled
EPOCHS, RANK_BATCH = 3, 8  # 2 ranks x 8 = global 16 -> 8 steps per epoch, 24 in all


def _write_images(folder: Path, label: int, count: int, rng: np.random.Generator, swapped: int = 0) -> None:
    """``count`` images of class ``label``; the first ``swapped`` carry the other class's pattern."""
    folder.mkdir(parents=True)
    for i in range(count):
        img = rng.integers(0, 110, size=(12, 12))
        if (label == 0) != (i < swapped):
            img[::2, :] += 120  # class "rows": bright even rows
        else:
            img[:, ::2] += 120  # class "cols": bright even columns
        Image.fromarray(img.astype(np.uint8)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    for label, name in enumerate(("cols", "rows")[::-1]):
        _write_images(base / "data" / "train" / name, label, TRAIN_PER_CLASS, rng)
        _write_images(base / "data" / "val" / name, label, VAL_COUNTS[label], rng, swapped=1)
    (base / "tiny.yaml").write_text(SPEC)
    (base / "bn.yaml").write_text(BN_SPEC)
    return base


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    env.update(OMP_NUM_THREADS="1", CNNLAB_DIST_TIMEOUT="20")
    return env


def _train_args(root: Path, out: str, batch: int, *extra: str, spec: str = "tiny.yaml") -> list[str]:
    return ["train", str(root / spec), "--data", str(root / "data"), "--out", str(root / out),
            "--epochs", str(EPOCHS), "--batch-size", str(batch), "--optimizer", "sgd", "--lr", "0.05",
            "--schedule", "constant", "--no-augment", "--seed", "5", "--threads", "1", "--device", "cpu",
            "--checkpoint-steps", "1", "--no-report", *extra]


def _torchrun(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "--monitor-interval=0.2", "-m", "cnnlab", *args]


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from cnnlab.train import checkpoint as ckpt

    weights, meta = ckpt.read_weights(run / "checkpoints" / "last")
    assert meta["epoch"] == EPOCHS
    return weights


def _saved_step(run: Path) -> int:
    try:
        with safe_open(str(run / "checkpoints" / "resume.safetensors"), framework="pt") as fh:
            return int(json.loads(fh.metadata()["cnnlab"])["position"]["step"])
    except Exception:  # not written yet, or being replaced this instant
        return -1


@pytest.fixture(scope="module")
def ddp_run(root: Path) -> subprocess.CompletedProcess[str]:
    """The uninterrupted 2-process run every test compares with (not --quiet: the log is checked)."""
    return _run(_torchrun(_train_args(root, "ddp", RANK_BATCH)))


def test_ddp_run_finishes_and_rank_0_alone_writes_one_run_folder(root: Path, ddp_run) -> None:
    assert ddp_run.returncode == 0, ddp_run.stdout[-3000:] + ddp_run.stderr[-3000:]
    runs = sorted(p.name for p in root.iterdir() if (p / "checkpoints").is_dir())
    assert runs == ["ddp"]  # no second folder (e.g. ddp-2) made by rank 1
    ckpts = sorted(p.name for p in (root / "ddp" / "checkpoints").iterdir() if not p.name.startswith("."))
    assert ckpts == ["best.json", "best.safetensors", "last.json", "last.safetensors", "resume.safetensors"]
    rows = [json.loads(line) for line in (root / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))  # one row per epoch, not two
    assert json.loads((root / "ddp" / "status.json").read_text())["state"] == "finished"
    log = ddp_run.stdout + ddp_run.stderr
    assert log.count("global batch of 16 = 8 x 2") == 1, log[-3000:]  # explained, by rank 0 only


def test_ddp_weights_equal_one_process_with_the_global_batch(root: Path, ddp_run) -> None:
    assert ddp_run.returncode == 0, ddp_run.stderr[-3000:]
    single = _run([sys.executable, "-m", "cnnlab", *_train_args(root, "single", 2 * RANK_BATCH, "--quiet")])
    assert single.returncode == 0, single.stderr[-3000:]
    ddp, ref = _weights(root / "ddp"), _weights(root / "single")
    assert ddp.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(ddp[name], ref[name], atol=2e-5, rtol=1e-4, msg=name)
    from cnnlab.model import build
    from cnnlab.spec import load_spec

    torch.manual_seed(5)  # the trainer seeds with --seed before building: these are the initial weights
    init = build(load_spec(str(root / "tiny.yaml"))).state_dict()
    assert max((ref[k] - init[k]).abs().max().item() for k in ref) > 1e-2  # training moved them


def test_sync_batchnorm_on_cpu_processes_is_refused_with_a_message(root: Path) -> None:
    """PyTorch's SyncBatchNorm runs on GPUs only; on gloo/CPU the user gets the reason, not DDP's traceback."""
    proc = _run(_torchrun(_train_args(root, "bn-sync", RANK_BATCH, "--quiet", "--sync-bn", spec="bn.yaml")))
    assert proc.returncode != 0
    assert "error: --sync-bn needs CUDA GPUs" in proc.stderr, proc.stderr[-3000:]
    assert "ValueError" not in proc.stderr  # DDP's own "SyncBatchNorm layers only work with GPU modules"
    assert not (root / "bn-sync" / "checkpoints" / "last.safetensors").exists()


def test_ddp_validation_accuracy_is_exact_on_an_odd_validation_set(root: Path, ddp_run) -> None:
    assert ddp_run.returncode == 0, ddp_run.stderr[-3000:]
    from cnnlab.model import build
    from cnnlab.spec import load_spec

    run = root / "ddp"
    info = json.loads((run / "data.json").read_text())
    assert info["counts"]["val"] == 7
    model = build(load_spec(str(root / "tiny.yaml")))
    model.load_state_dict(_weights(run))
    model.eval()
    classes = json.loads((run / "classes.json").read_text())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / "data" / "val" / name).glob("*.png")):
            images.append(np.asarray(Image.open(path), dtype=np.float32) / 255.0)
            labels.append(label)
    x = (torch.from_numpy(np.stack(images))[:, None] - info["mean"][0]) / info["std"][0]  # (7, 1, 12, 12)
    with torch.no_grad():
        logits = model(x)  # (7, 2)
    y = torch.tensor(labels)
    expected_acc = (logits.argmax(1) == y).sum().item() / 7
    expected_loss = torch.nn.functional.cross_entropy(logits, y).item()
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < expected_acc < 1  # 2 of the 7 carry the other class's pattern: k/7, never k/8
    assert last["val_acc"] == pytest.approx(expected_acc, abs=1e-12)
    assert last["val_loss"] == pytest.approx(expected_loss, rel=1e-4)


def test_ddp_job_killed_mid_run_resumes_under_ddp_to_the_same_weights(root: Path, ddp_run) -> None:
    assert ddp_run.returncode == 0, ddp_run.stderr[-3000:]
    out = root / "killed"
    proc = subprocess.Popen(_torchrun(_train_args(root, "killed", RANK_BATCH, "--quiet")), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while _saved_step(out) < 11 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the job ended before it could be killed at step 11"
    _kill_tree(proc.pid)  # agent and workers die at once, as when a node loses power
    proc.wait(timeout=60)
    time.sleep(1.0)  # had a worker survived, it would move on from here
    step = _saved_step(out)
    assert 11 <= step < EPOCHS * 8
    assert json.loads((out / "status.json").read_text())["state"] == "running"  # it did not finish
    resumed = _run([sys.executable, "-m", "cnnlab", "train", str(out), "--resume", "--devices", "2",
                    "--quiet", "--no-report"])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    ref, got = _weights(root / "ddp"), _weights(out)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-6, rtol=1e-6, msg=name)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    # the interrupted epoch's training loss/accuracy count every rank's images once, as uninterrupted
    ref_rows = [json.loads(line) for line in (root / "ddp" / "metrics.jsonl").read_text().splitlines()]
    for got_row, ref_row in zip(rows, ref_rows, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert got_row[key] == pytest.approx(ref_row[key], rel=1e-5, abs=1e-7), (got_row["epoch"], key)


def test_killing_one_rank_ends_the_job_nonzero_with_the_rank_named(root: Path) -> None:
    proc = subprocess.Popen(_torchrun(_train_args(root, "victim", RANK_BATCH, "--quiet")), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _saved_step(root / "victim") < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the job ended before a rank could be killed"
    victim = _worker_with_rank(proc.pid, 1)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert time.monotonic() - killed_at < 60
    text = out + err
    assert "rank      : 1" in text or "rank: 1" in text, text[-3000:]
    assert "SIGKILL" in text or "exitcode  : -9" in text, text[-3000:]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (torchrun starts its workers in their own sessions,
    so killing the agent's process group leaves them running)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            out += [child, *_descendants(child)]
    return out


def _kill_tree(pid: int) -> None:
    tree = [pid, *_descendants(pid)]
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def _worker_with_rank(agent_pid: int, rank: int) -> int:
    """The pid of torchrun's worker with ``RANK=rank`` (a child of the agent), read from /proc."""
    children = Path(f"/proc/{agent_pid}/task/{agent_pid}/children").read_text().split()
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker with RANK={rank} among {children}")


def test_without_torchrun_the_survivor_of_a_killed_rank_stops_with_a_message(root: Path) -> None:
    """No torchrun agent to clean up (as across nodes): the survivor must notice by itself, say so,
    exit non-zero within the timeout and leave status.json truthful."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    args = [sys.executable, "-m", "cnnlab", *_train_args(root, "lonely", RANK_BATCH, "--quiet")]
    procs = [subprocess.Popen(args, env={**_env(), "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:
        deadline = time.monotonic() + 240
        while _saved_step(root / "lonely") < 2 and procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert procs[0].poll() is None, "the job ended before a rank could be killed"
        procs[1].kill()
        killed_at = time.monotonic()
        _, err = procs[0].communicate(timeout=120)
        elapsed = time.monotonic() - killed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    assert procs[0].returncode == 1, err[-3000:]
    assert err.startswith("error: rank 0/2: lost contact with the other processes"), err[-3000:]
    assert "Traceback" not in err and "--resume" in err
    assert elapsed < 20 + 30  # CNNLAB_DIST_TIMEOUT=20 plus slack for a busy machine
    assert json.loads((root / "lonely" / "status.json").read_text())["state"] == "failed"
