"""Learning-rate schedules as pure functions of the optimizer step.

A schedule is ``lr_at(step) -> float`` over ``total`` steps. Being a function of the step alone
(no hidden state), it resumes exactly: the checkpoint stores the step, nothing else.

- ``onecycle``: warm up from ``peak/25`` to ``peak`` (cosine) over the first ``warmup`` fraction,
  then anneal (cosine) to ``peak/25/1e4`` (Smith & Topin 2018); step for step the values of
  ``torch.optim.lr_scheduler.OneCycleLR(anneal_strategy="cos")``.
- ``cosine``: linear warm-up from 0 over ``warmup``, then cosine decay to 0.
- ``constant``: ``peak`` throughout.
- ``step``: ``peak`` times the factor of every milestone reached (``milestones``: ``(step, factor)``,
  from ``BatchPlan.step_milestones`` so that epoch milestones line up with a batch schedule), after
  the same linear warm-up from ~0 as ``cosine`` over ``warmup`` (Goyal et al. 2017; default 0).

``total`` is the run's true number of optimizer steps (``BatchPlan.total``), which a batch
schedule changes.

>>> s = LRSchedule("onecycle", peak=0.01, total=100, warmup=0.3)
>>> round(s.lr_at(0), 6), round(s.lr_at(29), 6), round(s.lr_at(99), 10)
(0.0004, 0.01, 4e-08)
>>> s = LRSchedule("step", peak=0.1, total=30, warmup=0.0, milestones=((10, 0.2), (20, 0.2)))
>>> [round(s.lr_at(k), 6) for k in (0, 9, 10, 19, 20, 29)]
[0.1, 0.1, 0.02, 0.02, 0.004, 0.004]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnlab.train.config import Schedule


@dataclass(frozen=True)
class LRSchedule:
    kind: Schedule | str
    peak: float
    total: int
    warmup: float = 0.25
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    milestones: tuple[tuple[int, float], ...] = ()  # step decay: from step S on, lr *= F

    def lr_at(self, step: int) -> float:
        """The learning rate for optimizer step ``step`` (0-based; clamped to ``[0, total]``)."""
        kind = Schedule(self.kind)
        total = max(1, self.total)
        step = min(max(step, 0), total)
        warm = int(round(self.warmup * total))
        if kind is Schedule.CONSTANT:
            return self.peak
        if kind is Schedule.ONECYCLE:  # the same numbers as torch's OneCycleLR(anneal_strategy="cos")
            start = self.peak / self.div_factor
            end = start / self.final_div_factor
            up_end = float(self.warmup * total) - 1
            if up_end > 0 and step <= up_end:
                return _cos_interp(start, self.peak, step / up_end)
            return _cos_interp(self.peak, end, min(1.0, (step - up_end) / max(1e-9, total - 1 - up_end)))
        ramp = (step + 1) / (warm + 1) if step < warm else 1.0  # linear warm-up (cosine, step)
        if kind is Schedule.STEP:
            lr = self.peak * ramp
            for first, factor in self.milestones:  # one factor at a time, as torch's MultiStepLR
                lr = lr * factor if step >= first else lr
            return lr
        if step < warm:
            return self.peak * ramp
        return _cos_interp(self.peak, 0.0, (step - warm) / max(1, total - warm))


def _cos_interp(start: float, end: float, frac: float) -> float:
    """Cosine from ``start`` (frac=0) to ``end`` (frac=1)."""
    return end + (start - end) * (1 + math.cos(math.pi * frac)) / 2
