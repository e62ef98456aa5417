"""Learning-rate range test (Leslie Smith, 2015; the fastai ``lr_find``): which learning rate to use?

A *copy* of the model is trained for ``num_iter`` mini-batches while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``; the loss is recorded at each step. The test
stops early once a running (bias-corrected exponential moving) average of the loss exceeds
``diverge`` times its best value, or the loss becomes NaN/inf. Afterwards the recorded curve is
smoothed without lag and without letting single spikes through (a centred running median, then
a centred running mean; see :func:`smooth`). The suggested learning rate is where the smoothed loss falls
fastest (the most negative slope against log10(lr), before the minimum); when the curve is too
short or flat for that, it is the learning rate at the minimum divided by 10. The model, its optimizer state and PyTorch's global random state are left as
they were.

CLI: ``cnnlab lr-find lenet --data mnist`` (prints the suggestion, writes ``lr-find-lenet.png``).

>>> from cnnlab.data import load_data                                  # doctest: +SKIP
>>> from cnnlab.model import build                                     # doctest: +SKIP
>>> bundle = load_data("mnist", (1, 28, 28))                           # doctest: +SKIP
>>> res = lr_find(build("lenet5"), bundle)                             # doctest: +SKIP
>>> from cnnlab.visualize import plot_lr_find                          # doctest: +SKIP
>>> res.suggestion, plot_lr_find(res, "lr.png")                                 # doctest: +SKIP
(0.0028, PosixPath('lr.png'))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.model import model_device

if TYPE_CHECKING:
    import torch

    from cnnlab.train import TrainConfig


@dataclass
class LRFindResult:
    """The recorded curve and the suggestions drawn from it."""

    lrs: list[float]  # learning rate used at each step
    losses: list[float]  # raw mini-batch loss at each step
    smoothed: list[float]  # the loss smoothed without lag (centred running median, then mean)
    suggestion: float | None  # what to use (steepest descent, else min/10); None if the loss never fell
    method: str  # "steepest" | "min/10" | "none"
    steepest: float | None  # lr where the smoothed loss falls fastest
    lr_at_min: float | None  # lr at the lowest smoothed loss
    stopped: str  # "completed" | "diverged"
    optimizer: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "method": self.method,
            "steepest": self.steepest,
            "lr_at_min": self.lr_at_min,
            "min_over_10": None if self.lr_at_min is None else self.lr_at_min / 10,
            "stopped": self.stopped,
            "optimizer": self.optimizer,
            "steps": len(self.lrs),
            "lrs": self.lrs,
            "losses": self.losses,
            "smoothed": self.smoothed,
        }


def lr_find(
    model: Any,
    data: Any,
    *,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    config: TrainConfig | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    batch_size: int | None = None,
    beta: float = 0.9,
    diverge: float = 4.0,
    seed: int = 0,
    device: Any = None,
) -> LRFindResult:
    """Run the range test on a copy of ``model`` (an ``nn.Module`` or a run) with ``data``.

    ``data`` is a ``DataBundle`` (its ``train`` split, ``mean`` and ``std`` are used) or an
    ``ImageSet`` with ``mean``/``std`` given. ``config`` (a ``TrainConfig``; a run's own config
    when ``model`` is a run, else the defaults) picks the optimizer, weight decay, label
    smoothing and batch size, so the test measures the same training step as ``cnnlab train``.
    """
    import torch

    from cnnlab.train import TrainConfig

    _check_range(start_lr, end_lr, num_iter, beta, diverge)
    module = getattr(model, "model", model)  # a run: its model
    config = config if config is not None else getattr(model, "config", None) or TrainConfig()
    imageset, mean, std = _split(data, mean, std)
    cfg = config.resolve(tuple(int(d) for d in imageset.images.shape[1:]))
    device = torch.device(device) if device is not None else model_device(module)
    trial = copy.deepcopy(module).to(device).train()  # the caller's model is never touched
    batches = _batches(imageset, batch_size or cfg.batch_size, mean, std, seed, device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)  # dropout masks: reproducible, and the global state is restored
        lrs, losses, stopped = _sweep(trial, cfg, batches, start_lr, end_lr, num_iter, beta, diverge)
    del trial
    smoothed = smooth(losses)
    steepest, lr_at_min = suggest(lrs, smoothed)
    if steepest is not None:
        suggestion, method = steepest, "steepest"
    elif lr_at_min is not None:
        suggestion, method = lr_at_min / 10, "min/10"
    else:
        suggestion, method = None, "none"
    return LRFindResult(lrs, losses, smoothed, suggestion, method, steepest, lr_at_min, stopped, cfg.optimizer.value)


def _sweep(
    model: torch.nn.Module, cfg: Any, batches: Iterator[tuple[Any, Any]], start_lr: float, end_lr: float,
    num_iter: int, beta: float, diverge: float,
) -> tuple[list[float], list[float], str]:
    """Train step by step with an exponentially growing lr; stop on divergence. ``(lrs, losses, why)``"""
    import torch

    from cnnlab.train.setup import build_optimizer

    optimizer = build_optimizer(model, cfg, model_device(model))
    gamma = (end_lr / start_lr) ** (1.0 / max(1, num_iter - 1))  # lr multiplier per step
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    for step in range(num_iter):
        lr = start_lr * gamma**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(batches)  # (B, C, H, W) float32, (B,) int64
        logits = model(x)  # (B, K)
        loss = torch.nn.functional.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        value = float(loss.detach())
        if not math.isfinite(value):
            return lrs, losses, "diverged"
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        avg = beta * avg + (1 - beta) * value
        current = avg / (1 - beta ** (step + 1))  # bias-corrected EMA (causal: for the stop rule)
        lrs.append(lr)
        losses.append(value)
        if step > 0 and current > diverge * best:
            return lrs, losses, "diverged"
        best = min(best, current)
    return lrs, losses, "completed"


def smooth(values: list[float], half_width: int | None = None) -> list[float]:
    """Zero-lag, spike-robust smoothing: a centred running median, then a centred running mean.

    Each window spans ``half_width`` points either side (default: 2.5 % of the curve, at least 1),
    shrinking at the ends. A one-way moving average would lag (pushing the minimum and the
    suggestion to too-high rates) and a single exploding batch would pull a mean up; the median
    ignores isolated spikes and being centred it does not lag.

    >>> smooth([1.0, 1.0, 9.0, 1.0, 1.0], 1)
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    v = np.asarray(values, dtype=np.float64)
    h = half_width if half_width is not None else max(1, len(v) // 40)

    def centred(x: np.ndarray, reduce: Any) -> np.ndarray:
        return np.array([reduce(x[max(0, i - h) : i + h + 1]) for i in range(len(x))])

    return [float(x) for x in centred(centred(v, np.median), np.mean)]


def suggest(lrs: list[float], smoothed: list[float], skip_start: int = 0) -> tuple[float | None, float | None]:
    """``(steepest, lr_at_min)`` from a recorded curve.

    ``steepest`` is the lr with the most negative slope d(loss)/d(log10 lr), measured as a central
    difference over ``w`` points each side (``w`` = 4 % of the curve, at least 1, which tames batch
    noise), between the start (after ``skip_start`` points, default 5 %) and ``w`` points before
    the minimum. It is ``None`` when fewer than 3 such points exist or the loss at the minimum is
    not at least 2 % below the start. ``lr_at_min`` is ``None`` when the loss never fell.

    >>> lrs = [10 ** (e / 4) for e in range(-28, 0)]
    >>> loss = [2.3 - 2.0 / (1 + math.exp(-3 * (math.log10(lr) + 3.5))) for lr in lrs]
    >>> steep, low = suggest(lrs, loss)
    >>> round(math.log10(steep), 2)
    -3.5
    """
    if len(smoothed) < 2:
        return None, None
    s = np.asarray(smoothed, dtype=np.float64)
    i_min = int(np.nanargmin(s))
    if not s[i_min] < s[0]:
        return None, None
    lr_at_min = float(lrs[i_min])
    w = max(1, len(s) // 25)
    first = max(skip_start or len(s) // 20, w)
    last = i_min - w  # inclusive
    if last - first < 2 or s[i_min] > 0.98 * s[0]:
        return None, lr_at_min
    x = np.log10(np.asarray(lrs, dtype=np.float64))
    idx = np.arange(first, last + 1)
    slope = (s[idx + w] - s[idx - w]) / (x[idx + w] - x[idx - w])  # d loss / d log10(lr)
    return float(lrs[int(idx[np.argmin(slope)])]), lr_at_min


def _split(data: Any, mean: Any, std: Any) -> tuple[Any, tuple[float, ...], tuple[float, ...]]:
    imageset = getattr(data, "train", data)
    mean = mean if mean is not None else getattr(data, "mean", None)
    std = std if std is not None else getattr(data, "std", None)
    if mean is None or std is None:
        raise CnnlabError("lr_find needs the normalisation: pass a DataBundle, or mean= and std= with an ImageSet")
    if len(imageset.labels) == 0:
        raise CnnlabError("lr_find needs training images, but the training split is empty")
    return imageset, tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _batches(imageset: Any, batch_size: int, mean: Any, std: Any, seed: int, device: Any) -> Iterator[tuple[Any, Any]]:
    """Endless shuffled training batches from the data layer's ``BatchLoader`` (no augmentation)."""
    from cnnlab.data import BatchLoader

    batch_size = min(batch_size, len(imageset.labels))
    loader = BatchLoader(imageset, batch_size, shuffle=True, seed=seed, mean=mean, std=std,
                         device=device, augment=None, drop_last=True)
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def _check_range(start_lr: float, end_lr: float, num_iter: int, beta: float, diverge: float) -> None:
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise CnnlabError(f"lr range must satisfy 0 < start_lr < end_lr; received start_lr={start_lr:g}, end_lr={end_lr:g}")
    if num_iter < 2:
        raise CnnlabError(f"the number of steps (num_iter, --iters) must be at least 2 (a curve needs points); "
                          f"received {num_iter}")
    if not 0 <= beta < 1:
        raise CnnlabError(f"beta (smoothing) must be in [0, 1); received {beta}")
    if diverge <= 1:
        raise CnnlabError(f"diverge must be above 1 (a loss ratio); received {diverge}")
