"""Thread choice by the CPUs actually available (issue 15): the pure chooser on fake affinity, cgroup
quota and load; the readers on fake /proc and cgroup files; training records the choice and an
explicit ``threads`` wins over a busy machine."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.utils import cpus
from cnnlab.utils.cpus import CpuInfo, choose_threads


@pytest.fixture(autouse=True)
def no_omp_env(monkeypatch):
    """A CI runner's OMP_NUM_THREADS would make every auto choice "env"."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize(("affinity", "quota", "others", "threads", "reason"), [
    (2, None, 0.0, 2, "quiet"),    # quiet 2-core machine: both cores
    (2, None, 0.4, 2, "quiet"),    # a flicker of other work is not a busy core
    (2, None, 1.0, 1, "busy"),     # a busy loop on one of 2 cores: one thread
    (2, None, 1.4, 1, "busy"),
    (2, None, 9.0, 1, "busy"),     # heavily loaded: never fewer than one
    (8, None, 3.0, 5, "busy"),     # 3 of 8 cores busy
    (8, None, 2.6, 5, "busy"),     # rounded to the nearest whole core
    (16, 4.0, 0.0, 4, "quota"),    # a container with a 4-core quota on a 16-core host
    (4, 1.5, 0.0, 1, "quota"),     # a fractional quota rounds down (a second thread would be throttled)
    (4, 0.5, 0.0, 1, "quota"),     # below one core: still one thread
    (4, 3.0, 1.0, 2, "busy"),      # quota and load together
    (3, 8.0, 0.0, 3, "quiet"),     # a quota above the affinity mask changes nothing
    (1, None, 0.0, 1, "quiet"),    # taskset -c 0
])
def test_the_chooser_uses_affinity_quota_and_load(affinity, quota, others, threads, reason):
    choice = choose_threads(None, CpuInfo(affinity, quota, others))
    assert (choice.threads, choice.reason) == (threads, reason)


@pytest.mark.parametrize("requested", [1, 2, 6])
def test_explicit_threads_win_whatever_the_machine(requested):
    for info in (CpuInfo(2, None, 0.0), CpuInfo(2, None, 5.0), CpuInfo(16, 1.0, 0.0)):
        choice = choose_threads(requested, info)
        assert (choice.threads, choice.reason) == (requested, "forced")
    assert cpus.auto_threads(requested).threads == requested  # without reading the machine


def test_omp_num_threads_is_followed_unless_threads_are_given(monkeypatch):
    """torchrun sets OMP_NUM_THREADS=1 per process: the auto choice must not override it."""
    monkeypatch.setattr(cpus, "read_cpus", lambda: CpuInfo(affinity=4, quota=None, others=0.0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert (cpus.auto_threads().threads, cpus.auto_threads().reason) == (1, "env")
    assert cpus.auto_threads(3).threads == 3
    for unusable in ("", "0", "two", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert (cpus.auto_threads().threads, cpus.auto_threads().reason) == (4, "quiet")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpus.auto_threads().threads == 4


def test_quota_files_v2_and_v1(tmp_path):
    assert cpus.parse_quota_v2("max 100000\n") is None
    assert cpus.parse_quota_v2("200000 100000\n") == 2.0
    assert cpus.parse_quota_v2("garbage") is None
    assert cpus.parse_quota_v1("-1\n", "100000\n") is None
    assert cpus.parse_quota_v1("150000", "100000") == 1.5
    # cgroup v2: the process's own cgroup holds the limit, the root says "max"
    root = tmp_path / "v2"
    (root / "box" / "job").mkdir(parents=True)
    (root / "cpu.max").write_text("max 100000\n")
    (root / "box" / "job" / "cpu.max").write_text("300000 100000\n")
    proc = tmp_path / "cgroup_v2"
    proc.write_text("0::/box/job\n")
    assert cpus.cgroup_quota(root, proc) == 3.0
    # cgroup v1: cpu,cpuacct controller line; quota in the cpu hierarchy
    root1 = tmp_path / "v1"
    (root1 / "cpu" / "docker" / "abc").mkdir(parents=True)
    (root1 / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("50000\n")
    (root1 / "cpu" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    proc1 = tmp_path / "cgroup_v1"
    proc1.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert cpus.cgroup_quota(root1, proc1) == 0.5
    # nothing there: no quota
    assert cpus.cgroup_quota(tmp_path / "none", tmp_path / "missing") is None


def test_runnable_counts_others_not_our_own_threads(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.10 2.00 1.50 4/180 12345\n")
    tasks = tmp_path / "task"
    for tid, state in ((10, "R"), (11, "S"), (12, "R")):
        (tasks / str(tid)).mkdir(parents=True)
        # the command name may hold spaces and parentheses: the state follows the last ')'
        (tasks / str(tid) / "stat").write_text(f"{tid} (py (x) y) {state} 1 2 3\n")
    assert cpus.runnable_now(loadavg, tasks) == (4, 2)
    assert cpus.runnable_now(tmp_path / "no-loadavg", tasks) is None


def test_other_load_averages_the_samples(monkeypatch):
    readings = iter([(3, 1), (2, 1), (4, 2), (1, 1)])  # others: 2, 1, 2, 0
    monkeypatch.setattr(cpus, "runnable_now", lambda: next(readings))
    assert cpus.other_load(samples=4, interval=0.0) == pytest.approx(1.25)


def test_workers_share_the_usable_cores(monkeypatch):
    monkeypatch.setattr(cpus, "affinity", lambda: 8)
    monkeypatch.setattr(cpus, "cgroup_quota", lambda: 6.0)
    assert [cpus.split_threads(w) for w in (1, 2, 3, 4, 12)] == [6, 3, 2, 1, 1]


# ---------------------------------------------------------------- in training


@pytest.fixture()
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _train(tmp_path, capsys, **opts):
    from cnnlab.workflows import train
    from test_train_loop import SPEC, bundle

    train(SPEC, bundle(), out=tmp_path / "run", epochs=1, batch_size=32, seed=0, report=False, **opts)
    return json.loads((tmp_path / "run" / "runtime.json").read_text()), capsys.readouterr().out


def test_auto_threads_follow_a_busy_machine_and_are_recorded(tmp_path, capsys, monkeypatch, restore_threads):
    if torch.get_num_threads() < 1:
        pytest.skip("no threads")
    monkeypatch.setattr(cpus, "read_cpus", lambda: CpuInfo(affinity=4, quota=None, others=3.0))
    runtime, out = _train(tmp_path, capsys)
    assert runtime["threads"] == 1 and runtime["reason"] == "busy" and runtime["others"] == 3.0
    assert torch.get_num_threads() == 1
    assert "threads 1 (auto: 4 cores, other processes keep 3.0 busy)" in out


def test_explicit_threads_win_in_training(tmp_path, capsys, monkeypatch, restore_threads):
    monkeypatch.setattr(cpus, "read_cpus", lambda: CpuInfo(affinity=4, quota=None, others=3.0))
    runtime, out = _train(tmp_path, capsys, threads=2)
    assert (runtime["threads"], runtime["reason"]) == (2, "forced")
    assert torch.get_num_threads() == 2
    assert "threads 2 (set by --threads)" in out


def test_a_resume_with_auto_threads_keeps_the_count_the_run_started_with(tmp_path, monkeypatch, capsys,
                                                                       restore_threads):
    """1 and 2 threads sum a conv backward in different orders (not bit-identical on this torch), so
    the auto choice is made once: a resume on a now-busy machine reuses the recorded count."""
    from cnnlab.train import TrainingInterrupted
    from cnnlab.train import checkpoint as ckpt
    from cnnlab.workflows import train
    from test_train_loop import SPEC, _stop_at, bundle

    opts = {"epochs": 2, "batch_size": 16, "lr": 0.01, "seed": 3, "report": False, "quiet": True}
    monkeypatch.setattr(cpus, "read_cpus", lambda: CpuInfo(affinity=2, quota=None, others=0.0))
    train(SPEC, bundle(), out=tmp_path / "ref", **opts)
    with monkeypatch.context() as m:
        _stop_at(m, 4)
        with pytest.raises(TrainingInterrupted):
            train(SPEC, bundle(), out=tmp_path / "cut", **opts)
    assert json.loads((tmp_path / "cut" / "runtime.json").read_text())["threads"] == 2
    monkeypatch.setattr(cpus, "read_cpus", lambda: CpuInfo(affinity=2, quota=None, others=1.0))  # now busy
    capsys.readouterr()
    train(tmp_path / "cut", bundle(), resume=True, **{**opts, "quiet": False})
    runtime = json.loads((tmp_path / "cut" / "runtime.json").read_text())
    assert (runtime["threads"], runtime["reason"]) == (2, "resumed")
    assert "not be bit-identical" not in capsys.readouterr().out
    ref, _ = ckpt.read_weights(tmp_path / "ref" / "checkpoints" / "last")
    got, _ = ckpt.read_weights(tmp_path / "cut" / "checkpoints" / "last")
    assert all(torch.equal(ref[k], got[k]) for k in ref)
