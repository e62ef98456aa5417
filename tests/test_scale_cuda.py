"""CUDA-only tests of cnnlab.distributed (NCCL, GPU placement, --devices limits); skipped without CUDA.

Run on a GPU machine: python -m pytest -m cuda tests/test_scale_cuda.py  (bench/gpu_run.sh does).
With one GPU the 2-rank NCCL job cannot run (NCCL needs a GPU per rank); the test then checks
that asking for it gives a clear error instead. A single-rank NCCL group still exercises every
helper on the GPU path.

This file is also the worker of the single-rank NCCL test: ``python tests/test_scale_cuda.py OUT PORT``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve()
NO_CUDA = "needs a CUDA GPU (torch.cuda.is_available() is False on this machine)"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    env.update({"CNNLAB_DIST_TIMEOUT": "60"}, **extra)
    return env


def test_auto_and_cuda_resolve_to_the_gpu_of_this_rank() -> None:
    from cnnlab import distributed as dist

    assert dist.resolve_device("auto") == torch.device("cuda:0")
    assert dist.resolve_device("cuda", local_rank=0) == torch.device("cuda:0")
    info = dist.init_from_env(device="cuda", env={})
    assert info.device == torch.device("cuda:0") and not info.distributed
    with pytest.raises(Exception, match="CUDA GPU"):
        dist.resolve_device("cuda", local_rank=torch.cuda.device_count())


def test_devices_beyond_the_gpu_count_is_refused() -> None:
    from cnnlab import distributed as dist
    from cnnlab.errors import CnnlabError

    count = torch.cuda.device_count()
    with pytest.raises(CnnlabError, match=f"only {count} CUDA GPU"):
        dist.launch(["train", "x"], count + 1, env=_env())


def test_devices_command_names_the_gpu() -> None:
    out = subprocess.run([sys.executable, "-m", "cnnlab", "devices"], env=_env(), capture_output=True,
                         text=True, timeout=120).stdout
    assert torch.cuda.get_device_name(0) in out and "nccl" in out and "picks: cuda" in out


def test_helpers_on_a_single_rank_nccl_group(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, str(HERE), str(tmp_path), str(port)], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads((tmp_path / "nccl.json").read_text())
    assert res["backend"] == "nccl"
    assert res["cpu_sum"] == [1.5, -2.0] and res["cpu_sum_device"] == "cpu"  # travelled via the GPU
    assert res["gpu_sum"] == [3.0] and res["counts"] == [7.0, 1e9]
    assert res["ddp_type"] == "DistributedDataParallel" and res["unwrapped"] == "Linear"
    assert res["grad_ok"]


@pytest.mark.slow
def test_two_rank_nccl_job_or_a_clear_error_with_one_gpu(tmp_path: Path) -> None:
    helpers = pytest.importorskip("test_scale_ddp_helpers")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE.parent / "test_scale_ddp_helpers.py"), "collectives", str(tmp_path)]
    proc = subprocess.run(cmd, env=_env(CNNLAB_TEST_DEVICE="cuda", OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)
    if torch.cuda.device_count() >= 2:
        helpers.check_collectives(proc, tmp_path, "nccl")
    else:
        assert proc.returncode != 0
        assert "only 1 CUDA GPU(s) are visible" in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- worker side


def _single_rank_nccl(out: Path, port: int) -> None:
    import torch.distributed as tdist

    from cnnlab import distributed as dist

    torch.cuda.set_device(0)
    tdist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1,
                             device_id=torch.device("cuda:0"))
    try:
        info = dist.DistInfo(0, 1, 0, torch.device("cuda:0"), True, "nccl")
        cpu = dist.all_reduce_sum(torch.tensor([1.5, -2.0]))
        gpu = dist.all_reduce_sum(torch.tensor([3.0], device="cuda"))
        dist.barrier()
        forced = dist.DistInfo(0, 2, 0, torch.device("cuda:0"), True, "nccl")  # wrap as if distributed
        model = dist.wrap_model(torch.nn.Linear(4, 2).cuda(), forced)
        model(torch.ones(3, 4, device="cuda")).sum().backward()  # (3, 2) -> scalar; DDP all-reduces grads
        plain = dist.unwrap_model(model)
        res = {"backend": tdist.get_backend(), "cpu_sum": cpu.tolist(), "cpu_sum_device": cpu.device.type,
               "gpu_sum": gpu.tolist(), "counts": dist.reduce_sums([7, 1e9]),
               "ddp_type": type(model).__name__,
               "unwrapped": type(plain).__name__, "info": info.describe(),
               "grad_ok": bool(torch.allclose(plain.weight.grad, torch.full((2, 4), 3.0, device="cuda")))}
        (out / "nccl.json").write_text(json.dumps(res))
    finally:
        dist.cleanup()


if __name__ == "__main__":
    _single_rank_nccl(Path(sys.argv[1]), int(sys.argv[2]))
