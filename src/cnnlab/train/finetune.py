"""Fine-tuning: train only the head for the first epochs, then everything, with discriminative LRs.

fastai's ``fine_tune`` recipe, as ``TrainConfig`` options:

- ``freeze_epochs`` N: for epochs ``0..N-1`` every spec layer but the head (the last layer with
  tensors) is frozen: its parameters get no gradient (so the optimizer, weight decay included,
  leaves them alone) and its BatchNorm layers stay in eval mode, so their running statistics (the
  ones the pretrained weights were trained with) are used and not updated by the new data. From
  epoch N on, everything trains and BatchNorm follows ``model.train()`` again.
- the learning-rate schedule restarts at the unfreezing step (``TwoPhaseSchedule``): the frozen
  epochs get their own warm-up and decay, then the whole network gets a fresh one, as fastai does;
- ``lr_ratio`` r (discriminative learning rates): the first layer with parameters learns at ``r``
  times the head's rate, the layers between at geometric steps (``r ** ((n-1-k)/(n-1))`` for the
  k-th of n), so early, general features move least. Each optimizer group carries ``lr_scale``; the
  trainer multiplies the schedule's rate by it.

>>> [round(s, 3) for s in lr_scales(3, 0.01)]
[0.01, 0.1, 1.0]
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from cnnlab.train.batches import BatchPlan
from cnnlab.train.init_from import head_index, layer_of
from cnnlab.train.schedule import LRSchedule


@dataclasses.dataclass(frozen=True)
class TwoPhaseSchedule:
    """fastai's ``fine_tune``: one schedule (warm-up included) over the frozen epochs, a fresh one after.

    Still a pure function of the step, so ``--resume`` stays exact.
    """

    first: LRSchedule
    second: LRSchedule
    boundary: int  # first step of the unfrozen phase

    def lr_at(self, step: int) -> float:
        return self.first.lr_at(step) if step < self.boundary else self.second.lr_at(step - self.boundary)


def lr_scales(n: int, ratio: float) -> list[float]:
    """LR multipliers of n parameterised layers, first to head: ``ratio`` ... 1, geometric."""
    if n <= 1:
        return [1.0] * n
    return [ratio ** ((n - 1 - k) / (n - 1)) for k in range(n)]


def param_groups(raw: torch.nn.Module, weight_decay: float, ratio: float) -> list[dict[str, Any]]:
    """Optimizer groups: per spec layer (with its ``lr_scale``), decay vs no decay (biases, norm scales).

    Every parameter is listed, frozen or not, so that unfreezing needs no new optimizer.
    """
    by_layer: dict[int, list[tuple[str, torch.nn.Parameter]]] = {}
    for name, p in raw.named_parameters():
        index = layer_of(name)
        by_layer.setdefault(-1 if index is None else index, []).append((name, p))
    order = sorted(by_layer)
    scales = lr_scales(len(order), ratio)
    groups: list[dict[str, Any]] = []
    for index, scale in zip(order, scales, strict=True):
        params = [p for _, p in by_layer[index]]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for group, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if group:
                groups.append({"params": group, "weight_decay": wd, "lr_scale": scale, "layer": index})
    return groups


class FreezeSchedule:
    """Freezes all spec layers but the head while ``epoch < freeze_epochs``; call ``start_epoch`` after ``model.train()``."""

    def __init__(self, raw: torch.nn.Module, freeze_epochs: int) -> None:
        self.raw = raw
        self.freeze_epochs = freeze_epochs
        self.head = head_index(raw)
        # parameters that the spec itself marks untrainable (e.g. fixed RBF codes) stay so
        self._trainable = {name: p.requires_grad for name, p in raw.named_parameters()}

    def frozen_at(self, epoch: int) -> bool:
        return epoch < self.freeze_epochs

    def is_frozen(self, name: str, epoch: int) -> bool:
        """Is parameter/module ``name`` frozen in ``epoch`` (0-based)?"""
        return self.frozen_at(epoch) and layer_of(name + ".") != self.head

    def start_epoch(self, epoch: int) -> None:
        """Set ``requires_grad`` for this epoch and put frozen BatchNorm layers in eval mode."""
        for name, p in self.raw.named_parameters():
            p.requires_grad_(self._trainable[name] and not self.is_frozen(name, epoch))
        if not self.frozen_at(epoch):
            return
        for name, module in self.raw.named_modules():
            if isinstance(module, _BatchNorm) and self.is_frozen(name, epoch):
                module.eval()  # use, do not update, the pretrained running statistics

    def lr_schedule(self, base: LRSchedule, steps: int | BatchPlan) -> LRSchedule | TwoPhaseSchedule:
        """``base`` split at the unfreezing step into two schedules of the same kind and peak.

        ``steps``: steps per epoch, or the run's ``BatchPlan`` (a batch schedule changes them).
        """
        boundary = steps.first_step(self.freeze_epochs) if isinstance(steps, BatchPlan) else self.freeze_epochs * steps
        if boundary <= 0 or boundary >= base.total:
            return base
        return TwoPhaseSchedule(dataclasses.replace(base, total=boundary),
                                dataclasses.replace(base, total=base.total - boundary), boundary)

    def counts(self, epoch: int) -> tuple[int, int]:
        """(trainable, frozen) parameter counts in ``epoch``."""
        trainable = frozen = 0
        for name, p in self.raw.named_parameters():
            if self._trainable[name] and not self.is_frozen(name, epoch):
                trainable += p.numel()
            else:
                frozen += p.numel()
        return trainable, frozen
