"""Fast tests of cnnlab.distributed and cnnlab.cli.scale_cmds that need no second process.

Run: .venv/bin/pytest tests/test_scale_helpers.py
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
import torch.distributed as tdist

from cnnlab import distributed as dist
from cnnlab.cli import main
from cnnlab.errors import CnnlabError, RunError


def _fake_info(world: int = 2, rank: int = 1) -> dist.DistInfo:
    return dist.DistInfo(rank, world, rank, torch.device("cpu"), rank == 0, "gloo", 7.0)


def test_without_torchrun_everything_is_single_process_and_no_group_is_made() -> None:
    info = dist.init_from_env(device="cpu", env={})
    assert (info.rank, info.world_size, info.local_rank, info.is_main) == (0, 1, 0, True)
    assert info.backend is None and not info.distributed
    assert not tdist.is_initialized()
    # the helpers are identity / no-ops without a group
    t = torch.tensor([2.0, 3.0])
    assert dist.all_reduce_sum(t) is t and t.tolist() == [2.0, 3.0]
    assert dist.reduce_sums([1, 2.5]) == [1.0, 2.5]
    dist.barrier()
    dist.cleanup()


def test_world_size_1_under_torchrun_does_not_join_a_group() -> None:
    env = {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "1"}
    info = dist.init_from_env(device="cpu", env=env)
    assert not info.distributed and not tdist.is_initialized()


def test_partial_torchrun_environment_names_the_missing_variables() -> None:
    with pytest.raises(RunError) as err:
        dist.init_from_env(device="cpu", env={"WORLD_SIZE": "2", "RANK": "0"})
    text = str(err.value)
    assert "LOCAL_RANK" in text and "MASTER_ADDR" in text and "MASTER_PORT" in text
    assert "torchrun" in text


def test_timeout_comes_from_argument_then_environment_and_is_validated() -> None:
    assert dist.init_from_env(device="cpu", env={}).timeout_s == dist.DEFAULT_TIMEOUT_S
    assert dist.init_from_env(device="cpu", env={"CNNLAB_DIST_TIMEOUT": "12"}).timeout_s == 12.0
    assert dist.init_from_env(device="cpu", timeout_s=3, env={"CNNLAB_DIST_TIMEOUT": "12"}).timeout_s == 3.0
    with pytest.raises(RunError, match="CNNLAB_DIST_TIMEOUT='soon'"):
        dist.init_from_env(device="cpu", env={"CNNLAB_DIST_TIMEOUT": "soon"})
    with pytest.raises(RunError, match="positive"):
        dist.init_from_env(device="cpu", timeout_s=0, env={})


def test_bad_rank_variable_is_a_clear_error() -> None:
    env = {"WORLD_SIZE": "2", "RANK": "zero", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    with pytest.raises(RunError, match="RANK='zero'"):
        dist.init_from_env(device="cpu", env=env)


def test_device_resolution() -> None:
    assert dist.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dist.resolve_device("auto").type == expected
    with pytest.raises(CnnlabError, match="unknown device 'gpu0'"):
        dist.resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_without_a_gpu_says_so() -> None:
    with pytest.raises(CnnlabError, match="no CUDA GPU"):
        dist.resolve_device("cuda")


def test_launch_command_is_torchrun_on_the_same_command_without_devices() -> None:
    argv = ["train", "lenet5", "--devices", "4", "--data", "mnist", "--devices=4", "--epochs", "2"]
    cmd = dist.launch_command(argv, 4, python="PY")
    assert cmd[:5] == ["PY", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert cmd[5:] == ["-m", "cnnlab", "train", "lenet5", "--data", "mnist", "--epochs", "2"]
    with pytest.raises(CnnlabError, match="at least 1; received 0"):
        dist.launch_command(argv, 0)


def test_launch_refuses_to_nest_inside_torchrun() -> None:
    with pytest.raises(CnnlabError, match="inside a torchrun job"):
        dist.launch(["train", "x"], 2, env={"TORCHELASTIC_RUN_ID": "abc", "WORLD_SIZE": "2"})


def test_launch_runs_torchrun_on_the_same_command_and_returns_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class FakePopen:
        def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
            seen.append(cmd)

        def wait(self) -> int:
            return 3

    monkeypatch.setattr(dist.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(dist.torch.cuda, "is_available", lambda: False)
    assert dist.launch(["train", "x", "--devices", "2"], 2, env={}) == 3
    assert seen == [[sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc_per_node=2", "-m", "cnnlab", "train", "x"]]


def test_explain_batch_states_global_batch_and_lr() -> None:
    info = dist.DistInfo(0, 4, 0, torch.device("cpu"), True, "gloo")
    line = dist.explain_batch(info, 32, 0.05)
    assert "global batch of 128 = 32 x 4" in line and "0.05" in line
    single = dist.init_from_env(device="cpu", env={})
    assert dist.explain_batch(single, 32, 0.05) == "batch 32, learning rate 0.05"


def test_peer_guard_translates_only_communication_failures() -> None:
    with pytest.raises(dist.PeerFailure) as err, dist.peer_guard(_fake_info()):
        raise tdist.DistBackendError(
            "[/x/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:4: Connection reset by peer. "
            "This is typically caused by a remote worker hanging")
    text = str(err.value)
    assert text.startswith("rank 1/2: lost contact") and "timeout 7 s" in text
    assert "Connection reset by peer" in text and "pair.cc" not in text and "--resume" in text
    assert err.value.exit_code == 1 and isinstance(err.value, RunError)
    with pytest.raises(RuntimeError, match="mat1 and mat2"), dist.peer_guard(_fake_info()):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    single = dist.init_from_env(device="cpu", env={})
    with pytest.raises(tdist.DistBackendError), dist.peer_guard(single):
        raise tdist.DistBackendError("gloo says no")


def test_unwrap_model_sees_through_compile_wrapper() -> None:
    net = torch.nn.Linear(2, 2)
    wrapper = torch.nn.Module()
    wrapper._orig_mod = net  # what torch.compile's OptimizedModule holds
    assert dist.unwrap_model(wrapper) is net
    outer = torch.nn.Module()
    outer.module = wrapper  # DDP around a compiled module
    assert dist.unwrap_model(outer) is net
    assert dist.unwrap_model(net) is net
    assert dist.wrap_model(net, dist.init_from_env(device="cpu", env={})) is net


def test_devices_command_json_matches_torch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["torch"] == torch.__version__
    assert report["backends"]["gloo"] == tdist.is_gloo_available()
    assert len(report["cuda"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_devices_command_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "distributed backends:" in out and "--device auto picks:" in out


def test_sync_batchnorm_is_refused_off_gpu_before_ddp_sees_it() -> None:
    from cnnlab.spec import load_spec
    from cnnlab.train import TrainConfig
    from cnnlab.train.setup import build_model

    spec = load_spec({"input": [1, 8, 8], "layers": [{"conv": 2}, "batchnorm", "flatten", {"output": 2}]})
    with pytest.raises(CnnlabError, match="--sync-bn needs CUDA GPUs"):
        build_model(spec, TrainConfig(sync_bn=True), torch.device("cpu"), _fake_info())
