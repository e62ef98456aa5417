"""Runtime pieces of the loop: the device, threads, mixed precision and random-number state.

>>> sorted(capture_rng())[:1]
['torch']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from cnnlab.errors import CnnlabError
from cnnlab.train.config import Precision
from cnnlab.utils.cpus import ThreadChoice, auto_threads


def check_precision(precision: Precision, device: torch.device) -> None:
    """Refuse combinations that cannot work, before any training time is spent."""
    if precision is Precision.FP16 and device.type == "cpu":
        raise CnnlabError("--precision fp16 needs a GPU (fp16 autocast on CPU is slow and unsupported for "
                          "many ops); use --precision bf16 on CPU, or fp32")
    if precision is Precision.BF16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise CnnlabError("--precision bf16: this GPU has no bfloat16 support; use --precision fp16")


def bf16_is_slow(precision: Precision, device: torch.device) -> bool:
    """bf16 on a CPU whose oneDNN has no bf16 kernels (no AVX512-BF16/AMX: e.g. AVX2-only CPUs).

    PyTorch then runs bf16 convolutions with its generic ``_slow_conv2d`` kernels: on the AVX2 dev VM
    keras-mnist trained about 8x slower in bf16 than in fp32 (``bench/results/profile_train_*``)."""
    return precision is Precision.BF16 and device.type == "cpu" and not _mkldnn_bf16()


def _mkldnn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


@contextlib.contextmanager
def autocast(precision: Precision, device: torch.device) -> Iterator[None]:
    """Mixed precision for the forward pass; parameters (and BatchNorm statistics) stay float32."""
    if precision is Precision.FP32:
        yield
        return
    dtype = torch.bfloat16 if precision is Precision.BF16 else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def set_threads(threads: int | None, device: torch.device | None = None) -> ThreadChoice:
    """Set torch's intra-op threads: ``threads`` (>= 1), or (None) chosen from the CPUs this process can
    actually use now (affinity, cgroup quota, other busy processes; ``cnnlab.utils.cpus``). On a GPU the
    CPU threads only feed it: None keeps torch's default there."""
    if threads is None and device is not None and device.type != "cpu":
        choice = ThreadChoice(torch.get_num_threads(), "default")
    else:
        choice = auto_threads(threads)
    torch.set_num_threads(choice.threads)
    return choice


def capture_rng() -> dict[str, torch.Tensor]:
    """Every generator the training step draws from (dropout): CPU, and each CUDA device."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda.{i}"] = s
    return states


def restore_rng(states: dict[str, torch.Tensor]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"].to(torch.uint8))
    cuda = [states[k] for k in sorted((k for k in states if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda[: torch.cuda.device_count()]])
