"""Every torch.distributed helper cnnlab uses, in one small module of explicit functions.

cnnlab trains on many processes with PyTorch's own engine: ``torchrun`` starts the processes and
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; each process
calls :func:`init_from_env` once, which joins the process group (NCCL on CUDA, gloo on CPU) and
says who this process is. Nothing else in cnnlab imports ``torch.distributed``.

    torchrun --nproc_per_node=2 -m cnnlab train lenet5 --data mnist       # one node, 2 processes
    cnnlab train lenet5 --data mnist --devices 2                          # the same, via launch()

Without torchrun (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) every helper is a
cheap no-op and :func:`init_from_env` returns a single-process :class:`DistInfo`:

>>> info = init_from_env(device="cpu", env={})
>>> (info.rank, info.world_size, info.is_main, info.distributed, info.backend)
(0, 1, True, False, None)

Rules (STYLE 12): no ``print`` patching, no mutated arguments; the caller decides what rank 0
prints and writes by asking :attr:`DistInfo.is_main`. A rank that dies makes the others fail
within ``timeout_s`` (default :data:`DEFAULT_TIMEOUT_S`, or ``CNNLAB_DIST_TIMEOUT`` seconds);
wrap the training loop in :func:`peer_guard` to turn that failure into a clear :class:`PeerFailure`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from cnnlab.errors import CnnlabError, RunError

DEFAULT_TIMEOUT_S = 300.0
"""Seconds a collective waits for the other ranks before the process gives up (env ``CNNLAB_DIST_TIMEOUT``)."""

_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_FAILED = False  # set once a collective failed: destroying the group could then hang


class PeerFailure(RunError):
    """Another rank died, hung past the timeout, or the network between ranks broke."""

    exit_code = 1
    # The broken process group still has gloo/NCCL threads waiting on the peer; the interpreter's
    # normal teardown destroys them and can abort the process (SIGABRT, "terminate called without
    # an active exception") after the message was printed. Callers leave with exit_process().
    hard_exit = True


def exit_process(code: int) -> NoReturn:
    """Flush stdout/stderr and end the process at once with ``code``, skipping interpreter
    teardown (which a broken process group can turn into an abort). Use after a PeerFailure."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@dataclass(frozen=True)
class DistInfo:
    """Who this process is in the job. ``world_size == 1`` means plain single-process training."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool
    backend: str | None  # "nccl" | "gloo" | None (not distributed)
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def describe(self) -> str:
        """One line for the log: ``rank 1/4 (local 1) on cuda:1, backend nccl``."""
        if not self.distributed:
            return f"single process on {self.device}"
        return (f"rank {self.rank}/{self.world_size} (local {self.local_rank}) on {self.device}, "
                f"backend {self.backend}, timeout {self.timeout_s:.0f} s")


def resolve_device(name: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA, then Apple MPS, then CPU; ``cuda`` -> ``cuda:<local_rank>``.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    text = str(name).lower()
    if text == "auto":
        if torch.cuda.is_available():
            text = "cuda"
        elif _mps_available():
            text = "mps"
        else:
            text = "cpu"
    if text == "cuda":
        text = f"cuda:{local_rank}"
    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise CnnlabError(f"unknown device {str(name)!r}; use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CnnlabError(f"device {str(name)!r} asked for, but this PyTorch sees no CUDA GPU "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        if (device.index or 0) >= count:
            raise CnnlabError(f"device {device} asked for, but only {count} CUDA GPU(s) are visible; "
                              f"start at most {count} processes per node (--nproc_per_node / --devices)")
    if device.type == "mps" and not _mps_available():
        raise CnnlabError(f"device {str(name)!r} asked for, but Apple MPS is not available here; use auto or cpu")
    return device


def init_from_env(device: str | torch.device = "auto", *, timeout_s: float | None = None,
                  backend: str | None = None, env: Mapping[str, str] | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, or stay single.

    ``device``: the trainer's ``--device``; under torchrun ``auto``/``cuda`` become
    ``cuda:LOCAL_RANK`` (NCCL) and ``cpu`` stays CPU (gloo). ``timeout_s`` bounds how long a
    collective waits for a dead or stuck rank. Calling it again returns the same answer.
    """
    env = os.environ if env is None else env
    timeout = _timeout_from(timeout_s, env)
    world = _env_int(env, "WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo(0, 1, 0, resolve_device(device), True, None, timeout)
    missing = [name for name in _TORCHRUN_VARS if not env.get(name)]
    if missing:
        raise RunError(f"WORLD_SIZE={world} is set but {', '.join(missing)} is missing from the "
                       "environment; start distributed training with torchrun (e.g. `torchrun "
                       "--nproc_per_node=2 -m cnnlab train ...`) or with --devices N")
    rank, local_rank = _env_int(env, "RANK", 0), _env_int(env, "LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank)
    if dev.type == "mps":
        raise RunError("distributed training on Apple MPS is not supported by PyTorch; use --device cpu")
    chosen = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"device_id": dev} if dev.type == "cuda" else {}
        try:
            dist.init_process_group(chosen, timeout=datetime.timedelta(seconds=timeout), **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise PeerFailure(f"rank {rank}/{world}: could not join the process group at "
                              f"{env.get('MASTER_ADDR')}:{env.get('MASTER_PORT')} with backend "
                              f"{chosen} ({_first_line(exc)}); check that every node uses the same "
                              "--rdzv_endpoint and that the port is open") from exc
    return DistInfo(rank, world, local_rank, dev, rank == 0, chosen, timeout)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place and return it (unchanged when not distributed).

    CPU tensors work under NCCL too: they travel through this rank's GPU and come back.
    """
    if not _active():
        return tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        on_gpu = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        _collective(lambda: dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM), "all_reduce")
        tensor.copy_(on_gpu.to(tensor.device))
        return tensor
    _collective(lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM), "all_reduce")
    return tensor


def reduce_sums(values: Sequence[float]) -> list[float]:
    """Sum a few Python numbers over all ranks (float64), e.g. ``[loss_sum, correct, count]``.

    Exact for counts below 2**53, so accuracy = correct / count is exact under DDP.

    >>> reduce_sums([1.5, 3.0])
    [1.5, 3.0]
    """
    if not _active():
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64)  # (len(values),)
    return [float(v) for v in all_reduce_sum(tensor).tolist()]


def barrier() -> None:
    """Wait until every rank reaches this point (no-op when not distributed)."""
    if not _active():
        return
    if dist.get_backend() == "nccl":
        _collective(lambda: dist.barrier(device_ids=[torch.cuda.current_device()]), "barrier")
    else:
        _collective(dist.barrier, "barrier")


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """Wrap ``model`` (already on ``info.device``) in DistributedDataParallel when distributed;
    returns ``model`` itself when single. (SyncBatchNorm conversion, if any, comes before: see
    ``cnnlab.train.setup.build_model``.)"""
    if not info.distributed:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module under DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers, in
    any nesting, for saving and analysis."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def explain_batch(info: DistInfo, per_rank_batch: int, lr: float, scaled: bool = False) -> str:
    """The log line that says what each rank sees, the global batch and what the LR applies to.

    ``scaled``: ``lr`` was scaled to the global batch (``--lr-scaling``), not taken as given.
    """
    if not info.distributed:
        return f"batch {per_rank_batch}, learning rate {lr:g}"
    total = per_rank_batch * info.world_size
    return (f"{info.world_size} processes ({info.backend}): each rank takes a disjoint shard of "
            f"every epoch and sees batches of {per_rank_batch}; gradients are averaged over the "
            f"global batch of {total} = {per_rank_batch} x {info.world_size}; learning rate "
            f"{lr:g} applies to that global batch "
            f"({'scaled to it by --lr-scaling' if scaled else 'not scaled automatically; see --lr-scaling'})")


@contextlib.contextmanager
def peer_guard(info: DistInfo) -> Iterator[None]:
    """Turn a dead, stuck or unreachable peer (raised anywhere inside, e.g. DDP's backward)
    into a :class:`PeerFailure` that says what happened and what to do."""
    try:
        yield
    except PeerFailure:
        raise
    except (dist.DistError, RuntimeError) as exc:
        if not info.distributed or not _looks_like_peer_failure(exc):
            raise
        raise _peer_failure(exc, "training step", info.rank, info.world_size, info.timeout_s) from exc


def cleanup() -> None:
    """Leave the process group (call in ``finally``); safe to call twice or when never joined."""
    if not _active():
        return
    if _FAILED:  # the group is broken; destroying it can block on the dead peer
        return
    with contextlib.suppress(RuntimeError, ValueError):
        dist.destroy_process_group()


def launch_command(argv: Sequence[str], nproc: int, *, python: str | None = None) -> list[str]:
    """The torchrun command that ``--devices N`` runs: this same cnnlab command on N processes.

    >>> launch_command(["train", "lenet5", "--devices", "2", "--epochs", "1"], 2, python="py")
    ['py', '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'cnnlab', 'train', 'lenet5', '--epochs', '1']
    """
    if nproc < 1:
        raise CnnlabError(f"--devices must be at least 1; received {nproc}")
    return [python or sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "cnnlab", *strip_devices_flag(argv)]


def strip_devices_flag(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--devices N`` / ``--devices=N`` (the children must not launch again)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            out.append(arg)
    return out


def launch(argv: Sequence[str], nproc: int, *, env: Mapping[str, str] | None = None) -> int:
    """Run ``cnnlab <argv>`` on ``nproc`` local processes through torchrun; return its exit code.

    Used by ``--devices N``. Refuses to nest inside an existing torchrun job. Ctrl-C reaches
    torchrun (same process group), which stops the workers; we wait for it to finish.
    """
    env = dict(os.environ if env is None else env)
    if env.get("TORCHELASTIC_RUN_ID") or int(env.get("WORLD_SIZE", "1") or 1) > 1:
        raise CnnlabError("--devices was given inside a torchrun job; use either torchrun or "
                          "--devices, not both")
    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise CnnlabError(f"--devices {nproc} asked for, but only {torch.cuda.device_count()} "
                          f"CUDA GPU(s) are visible; use --devices {torch.cuda.device_count()}")
    proc = subprocess.Popen(launch_command(argv, nproc), env=env)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # torchrun got the same SIGINT and is shutting the workers down
            continue


# ----------------------------------------------------------------------------- internals


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RunError(f"environment variable {name}={raw!r} is not an integer; torchrun sets it "
                       "for you, so unset it or launch with torchrun") from None


def _timeout_from(timeout_s: float | None, env: Mapping[str, str]) -> float:
    if timeout_s is None:
        raw = env.get("CNNLAB_DIST_TIMEOUT", "")
        try:
            timeout_s = float(raw) if raw else DEFAULT_TIMEOUT_S
        except ValueError:
            raise RunError(f"CNNLAB_DIST_TIMEOUT={raw!r} is not a number of seconds; e.g. 300") from None
    if not timeout_s > 0:
        raise RunError(f"the distributed timeout must be a positive number of seconds; received {timeout_s}")
    return float(timeout_s)


def _collective(op: Any, what: str) -> None:
    try:
        op()
    except (dist.DistError, RuntimeError, pickle.PicklingError) as exc:
        if isinstance(exc, pickle.PicklingError) or not _looks_like_peer_failure(exc):
            raise
        raise _peer_failure(exc, what, dist.get_rank(), dist.get_world_size(), None) from exc


_PEER_HINTS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket", "closed",
               "broken pipe", "store", "abort", "watchdog")


def _looks_like_peer_failure(exc: BaseException) -> bool:
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return any(hint in text for hint in _PEER_HINTS)


def _peer_failure(exc: BaseException, what: str, rank: int, world: int,
                  timeout_s: float | None) -> PeerFailure:
    global _FAILED
    _FAILED = True
    limit = f" (timeout {timeout_s:.0f} s)" if timeout_s else ""
    return PeerFailure(
        f"rank {rank}/{world}: lost contact with the other processes during {what}{limit}: "
        f"{_first_line(exc)}. Another rank probably died or hung; its own error (or torchrun's "
        "summary) names it. Fix that cause, then continue with `cnnlab train RUN --resume`.")


def _first_line(exc: BaseException) -> str:
    """The useful part of a backend message: first line, no C++ source location, no advice tail.

    >>> _first_line(RuntimeError("[/x/gloo/pair.cc:537] Read error: Connection reset by peer. This is typically caused by ..."))
    'Read error: Connection reset by peer'
    """
    text = str(exc).strip() or type(exc).__name__
    line = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h|hpp):\d+\]\s*", "", text.splitlines()[0])
    line = line.split(". This is typically caused", 1)[0]
    return line[:300].rstrip(". ")


def device_report() -> dict[str, Any]:
    """Everything ``cnnlab devices`` shows, as data."""

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"index": i, "name": props.name,
                         "memory_gib": round(props.total_memory / 2**30, 1),
                         "capability": f"{props.major}.{props.minor}"})
    mps = getattr(torch.backends, "mps", None)
    return {
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": gpus,
        "bf16_cuda": bool(gpus) and torch.cuda.is_bf16_supported(),
        "mps": bool(mps is not None and mps.is_available()),
        "backends": {name: bool(getattr(dist, f"is_{name}_available", lambda: False)())
                     for name in ("nccl", "gloo", "mpi")},
        "torchrun": {k: os.environ[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                "MASTER_PORT") if k in os.environ},
    }
