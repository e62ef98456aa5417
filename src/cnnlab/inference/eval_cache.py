"""Reuse an evaluation's per-image log-probabilities when nothing that produced them has changed.

``evaluate(..., cache=PATH)`` stores the float32 ``(N, K)`` log-softmax it computed in ``PATH`` (an
``.npz``) with a key: the SHA-256 of the model's state (every ``state_dict`` tensor: name, dtype, shape,
bytes), of the images and labels, the classes, the normalisation, the batch size, the device and the
torch and cnnlab versions. A later call with the same key loads the array instead of running the model;
every figure is then derived from it by the same code (``result_from_log_probabilities``), so a cached
evaluation equals a fresh one exactly. A missing, stale, foreign or damaged file is simply recomputed and
replaced (written atomically); a folder that cannot be written only costs the saving.

>>> import numpy as np, tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "eval.npz"
>>> save(f, "k1", np.zeros((2, 3), np.float32))
>>> load(f, "k1", 2, 3).shape, load(f, "k2", 2, 3)
((2, 3), None)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.utils.io import atomic_write_bytes

FORMAT = 1
HEADER_BYTES = 4096  # room for the key, the zip directory and the .npy headers on top of the array


def cache_key(model: Any, images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
              mean: Sequence[float], std: Sequence[float], batch_size: int) -> str:
    """SHA-256 of everything the log-probabilities depend on (see the module docstring)."""
    import torch

    import cnnlab

    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT, "torch": torch.__version__, "cnnlab": cnnlab.__version__,
                         "model": type(model).__qualname__, "classes": [str(c) for c in classes],
                         "mean": [float(m) for m in mean], "std": [float(s) for s in std],
                         "batch": int(batch_size),
                         "device": str(next(iter(model.parameters()), torch.empty(0)).device)}).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # raw bytes, any dtype (0-d buffers too)
    for arr in (np.ascontiguousarray(images), np.ascontiguousarray(labels, dtype=np.int64)):
        h.update(f"{arr.dtype}|{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def load(path: str | os.PathLike[str], key: str, n: int, k: int) -> np.ndarray | None:
    """The cached ``(n, k)`` float32 log-probabilities under ``key``, or ``None`` (absent, stale, damaged)."""
    path = Path(path)
    try:
        if path.stat().st_size > n * k * 4 + HEADER_BYTES:  # bounded read: never allocate more than expected
            return None
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            logp = npz["logp"]
    except (OSError, ValueError, KeyError, EOFError):  # absent, truncated or not an npz
        return None
    except Exception:  # noqa: BLE001 - zipfile.BadZipFile and friends: a damaged cache is recomputed
        return None
    if logp.dtype != np.float32 or logp.shape != (n, k):
        return None
    return logp


def save(path: str | os.PathLike[str], key: str, logp: np.ndarray) -> None:
    """Store ``logp`` under ``key`` atomically; a folder that cannot be written is left as it is."""
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), logp=np.ascontiguousarray(logp, dtype=np.float32))
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # read-only run folder: the evaluation is still correct, only not kept
