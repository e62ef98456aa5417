"""The one home of batch-size and step arithmetic: epoch -> batch size, epoch <-> optimizer steps.

A batch schedule (Smith, Kindermans, Ying & Le 2017, "Don't decay the learning rate, increase the
batch size") multiplies the batch size after chosen counts of completed epochs; the learning rate
does not change because of it. With it the number of steps per epoch changes, so every schedule,
the progress bar, the loader and ``--resume`` ask a ``BatchPlan`` instead of multiplying
``epochs * steps_per_epoch``. ``scaled_lr`` is the peak learning rate under ``lr_scaling``
(Goyal et al. 2017 linear, Hoffer, Hubara & Soudry 2017 square root), from the *initial* batch.

>>> plan = BatchPlan.build(batch_size=100, batch_schedule=[(2, 2)], epochs=4, samples=1000)
>>> [plan.batch_size(e) for e in range(4)], [plan.steps_in(e) for e in range(4)], plan.total
([100, 100, 200, 200], [10, 10, 5, 5], 30)
>>> plan.first_step(3), plan.position(24), plan.position(25)
(25, (2, 4), (3, 0))
>>> scaled_lr(0.1, "linear", 1024, 256), round(scaled_lr(0.1, "sqrt", 1024, 256), 12)
(0.4, 0.2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cnnlab.errors import CnnlabError

MAX_BATCH = 2**31 - 1


def multiply_batch(batch: int, factor: float, epoch: int) -> int:
    """``batch * factor`` as a whole number >= 1, else a ``CnnlabError`` naming the milestone."""
    new = batch * factor
    whole = round(new) if math.isfinite(new) else 0
    if not (1 <= whole <= MAX_BATCH and abs(new - whole) <= 1e-9 * max(1.0, abs(new))):
        hint = max(1, round(new)) / batch if math.isfinite(new) else 2
        raise CnnlabError(
            f"training config: batch_schedule: after epoch {epoch} the batch size {batch} x {factor:g} = {new:g} "
            f"is not a whole number from 1 to {MAX_BATCH}; choose a factor that keeps it whole, e.g. {epoch}:{hint:g}")
    return int(whole)


def batch_sizes(batch_size: int, batch_schedule: Sequence[tuple[int, float]] | None) -> list[tuple[int, int]]:
    """``[(first epoch, batch size), ...]``: the segments of the run, the first starting at epoch 0.

    >>> batch_sizes(128, [(10, 5), (20, 0.5)])
    [(0, 128), (10, 640), (20, 320)]
    """
    segments = [(0, int(batch_size))]
    for epoch, factor in batch_schedule or []:
        segments.append((int(epoch), multiply_batch(segments[-1][1], factor, int(epoch))))
    return segments


def drop_last(n_train: int, batch: int, world_size: int = 1) -> bool:
    """Drop an epoch's last, incomplete batch when there are at least two full (global) batches."""
    return n_train >= batch * 2 * world_size


def steps_for(samples: int, batch: int, dropped: bool, max_steps: int | None = None) -> int:
    """Optimizer steps of an epoch of ``samples`` (this process's share) in batches of ``batch``."""
    steps = samples // batch if dropped else math.ceil(samples / batch)
    return steps if max_steps is None else min(steps, max_steps)


class Recipe(Protocol):
    """The ``TrainConfig`` fields a plan reads (``config`` imports this module, so not the class itself)."""

    batch_size: int
    batch_schedule: list[tuple[int, float | int]] | None
    epochs: int
    max_steps_per_epoch: int | None


@dataclass(frozen=True)
class BatchPlan:
    """Batch size and step count of every epoch, as segments ``(first epoch, batch, steps per epoch,
    drop the last incomplete batch)``."""

    segments: tuple[tuple[int, int, int, bool], ...]
    epochs: int

    @classmethod
    def build(cls, *, batch_size: int, batch_schedule: Sequence[tuple[int, float]] | None, epochs: int,
              samples: int, n_train: int | None = None, world_size: int = 1,
              max_steps: int | None = None) -> BatchPlan:
        """``samples``: this process's images per epoch (``len(loader.indices())``); ``n_train``: all of them."""
        n_all = samples if n_train is None else n_train
        segs = []
        for first, batch in batch_sizes(batch_size, batch_schedule):
            dropped = drop_last(n_all, batch, world_size)
            segs.append((first, batch, steps_for(samples, batch, dropped, max_steps), dropped))
        return cls(tuple(segs), int(epochs))

    @classmethod
    def constant(cls, batch_size: int, steps: int, epochs: int) -> BatchPlan:
        """One batch size, ``steps`` steps in every epoch."""
        return cls(((0, int(batch_size), int(steps), False),), int(epochs))

    @classmethod
    def for_config(cls, cfg: Recipe, samples: int, n_train: int, world_size: int = 1) -> BatchPlan:
        """The plan of a ``TrainConfig``'s run."""
        return cls.build(batch_size=cfg.batch_size, batch_schedule=cfg.batch_schedule, epochs=cfg.epochs,
                         samples=samples, n_train=n_train, world_size=world_size, max_steps=cfg.max_steps_per_epoch)

    def _segment(self, epoch: int) -> tuple[int, int, int, bool]:
        return [s for s in self.segments if s[0] <= epoch][-1]

    def batch_size(self, epoch: int) -> int:
        """Batch size (per process) of epoch ``epoch`` (0-based)."""
        return self._segment(epoch)[1]

    def drop_last(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` drops its last, incomplete batch."""
        return self._segment(epoch)[3]

    def steps_in(self, epoch: int) -> int:
        """Optimizer steps of epoch ``epoch``."""
        return self._segment(epoch)[2]

    def first_step(self, epoch: int) -> int:
        """Optimizer steps done before epoch ``epoch`` starts (``first_step(epochs)`` is the total)."""
        done = 0
        bounds = [s[0] for s in self.segments[1:]] + [max(epoch, self.epochs)]
        for (first, _, steps, _), end in zip(self.segments, bounds, strict=True):
            done += steps * max(0, min(end, epoch) - first)
        return done

    @property
    def total(self) -> int:
        """Optimizer steps of the whole run: what every learning-rate schedule spans."""
        return self.first_step(self.epochs)

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch)`` of optimizer step ``step`` (0-based): the inverse of ``first_step``."""
        epoch = 0
        while epoch + 1 < self.epochs and self.first_step(epoch + 1) <= step:
            epoch += 1
        return epoch, step - self.first_step(epoch)

    def step_milestones(self, epoch_factors: Sequence[tuple[int, float]] | None) -> tuple[tuple[int, float], ...]:
        """Epoch milestones (after E completed epochs) as optimizer-step milestones (from step S on)."""
        return tuple((self.first_step(int(e)), float(f)) for e, f in epoch_factors or [])

    def stretches(self) -> list[tuple[int, int, int, int]]:
        """``(first epoch, last epoch, batch, steps per epoch)`` (1-based epochs) for messages and reports."""
        ends = [s[0] for s in self.segments[1:]] + [self.epochs]
        return [(first + 1, end, batch, steps) for (first, batch, steps, _), end in zip(self.segments, ends, strict=True)]


def scaled_lr(lr: float, scaling: str | None, batch: int, reference: int) -> float:
    """The peak learning rate: ``lr`` is meant for ``reference``; linear: x batch/ref, sqrt: x sqrt(batch/ref)."""
    if scaling is None:
        return float(lr)
    ratio = batch / reference
    kind = getattr(scaling, "value", scaling)
    if kind == "linear":
        return float(lr) * ratio
    if kind == "sqrt":
        return float(lr) * math.sqrt(ratio)
    raise CnnlabError(f"lr_scaling={scaling!r} is not an option; use linear or sqrt")
