"""lr-find: a sensible suggestion on a tiny problem (checked by actually training with it), the
given model and PyTorch's random state untouched, early stop on divergence, the plot written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _use_helpers import stripes_set
from cnnlab.errors import CnnlabError
from cnnlab.train import TrainConfig
from cnnlab.train.lr_find import lr_find, suggest

MEAN, STD = (0.3,), (0.35,)
pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 2))


def _loss_after_training(model: nn.Module, data, lr: float, steps: int = 30) -> float:  # type: ignore[no-untyped-def]
    """Independent check: plain AdamW for ``steps`` full-batch steps, then the training loss."""
    model = model.train()
    x = (torch.from_numpy(data.images).float() / 255 - MEAN[0]) / STD[0]
    y = torch.from_numpy(data.labels)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def test_suggestion_is_sensible_and_model_untouched(tmp_path: Path) -> None:
    data = stripes_set(256, size=8, seed=0, flip=0.1)  # noisy labels: the loss cannot reach 0
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    cfg = TrainConfig(optimizer="adamw", weight_decay=0.0)
    res = lr_find(model, data, mean=MEAN, std=STD, config=cfg, start_lr=1e-6, end_lr=10.0, num_iter=80,
                  batch_size=32)
    # nothing about the caller's model or the global random state changed
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng_before, torch.get_rng_state())
    assert model.training  # mode left as it was
    # the curve: exponential lr steps, the loss falls then (with lr up to 10) climbs
    assert res.lrs[0] == pytest.approx(1e-6)
    ratios = np.diff(np.log(res.lrs))
    assert np.allclose(ratios, ratios[0])
    assert min(res.smoothed) < 0.8 * res.smoothed[0]  # from chance (ln 2) towards H(0.1) = 0.33
    assert res.suggestion is not None and res.lr_at_min is not None and res.suggestion <= res.lr_at_min
    # sensible = as good as the best of a learning-rate grid trained independently (plain AdamW),
    # and within a decade of that grid's best rate
    at_suggestion = _loss_after_training(_model(), data, res.suggestion)
    grid = [10.0 ** e for e in np.arange(-5.0, 0.5, 0.5)]
    losses = [_loss_after_training(_model(), data, lr) for lr in grid]
    best = int(np.argmin(losses))
    assert at_suggestion <= 1.25 * losses[best] + 0.02, (res.suggestion, at_suggestion, grid[best], losses[best])
    assert abs(math.log10(res.suggestion) - math.log10(grid[best])) <= 1.0, (res.suggestion, grid[best])
    from cnnlab.visualize import plot_lr_find

    plot = plot_lr_find(res, tmp_path / "lr.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.glob(".*tmp")) == []


def test_stops_early_when_the_loss_diverges() -> None:
    data = stripes_set(128, size=8, seed=1, flip=0.2)
    cfg = TrainConfig(optimizer="sgd", weight_decay=0.0)
    res = lr_find(_model(), data, mean=MEAN, std=STD, config=cfg, start_lr=1e-3, end_lr=1e4, num_iter=100,
                  batch_size=32)
    assert res.stopped == "diverged"
    assert len(res.lrs) < 100
    assert max(res.losses) > 4 * min(res.losses)  # it did blow up before stopping


def test_same_seed_same_curve() -> None:
    data = stripes_set(64, size=8, seed=2)
    cfg = TrainConfig(weight_decay=0.0)
    kw = {"mean": MEAN, "std": STD, "config": cfg, "num_iter": 15, "batch_size": 16, "seed": 3}
    assert lr_find(_model(), data, **kw).losses == lr_find(_model(), data, **kw).losses


def test_suggest_finds_the_steepest_point_of_a_known_curve() -> None:
    lrs = [10 ** (e / 10) for e in range(-70, 1)]  # 1e-7 .. 1
    # a logistic drop centred at lr = 1e-3 (steepest there), flat before and after
    loss = [2.0 - 1.5 / (1 + math.exp(-4 * (math.log10(lr) + 3))) for lr in lrs]
    steepest, low = suggest(lrs, loss)
    assert steepest == pytest.approx(1e-3, rel=0.3)
    assert low == lrs[-1]
    assert suggest(lrs, [1.0] * len(lrs)) == (None, None)  # a flat curve gives no suggestion


def test_bad_range_is_an_error() -> None:
    data = stripes_set(8)
    with pytest.raises(CnnlabError, match="start_lr < end_lr"):
        lr_find(_model(), data, mean=MEAN, std=STD, start_lr=1.0, end_lr=0.1)
    with pytest.raises(CnnlabError, match="mean= and std="):
        lr_find(_model(), data)
