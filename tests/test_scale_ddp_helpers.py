"""Slow tests: cnnlab.distributed on 2 real CPU processes (gloo), started by torchrun or by hand.

Run: .venv/bin/pytest -m slow tests/test_scale_ddp_helpers.py

This file is also the worker the tests start: ``python tests/test_scale_ddp_helpers.py MODE OUT``.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
TIMEOUT_S = 8  # the process-group timeout the failure tests give the workers


def _worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    env.update({"OMP_NUM_THREADS": "1", "CNNLAB_DIST_TIMEOUT": str(TIMEOUT_S)}, **extra)
    return env


def _torchrun(mode: str, out: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "--monitor-interval=0.2", str(HERE), mode, str(out)]
    return subprocess.run(cmd, env=_worker_env(**env), capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_collectives_and_ddp_steps_match_one_process_with_the_global_batch(tmp_path: Path) -> None:
    check_collectives(_torchrun("collectives", tmp_path, timeout=180), tmp_path, "gloo")


def check_collectives(proc: subprocess.CompletedProcess[str], tmp_path: Path, backend: str) -> None:
    """What both ranks of the ``collectives`` worker must report (also used by the CUDA test)."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, res in enumerate(results):
        assert res["rank"] == r and res["world_size"] == 2 and res["backend"] == backend
        assert res["is_main"] == (r == 0)
        assert res["sum"] == [3.0, 30.0]                 # (1 + 2), (10 + 20)
        assert res["counts"] == [2 * 1_000_001.0, 3.0]   # exact float64 sums
        assert res["moved"] > 1e-3                       # training really changed the weights
        assert res["max_diff"] < 1e-5, res               # DDP == one process on the global batch
    assert sorted(p.name for p in tmp_path.glob("main-*.txt")) == ["main-0.txt"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "hang"])
def test_a_dead_or_stuck_peer_makes_the_survivor_exit_with_a_message(tmp_path: Path, how: str) -> None:
    """Two ranks started by hand (no torchrun agent to clean up): only the timeout and the
    peer_guard stand between the survivor and a hang."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(HERE), how, str(tmp_path)],
                              env=_worker_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                              MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "stuck").exists() and procs[1].poll() is None:
            assert time.monotonic() < deadline, "rank 1 never reached its failure point"
            time.sleep(0.1)
        failed_at = time.monotonic()
        out, err = procs[0].communicate(timeout=TIMEOUT_S + 60)
        elapsed = time.monotonic() - failed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert procs[0].returncode == 1, out + err
    assert "rank 0/2: lost contact with the other processes" in err, err
    assert "--resume" in err and "Traceback" not in err
    assert elapsed < TIMEOUT_S + 30, f"survivor took {elapsed:.1f} s after rank 1 failed"


@pytest.mark.slow
def test_torchrun_job_with_a_killed_rank_exits_nonzero_and_names_it(tmp_path: Path) -> None:
    start = time.monotonic()
    proc = _torchrun("kill", tmp_path, timeout=180)
    elapsed = time.monotonic() - start
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "SIGKILL" in text or "exitcode  : -9" in text or "exitcode: -9" in text, text[-3000:]
    assert elapsed < 120


# ----------------------------------------------------------------------------- worker side


def _collectives(out: Path) -> None:
    import torch

    from cnnlab import distributed as dist

    torch.set_num_threads(1)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # exact-ish on GPU too
    info = dist.init_from_env(device=os.environ.get("CNNLAB_TEST_DEVICE", "cpu"))
    try:
        res: dict[str, object] = {"rank": info.rank, "world_size": info.world_size,
                                  "backend": info.backend, "is_main": info.is_main}
        t = torch.tensor([1.0, 10.0], device=info.device) * (info.rank + 1)
        res["sum"] = dist.all_reduce_sum(t).tolist()
        res["counts"] = dist.reduce_sums([1_000_001, info.rank + 1])
        res.update(_ddp_vs_single(info))
        if info.is_main:
            (out / f"main-{info.rank}.txt").write_text("only rank 0 writes")
        dist.barrier()
        (out / f"rank{info.rank}.json").write_text(json.dumps(res))
    finally:
        dist.cleanup()


def _ddp_vs_single(info: object) -> dict[str, float]:
    """3 SGD+momentum steps: DDP with half of each global batch per rank vs one process."""
    import torch
    from torch import nn

    from cnnlab import distributed as dist

    device = info.device  # type: ignore[attr-defined]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).to(device)
    reference = copy.deepcopy(net)
    start = [p.detach().clone() for p in net.parameters()]
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(3, 8, 1, 6, 6, generator=gen).to(device)  # (steps, global batch, C, H, W)
    ys = torch.randint(0, 3, (3, 8), generator=gen).to(device)
    model = dist.wrap_model(net, info)  # type: ignore[arg-type]
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.2, momentum=0.9)
    rank, world = info.rank, info.world_size
    for x, y in zip(xs, ys, strict=True):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[rank::world]), y[rank::world]).backward()  # (4, 3)
        opt.step()
        ref_opt.zero_grad()
        nn.functional.cross_entropy(reference(x), y).backward()  # (8, 3)
        ref_opt.step()
    plain = dist.unwrap_model(model)
    diff = max((a - b).abs().max().item() for a, b in zip(plain.parameters(), reference.parameters(), strict=True))
    moved = max((a - b).abs().max().item() for a, b in zip(plain.parameters(), start, strict=True))
    return {"max_diff": diff, "moved": moved}


def _fail(out: Path, how: str) -> None:
    import torch

    from cnnlab import distributed as dist

    info = dist.init_from_env(device="cpu")
    try:
        with dist.peer_guard(info):
            for step in range(1_000_000):
                dist.all_reduce_sum(torch.ones(4))
                if info.rank == 1 and step == 20:
                    (out / "stuck").write_text(how)
                    if how == "hang":
                        time.sleep(600)
                    os.kill(os.getpid(), signal.SIGKILL)
    except dist.PeerFailure as exc:  # what cnnlab.cli.main does with it
        print(f"error: {exc}", file=sys.stderr)
        dist.exit_process(exc.exit_code)


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    if mode == "collectives":
        _collectives(folder)
    else:
        _fail(folder, mode)
