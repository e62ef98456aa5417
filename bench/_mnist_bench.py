"""Shared by the training benchmarks (``vs_keras_fit.py``, ``profile_train.py``, ``peak.py``): MNIST in memory.

``mnist_bundle(net, n)``: the first ``n`` MNIST training images shaped for ``net``'s input the way
``cnnlab train NET --data mnist`` shapes them (``load_data``: lenet5's 32×32 is a resize), as a
``DataBundle`` with no validation split (validation is not what these benchmarks time). Needs
``CNNLAB_DATA`` pointing at a folder with ``mnist/*-idx*-ubyte.gz`` (no download is attempted).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.analysis import analyze
from cnnlab.data import DataBundle, load_data
from cnnlab.spec import load_spec

# The Keras side's interpreter (its own venv: python3.11 -m venv V && V/bin/pip install
# "tensorflow-cpu==2.21.*" "keras==3.15.*"), the default of every --keras-python option.
KERAS_PYTHON = os.environ.get("CNNLAB_KERAS_PYTHON", "/work/keras-venv/bin/python")


@dataclass
class BenchRun:
    """What evaluate/predict/classify need of a run (``RunLike``), for a model built by a benchmark."""

    model: Any  # torch.nn.Module
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    resize: str = "crop"
    path: Path | None = None


def input_shape(net: str) -> tuple[int, int, int]:
    c, h, w = load_spec(net).input
    return int(c), int(h), int(w)


def mnist_bundle(net: str, n: int) -> DataBundle:
    """The first ``n`` MNIST training images for ``net`` (uint8 NCHW), no validation split."""
    if not os.environ.get("CNNLAB_DATA"):
        raise SystemExit("set CNNLAB_DATA to the folder holding mnist/ (e.g. /work/shared/data)")
    bundle = load_data("mnist", input_shape(net), val_split=0.0, seed=0, progress=False, download=False,
                       cache_dir=Path(tempfile.gettempdir()) / "cnnlab-bench-cache")
    pool = bundle.train
    if n > len(pool):
        raise SystemExit(f"asked for {n} images, MNIST train has {len(pool)}")
    bundle.train = pool.subset(np.arange(n))
    bundle.val = pool.subset(np.arange(0))
    bundle.test = None
    return bundle


def param_count(net: str) -> int:
    """Trainable parameters according to cnnlab's analysis (the one home of that arithmetic)."""
    return int(analyze(load_spec(net)).trainable_params)


def train_flops_per_image(net: str) -> float:
    """FLOPs of one training step per image: MACs × 2 (multiply + add) × 3 (forward + 2 backward)."""
    return float(analyze(load_spec(net)).total_macs) * 2 * 3


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0] if Path("/proc/loadavg").exists() else "?"
