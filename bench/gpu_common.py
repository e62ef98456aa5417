"""Shared pieces of the GPU benchmarks (``bench/gpu_*.py``): MNIST from IDX files, device facts,
result files. Plain numpy/torch only, so the hand-written baseline shares no code with cnnlab.

Not run by itself; see ``bench/gpu_run.sh``.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual constants, pixels scaled to [0, 1]


def mnist_folder() -> Path:
    """``$CNNLAB_DATA/mnist``, else the repo's ignored ``.data/mnist``, else the shared copy."""
    candidates = [Path(os.environ["CNNLAB_DATA"]) / "mnist"] if os.environ.get("CNNLAB_DATA") else []
    candidates += [ROOT / ".data" / "mnist", ROOT.parent / "shared" / "data" / "mnist"]
    for folder in candidates:
        if (folder / "train-images-idx3-ubyte.gz").is_file():
            return folder
    raise SystemExit(f"MNIST IDX files not found in any of {[str(c) for c in candidates]}")


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def load_mnist(limit_train: int | None = None, limit_test: int | None = None) -> tuple[np.ndarray, ...]:
    """(train images (N, 28, 28) uint8, train labels, test images, test labels)."""
    folder = mnist_folder()
    xtr, ytr = _idx(folder / "train-images-idx3-ubyte.gz"), _idx(folder / "train-labels-idx1-ubyte.gz")
    xte, yte = _idx(folder / "t10k-images-idx3-ubyte.gz"), _idx(folder / "t10k-labels-idx1-ubyte.gz")
    return xtr[:limit_train], ytr[:limit_train], xte[:limit_test], yte[:limit_test]


def pick_device(smoke: bool) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if not smoke:
        raise SystemExit("no CUDA device: run with --smoke for the CPU check of this script")
    return torch.device("cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now(device: torch.device) -> float:
    """A timestamp after all queued GPU work has finished."""
    sync(device)
    return time.perf_counter()


def device_facts(device: torch.device) -> dict[str, Any]:
    facts: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                             "device": str(device), "cpu": platform.processor() or platform.machine(),
                             "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                     cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return facts


def write_result(name: str, result: dict[str, Any]) -> Path:
    """``bench/results/<name>.json`` (and ``$OUT/<name>.json`` when ``$OUT`` is set)."""
    text = json.dumps(result, indent=2, default=str)
    path = ROOT / "bench" / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return path


def first_reaching(accs: list[float], times: list[float], target: float) -> dict[str, Any]:
    """Epoch (1-based) and cumulative training seconds at which ``accs`` first reaches ``target``.

    >>> first_reaching([0.98, 0.996, 0.997], [1.0, 1.0, 1.0], 0.995)
    {'reached': True, 'epoch': 2, 'train_s': 2.0}
    """
    total = 0.0
    for epoch, (acc, seconds) in enumerate(zip(accs, times, strict=True), start=1):
        total += seconds
        if acc >= target:
            return {"reached": True, "epoch": epoch, "train_s": round(total, 4)}
    return {"reached": False, "epoch": None, "train_s": None}
