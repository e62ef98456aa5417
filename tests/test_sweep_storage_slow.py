"""``cnnlab sweep`` against real storage: worker processes on SQLite and on a PostgreSQL server, a sweep
killed with SIGKILL and resumed. Slow (subprocesses that import torch and train): CI runs them.

Independent references: the grid is the literal product of the values given on the command line; the
trials are read back from the database with Optuna itself; every run folder is read back with
``load_run`` and its ``metrics.jsonl``.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from _sweep_helpers import (
    env,
    image_folder,
    postgres_server,
    run_sweep_cli,
    spec_file,
    sweep_cmd,
    trials_of,
)

pytestmark = pytest.mark.slow

LRS = (0.003, 0.01, 0.03)
BATCHES = (16, 32)
GRID = set(itertools.product(LRS, BATCHES))


def _args(tmp: Path, out: Path, epochs: int = 1, *extra: str) -> list[str]:
    return [str(spec_file(tmp / "tiny.yaml")), "--data", str(image_folder(tmp / "img")), "--out", str(out),
            "-p", "lr=" + ",".join(map(str, LRS)), "-p", "batch_size=" + ",".join(map(str, BATCHES)),
            "-p", f"epochs={epochs}", "-p", "augment=false", "--no-report", *extra]


def _complete(trials) -> list:
    return [t for t in trials if t.state.name == "COMPLETE"]


def _check_once(trials, epochs: int, folder: Path) -> None:
    """Every grid point completed by exactly one trial, whose run folder is a whole run of ``epochs``."""
    from cnnlab.train import load_run

    done = _complete(trials)
    points = Counter((t.params["lr"], t.params["batch_size"]) for t in done)
    assert set(points) == GRID
    assert all(n == 1 for n in points.values()), points
    for t in done:
        run = load_run(folder / t.user_attrs["run"], "best")
        assert [m["epoch"] for m in run.metrics] == list(range(1, epochs + 1))
        assert t.value == pytest.approx(max(m["val_acc"] for m in run.metrics))
        assert run.config.lr == t.params["lr"] and run.config.batch_size == t.params["batch_size"]


def test_two_workers_on_sqlite_run_every_point_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    res = run_sweep_cli(tmp_path, *_args(tmp_path, out, 1, "--workers", "2"))
    assert res.returncode == 0, res.stdout + res.stderr
    trials = trials_of(out)
    assert len(trials) == len(GRID) and all(t.state.name == "COMPLETE" for t in trials)
    _check_once(trials, 1, out)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers took trials
    assert (out / "study.db").is_file()
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + len(GRID)
    best = max(trials, key=lambda t: (t.value, -t.number))
    assert f"best (validation): trial {best.number}" in res.stdout
    assert json.loads((out / "results.json").read_text())["best"] == best.number


def _wait_for_mid_trial(out: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Until the study records a complete trial and another trial runs past its first epoch (it has a
    resume checkpoint: status.json says epoch >= 1 only after that checkpoint is written)."""
    from cnnlab.sweep.storage import load_study, open_storage

    end, study = time.time() + timeout, None
    while time.time() < end:
        assert proc.poll() is None, "the sweep ended before it could be killed; make the trials longer"
        time.sleep(0.1)
        if study is None:
            if not (out / "sweep.json").exists():
                continue
            study = load_study(open_storage(f"sqlite:///{out}/study.db"), out.name)
        if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
            continue
        for folder in (out / "trials").glob("*"):
            try:
                status = json.loads((folder / "status.json").read_text())
            except (OSError, ValueError):
                continue
            if status["state"] == "running" and int(status.get("epoch", 0)) >= 1:
                return
    raise AssertionError("no trial reached its first epoch in time")


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    epochs = 4
    proc = subprocess.Popen(sweep_cmd(*_args(tmp_path, out, epochs, "--workers", "2")), env=env(tmp_path),
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_for_mid_trial(out, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, as a power cut would
        proc.wait()
    before = trials_of(out)
    finished_before = {t.number: t.value for t in _complete(before)}
    killed = [t.number for t in before if t.state.name == "RUNNING"]
    assert finished_before and killed  # the kill landed mid-sweep and mid-trial

    res = run_sweep_cli(tmp_path, "--join", str(out), "--no-report")
    assert res.returncode == 0, res.stdout + res.stderr
    after = trials_of(out)
    _check_once(after, epochs, out)
    for number, value in finished_before.items():  # finished trials were not run again
        t = after[number]
        assert t.state.name == "COMPLETE" and t.value == value and not t.user_attrs.get("resumed")
    for number in killed:  # each killed trial failed (no heartbeat) and exactly one retry completed it
        assert after[number].state.name == "FAIL"
        retries = [t for t in after if t.user_attrs.get("retry_of") == number]
        assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
        assert retries[0].user_attrs["run"] == f"trials/{number:04d}"  # continued in its own run folder
    resumed = [t for t in after if t.user_attrs.get("resumed")]
    assert resumed, "a trial killed after its first epoch resumes from its checkpoint"


def test_two_machines_share_a_postgresql_study(tmp_path: Path) -> None:
    gen = postgres_server(tmp_path)
    url = next(gen)
    try:
        out, other = tmp_path / "sw", tmp_path / "machine2"
        other.mkdir()
        first = subprocess.Popen(sweep_cmd(*_args(tmp_path, out, 1, "--storage", url, "--workers", "2")),
                                 env=env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        end = time.time() + 120
        while not (out / "sweep.json").exists() and time.time() < end:
            time.sleep(0.1)
        joiner = subprocess.run(sweep_cmd("--join", "sw", "--storage", url, "--no-report"), env=env(tmp_path),
                                cwd=other, capture_output=True, text=True, timeout=300)
        log = first.communicate(timeout=300)[0]
        assert first.returncode == 0, log
        assert joiner.returncode == 0, joiner.stdout + joiner.stderr
        assert "postgresql://cnnlab@127.0.0.1" in (out / "sweep.json").read_text()
        trials = trials_of(out, url)
        assert len(trials) == len(GRID)
        done = _complete(trials)
        assert Counter((t.params["lr"], t.params["batch_size"]) for t in done) == Counter(GRID)
        from cnnlab.train import load_run

        here = [t for t in done if (out / t.user_attrs["run"] / "status.json").exists()]
        there = [t for t in done if (other / "sw" / t.user_attrs["run"] / "status.json").exists()]
        assert len(here) + len(there) == len(GRID)
        for t in done:
            base = out if t in here else other / "sw"
            run = load_run(base / t.user_attrs["run"])
            assert run.config.lr == t.params["lr"]
        assert len({t.user_attrs["pid"] for t in done}) >= 2
    finally:
        gen.close()


def test_ctrl_c_saves_running_trials_and_join_resumes_them(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    epochs = 4
    proc = subprocess.Popen(sweep_cmd(*_args(tmp_path, out, epochs, "--workers", "2")), env=env(tmp_path),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_mid_trial(out, proc)
        proc.send_signal(signal.SIGINT)
        log = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, log
    assert f"cnnlab sweep --join {out}" in log
    before = trials_of(out)
    stopped = [t for t in before if t.state.name == "FAIL" and t.user_attrs.get("interrupted")]
    assert stopped and all(t.user_attrs.get("error") is None for t in stopped)
    # a trial stopped inside its training loop saved its state (one still in its setup had none to save)
    # (a trial interrupted before it chose its run folder has no "run" attribute)
    saved = [t for t in stopped
             if "run" in t.user_attrs and (out / t.user_attrs["run"] / "checkpoints" / "resume.safetensors").exists()]
    assert saved, "the trial seen past its first epoch saved no resume checkpoint"
    for t in stopped:  # a retry that continues it is queued
        assert [r.state.name for r in before if r.user_attrs.get("retry_of") == t.number] == ["WAITING"]
    res = run_sweep_cli(tmp_path, "--join", str(out), "--no-report")
    assert res.returncode == 0, res.stdout + res.stderr
    after = trials_of(out)
    _check_once(after, epochs, out)
    assert all(any(r.user_attrs.get("resumed") for r in after if r.user_attrs.get("retry_of") == t.number)
               for t in saved)
