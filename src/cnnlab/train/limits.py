"""Refuse a training run that cannot fit in memory, before anything is loaded or allocated.

The analysis already estimates the memory of one training step (weights, gradients, optimizer
state, the activations autograd keeps, buffers) without building anything. :func:`check_fits`
compares that figure, at the run's batch size, with what the device can give: free CUDA memory,
or for the CPU the available RAM (``MemAvailable``) capped by the process's address-space limit.
``force=True`` (``cnnlab train --force``) skips the check. :func:`out_of_memory` turns an
allocator failure that still happens into a ``CnnlabError`` and marks the run folder "failed".
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError

# share of the available memory a run may plan to use: the estimate leaves out the data set,
# the evaluation batches and the allocator's own overhead
USABLE_SHARE = 0.8


class OutOfMemory(CnnlabError):
    """The run needs more memory than the device has."""


# The optimizer step allocates temporaries the analysis leaves out: AdamW on a CPU, one dense
# layer of 47 M parameters, grew by 5.5x the weights after the model was built (gradients 1x,
# moments 2x, temporaries ~2.5x; 4.5x with foreach). Counted here as 2x the weights.
STEP_TEMPORARIES = 2.0


def step_bytes(memory: Any, batch_size: int) -> int:
    """Bytes of one training step at ``batch_size``, from a batch-1 ``MemoryEstimate``."""
    per_sample = memory.activations // max(memory.batch, 1)
    fixed = memory.weights * (1 + STEP_TEMPORARIES) + memory.gradients + memory.optimizer + memory.buffers
    return int(fixed + per_sample * batch_size)


def available_bytes(device: Any) -> tuple[int | None, str]:
    """``(bytes, what)``: free memory of ``device`` (a ``torch.device``), or ``None`` when unknown."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free), f"{device}"
    if getattr(device, "type", "cpu") == "mps":
        return None, "MPS memory"
    ram = _mem_available()
    limit = _address_space_left()
    if limit is not None and (ram is None or limit < ram):
        return limit, "ulimit -v"
    return ram, "RAM"


def check_fits(analysis: Any, batch_size: int, device: Any, *, force: bool = False, lang: str = "en") -> None:
    """Raise :class:`OutOfMemory` when one training step would need more than the device has."""
    if force:
        return
    need = step_bytes(analysis.memory, batch_size)
    have, what = available_bytes(device)
    if have is None or need <= have * USABLE_SHARE:
        return
    from cnnlab.i18n import percent, tr

    m = analysis.memory
    per_sample = m.activations // max(m.batch, 1)
    raise OutOfMemory(tr(
        "train.too_big", lang, name=analysis.name, batch=batch_size, need=_gb(need, lang),
        weights=_gb(m.weights, lang), gradients=_gb(m.gradients, lang), optimizer=_gb(m.optimizer, lang),
        activations=_gb(per_sample * batch_size, lang), temporaries=_gb(int(m.weights * STEP_TEMPORARIES), lang), have=_gb(have, lang), what=what,
        share=percent(USABLE_SHARE, lang, 0)))


@contextlib.contextmanager
def out_of_memory(run_path: Path | None, lang: str = "en") -> Iterator[None]:
    """Turn ``MemoryError`` / ``torch.OutOfMemoryError`` into :class:`OutOfMemory`, never leaving
    ``run_path/status.json`` at "running"."""
    try:
        yield
    except MemoryError:
        _mark_failed(run_path)
        raise OutOfMemory(_oom_message(run_path, lang)) from None
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        _mark_failed(run_path)
        raise OutOfMemory(_oom_message(run_path, lang)) from None


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocator failure (``torch.OutOfMemoryError``, the CPU allocator's error)."""
    text = str(exc)
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in text or "can't allocate memory" in text)


def _oom_message(run_path: Path | None, lang: str) -> str:
    from cnnlab.i18n import tr

    return tr("train.oom", lang, path=run_path or "-")


def _mark_failed(run_path: Path | None) -> None:
    if run_path is None:
        return
    status = run_path / "status.json"
    try:
        payload = json.loads(status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(payload, dict) and payload.get("state") == "running":
        payload.update(state="failed", reason="out of memory")
        from cnnlab.utils.io import atomic_write_text

        atomic_write_text(status, json.dumps(payload) + "\n")


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def _address_space_left() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(soft - used, 0)


def _gb(n: int, lang: str = "en") -> str:
    from cnnlab.i18n import decimal

    if n >= 1 << 30:
        return f"{decimal(n / (1 << 30), lang, 1)} GiB"
    if n >= 1 << 20:
        return f"{decimal(n / (1 << 20), lang, 1)} MiB"
    return f"{decimal(n / (1 << 10), lang, 1)} KiB"
