"""Exact resume in the DEFAULT configuration (issue 10): SIGKILL a real ``cnnlab train`` process at
random points of every phase (a training step, the epoch end, validation, the checkpoint writes,
the report), ``--resume`` each time, and the final weights equal an uninterrupted run's bit for bit.

The net has multi-channel convs on RGB input; the CPU defaults apply: channels-last on and AdamW
fused. The points are named hooks (``cnnlab.utils.testpoints``): the process announces the point
and waits there, and the test kills it with SIGKILL at that instant. Kills are chained: each
resumed process is killed again at a later point, so one chain of K kills costs K+1 processes.
Processes are forked from a pre-loaded interpreter (``tests/_cli_zygote.py``) running
``cnnlab.cli.main(argv)``, to save the ~5-10 s of imports of each ``python -m cnnlab`` start; one
case kills a plain ``python -m cnnlab`` process too.

Run: ``PYTHONPATH=src python -m pytest -q -m slow tests/test_train_trust_kill_slow.py`` (~2-3 min
on 2 busy cores).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from _trust_data import RESUME_SPEC, stripes_folder
from cnnlab.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

SPEC = RESUME_SPEC.format(name="trustkill")
PHASES = ("step", "epoch_end", "validation", "checkpoint", "report")


class Zygote:
    """The pre-loaded forking server of ``tests/_cli_zygote.py``."""

    def __init__(self, env: dict[str, str]) -> None:
        script = Path(__file__).with_name("_cli_zygote.py")
        self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        kind, pid = self._line().split()
        assert kind == "pid"
        return int(pid)

    def wait(self, pid: int) -> int:
        kind, got, code = self._line().split()
        assert kind == "exit" and int(got) == pid
        return int(code)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("kill")
    stripes_folder(root / "data")
    (root / "spec.yaml").write_text(SPEC)
    env = dict(os.environ, CNNLAB_CACHE=str(root / "cache"), MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH")]))
    zygote = Zygote(env)
    yield {"root": root, "zygote": zygote, "env": env}
    zygote.close()


def _train_args(root: Path, out: str, extra: tuple[str, ...]) -> list[str]:
    # default recipe (channels-last, fused AdamW on CPU); 72 training images / 8 per batch = 9 steps per epoch
    return ["train", str(root / "spec.yaml"), "--data", str(root / "data"), "--out", str(root / out),
            "--epochs", "3", "--batch-size", "8", "--eval-batch-size", "4", "--threads", "1", "--seed", "5",
            "--quiet", *extra]


def _run(lab: dict, argv: list[str], out: str, pause_at: str | None) -> tuple[int, list[str]]:
    """Run one process; with ``pause_at``, SIGKILL it once it waits at that point. Returns (code, points)."""
    root = lab["root"]
    points = root / f"{out}.points"
    points.unlink(missing_ok=True)
    env = {"CNNLAB_POINTS": str(points), "CNNLAB_PAUSE_AT": pause_at or ""}
    pid = lab["zygote"].start(argv, env, root / f"{out}.log")
    if pause_at is not None:
        deadline = time.time() + 120
        while f"paused {pause_at}" not in _read(points):
            assert time.time() < deadline, f"never reached {pause_at}: {(root / f'{out}.log').read_text()[-2000:]}"
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
    code = lab["zygote"].wait(pid)
    return code, [t for t in _read(points).splitlines() if not t.startswith("paused ")]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _pick(events: list[str], k: int, seed: int) -> list[str]:
    """``k`` random points in run order, at least one of each phase (two when k allows)."""
    rng = random.Random(seed)
    per_phase = 2 if k >= 2 * len(PHASES) else 1
    chosen: set[int] = set()
    for phase in PHASES:
        where = [i for i, e in enumerate(events) if e.split()[0] == phase]
        chosen.update(rng.sample(where, min(per_phase, len(where))))
    rest = [i for i in range(len(events)) if i not in chosen]
    chosen.update(rng.sample(rest, k - len(chosen)))
    return [events[i] for i in sorted(chosen)]


def _same_run(ref: Path, got: Path) -> None:
    for stem in ("last", "best"):
        a, meta_a = ckpt.read_weights(ref / "checkpoints" / stem)
        b, meta_b = ckpt.read_weights(got / "checkpoints" / stem)
        assert meta_a["epoch"] == meta_b["epoch"]
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), f"{stem}: {name} differs by {(a[name] - b[name]).abs().max()}"
    rows = [json.loads(r) for r in (got / "metrics.jsonl").read_text().splitlines()]
    ref_rows = [json.loads(r) for r in (ref / "metrics.jsonl").read_text().splitlines()]
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
    assert [{k: r[k] for k in keys} for r in rows] == [{k: r[k] for k in keys} for r in ref_rows]
    assert json.loads((got / "status.json").read_text())["state"] == "finished"
    assert (got / "report.html").is_file()


def _chain(lab: dict, name: str, extra: tuple[str, ...], kills: list[str]) -> None:
    root = lab["root"]
    argv = _train_args(root, name, extra)
    for i, point in enumerate(kills):
        code, _ = _run(lab, argv, f"{name}-{i}", point)
        assert code == -signal.SIGKILL
        argv = ["train", str(root / name), "--resume", "--quiet"]
    code, _ = _run(lab, argv, f"{name}-end", None)
    assert code == 0, (root / f"{name}-end.log").read_text()[-3000:]
    _same_run(root / f"ref{'-'.join(extra)}", root / name)


@pytest.mark.parametrize("extra,kills,chains", [
    ((), 21, 3),  # AdamW (fused), fp32: 21 kills in 3 chains
    (("--optimizer", "sgd"), 7, 1),
    (("--precision", "bf16"), 7, 1),
], ids=["adamw-fused", "sgd", "bf16"])
def test_sigkill_at_random_points_then_resume_gives_identical_weights(lab, extra, kills, chains):
    root = lab["root"]
    code, events = _run(lab, _train_args(root, f"ref{'-'.join(extra)}", extra), f"ref{'-'.join(extra)}", None)
    assert code == 0, (root / f"ref{'-'.join(extra)}.log").read_text()[-3000:]
    assert {e.split()[0] for e in events} == set(PHASES)
    assert len(events) == len(set(events)), "each point is named uniquely"
    picked = _pick(events, kills, seed=len(extra) * 101 + kills)
    assert {p.split()[0] for p in picked} == set(PHASES)
    for c in range(chains):
        _chain(lab, f"chain{c}{'-'.join(extra)}", extra, picked[c::chains])


def test_sigkill_of_a_plain_python_m_cnnlab_process(lab):
    """The same through ``python -m cnnlab`` itself (no zygote): killed during a step of epoch 2."""
    root = lab["root"]
    if not (root / "ref").exists():
        _run(lab, _train_args(root, "ref", ()), "ref", None)
    points = root / "plain.points"
    env = dict(lab["env"], CNNLAB_POINTS=str(points), CNNLAB_PAUSE_AT="step epoch=1 batch=4")
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", *_train_args(root, "plain", ())], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while "paused " not in _read(points):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    done = subprocess.run([sys.executable, "-m", "cnnlab", "train", str(root / "plain"), "--resume", "--quiet"],
                          env=lab["env"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _same_run(root / "ref", root / "plain")


def _paused(lab: dict, argv: list[str], out: str, point: str) -> int:
    """Start a process and return its pid once it waits at ``point`` (the caller kills it)."""
    root = lab["root"]
    points = root / f"{out}.points"
    points.unlink(missing_ok=True)
    pid = lab["zygote"].start(argv, {"CNNLAB_POINTS": str(points), "CNNLAB_PAUSE_AT": point}, root / f"{out}.log")
    deadline = time.time() + 120
    while f"paused {point}" not in _read(points):
        assert time.time() < deadline, (root / f"{out}.log").read_text()[-2000:]
        time.sleep(0.01)
    return pid


def test_a_second_writer_is_refused_while_a_run_trains(lab, capsys):
    """Issue item 2, as a user meets it: `--resume` (or a fresh training with the same --out) while the
    run is still training exits 2 naming the training process, and changes nothing."""
    from cnnlab.cli import main

    root = lab["root"]
    pid = _paused(lab, _train_args(root, "busy", ()), "busy", "step epoch=1 batch=2")
    try:
        before = {p: p.read_bytes() for p in (root / "busy").rglob("*") if p.is_file()}
        assert main(["train", str(root / "busy"), "--resume", "--quiet", "--no-report"]) == 2
        assert f"being trained by another process (pid {pid} on" in capsys.readouterr().err
        assert main(_train_args(root, "busy", ())) == 2
        assert "error:" in capsys.readouterr().err
        assert {p: p.read_bytes() for p in (root / "busy").rglob("*") if p.is_file()} == before
    finally:
        os.kill(pid, signal.SIGKILL)
        assert lab["zygote"].wait(pid) == -signal.SIGKILL


def test_a_run_killed_before_its_first_checkpoint_restarts_with_the_command_it_is_told(lab, capsys):
    """Issue item 7: killed in its first steps, the run is refused as a fresh training with a message
    naming `--resume`, and that command trains it to the uninterrupted run's weights."""
    from cnnlab.cli import main

    root = lab["root"]
    if not (root / "ref").exists():
        _run(lab, _train_args(root, "ref", ()), "ref", None)
    pid = _paused(lab, _train_args(root, "early", ()), "early", "step epoch=0 batch=2")
    os.kill(pid, signal.SIGKILL)
    assert lab["zygote"].wait(pid) == -signal.SIGKILL
    assert not (root / "early" / "checkpoints" / "resume.safetensors").exists()
    assert main(_train_args(root, "early", ())) == 2
    told = f"cnnlab train {root / 'early'} --resume"
    assert told in capsys.readouterr().err
    code, _ = _run(lab, told.split()[1:] + ["--quiet"], "early-resume", None)
    assert code == 0, (root / "early-resume.log").read_text()[-3000:]
    _same_run(root / "ref", root / "early")
