"""Small stand-ins for the using-commands tests (test_use_*.py): a run-like object and tiny data.

Nothing here trains for long or touches the real datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.data import ImageSet


@dataclass
class StandInRun:
    """The fields the inference engines read from a ``Run``, around any model (no run folder)."""

    model: Any
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    resize: str = "crop"


def real_run(folder: Path, in_ch: int, size: int, classes: list[str], mean: tuple[float, ...],
             std: tuple[float, ...], seed: int = 0, outputs: int | None = None) -> Any:
    """A real run folder, written with the train layer's own writers and read back with ``load_run``,
    so evaluate/predict/export go through the run's real preprocessing. The network is ``tiny_cnn``'s
    (conv + BN + pool + dropout + dense) as a spec, with non-trivial BatchNorm statistics so that
    eval mode matters. ``outputs`` != len(classes) writes a run whose model disagrees with its classes."""
    from cnnlab.model import build
    from cnnlab.spec import load_spec
    from cnnlab.train import RunDir, TrainConfig, load_run
    from cnnlab.train.checkpoint import model_weights, write_weights

    spec = load_spec({"name": "tiny", "input": [in_ch, size, size],
                      "layers": [{"conv": {"filters": 4, "padding": 1, "activation": "none"}}, "batchnorm",
                                 {"activation": "relu"}, {"pool": 2}, {"dropout": 0.5}, "flatten",
                                 {"output": outputs or len(classes)}]})
    torch.manual_seed(seed)
    model = build(spec)
    with torch.no_grad():
        bn = model.layers[1].bn
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    run_dir = RunDir(folder)
    run_dir.create()
    data = {"source": "in-memory", "input_shape": [in_ch, size, size], "resize": "crop",
            "mean": list(mean), "std": list(std), "counts": {"train": 1, "val": 1}, "skipped": 0}
    run_dir.write_setup(TrainConfig(), spec.to_dict(), list(classes), data)
    weights = model_weights(model)
    write_weights(run_dir.checkpoints / "best", weights, {"epoch": 1})
    write_weights(run_dir.checkpoints / "last", weights, {"epoch": 1})
    run_dir.set_status("finished", 1)
    return load_run(folder)


def reference_input(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """The training formula written out by hand, independent of cnnlab: ``(x/255 - mean)/std``."""
    x = torch.as_tensor(np.ascontiguousarray(images)).double() / 255  # (N, C, H, W)
    m = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return ((x - m) / s).float()


def TinySet(images: np.ndarray, labels: Any, classes: list[str], sources: list[str]) -> ImageSet:  # noqa: N802
    """The data layer's own ``ImageSet`` (so contract drift shows up here)."""
    return ImageSet(images=images, labels=np.asarray(labels, np.int64), classes=list(classes), sources=list(sources))


def tiny_cnn(in_ch: int, size: int, k: int, seed: int = 0) -> nn.Module:
    """Conv + BN + dropout + linear: covers the layers whose eval/train behaviour differs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_ch, 4, 3, padding=1),  # (B, 4, S, S)
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 4, S/2, S/2)
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * (size // 2) ** 2, k),  # (B, K)
    )


def random_set(n: int, shape: tuple[int, int, int], classes: list[str], seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = rng.integers(0, len(classes), size=n).astype(np.int64)
    return TinySet(images, labels, list(classes), [f"img{i}.png" for i in range(n)])


def stripes_set(n: int, size: int = 8, seed: int = 0, flip: float = 0.0) -> ImageSet:
    """Two easy classes: bright left half ("left") vs bright right half ("right"), with pixel noise;
    a fraction ``flip`` of the labels is then flipped (so the loss cannot reach zero)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    images = rng.integers(0, 60, size=(n, 1, size, size)).astype(np.int64)
    half = size // 2
    for i, y in enumerate(labels):
        cols = slice(0, half) if y == 0 else slice(half, size)
        images[i, 0, :, cols] += 160
    flipped = rng.random(n) < flip
    labels[flipped] = 1 - labels[flipped]
    return TinySet(images.astype(np.uint8), labels, ["left", "right"], [f"s{i}" for i in range(n)])
