"""The four built-in studies: each paper, its claim, the arms we train and the quick/full sizes.

Pure data and arithmetic (no torch, no optuna): ``cnnlab study list`` and the tests read it fast.
A study is a list of arms; each arm is one ``cnnlab.sweep`` grid over ``seed`` (plus, for
``batch-vs-lr``, over ``batch_size`` x ``lr``) with the arm's training options fixed.

>>> plan = get_study("increase-batch").plan("quick")
>>> [a.key for a in plan.arms], plan.seeds
(['decay', 'increase'], [0, 1, 2])
>>> planned_updates(10_000, 2, 32)            # 312 full batches of 32 per epoch (the last partial one dropped)
624
>>> planned_updates(10_000, 4, 32, [(2, 5)])  # after 2 epochs the batch is 160: 62 steps per epoch
748
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import CnnlabError, did_you_mean

QUICK, FULL = "quick", "full"
VAL_SPLIT = 0.05  # validation images only draw the curves; nothing is chosen on them except batch-vs-lr's best lr
DATA_SEED = 0  # the data split (and the training subset) is the same for every arm and seed
# Every study trains without augmentation (the 1998 paper's 0.95 % is without distortions) and with
# SGD + Nesterov momentum 0.9, the optimizer of the three 2017 papers.
COMMON = {"optimizer": "sgd", "momentum": 0.9, "augment": False, "weight_decay": 0.0005}

# LeNet-5 with batch normalisation after each convolution: the ghost-BN study's network (28x28 input)
LENET_BN: dict[str, Any] = {
    "name": "lenet5-bn",
    "description": "LeNet-5 (modern) with batch normalisation after each convolution; ghost-bn study",
    "input": [1, 28, 28],
    "layers": [{"conv": {"filters": 6, "kernel": 5, "padding": 2}}, {"batchnorm": {}}, {"pool": 2},
               {"conv": {"filters": 16, "kernel": 5}}, {"batchnorm": {}}, {"pool": 2}, "flatten",
               {"dense": 120}, {"dense": 84}, {"output": 10}],
}


@dataclass(frozen=True)
class Size:
    """One size of a study: training images (``None``: the whole training split), epochs, seeds."""

    limit: int | None
    epochs: int
    seeds: int
    minutes: float  # expected wall time on 2 quiet CPU cores (quick) or a laptop (full)
    batch: int = 32  # the small batch of the study
    large: int = 512  # the large batch (batch-vs-lr's top, ghost-bn's large batch)


@dataclass(frozen=True)
class Arm:
    """One arm: a fixed set of training options, trained once per seed (one sweep)."""

    key: str
    label: str
    config: dict[str, Any]
    spec: str | dict[str, Any] = "lenet5"
    grid: tuple[str, ...] = ()  # further sweep axes, e.g. ("batch_size=32,128", "lr=0.01,0.02")

    @property
    def batch_schedule(self) -> list[tuple[int, float]]:
        return [(int(e), float(f)) for e, f in self.config.get("batch_schedule") or []]


@dataclass(frozen=True)
class Plan:
    """What ``run_study`` trains: the arms, the seeds, the subset."""

    study: str
    size: str
    seeds: list[int]
    limit: int | None
    epochs: int
    arms: list[Arm]
    val_split: float = VAL_SPLIT
    data_seed: int = DATA_SEED

    def sweep_params(self, arm: Arm) -> list[str]:
        """The arm's sweep axes: its grid plus the seeds."""
        return [*arm.grid, "seed=" + ",".join(str(s) for s in self.seeds)]

    def trials(self) -> int:
        """Runs in all: each arm's grid (read as the sweep reads it, | and quotes too) times the seeds."""
        from cnnlab.sweep.space import parse_param

        per_arm = [math.prod(len(parse_param(g).grid()) for g in a.grid) for a in self.arms]
        return sum(per_arm) * len(self.seeds)


@dataclass(frozen=True)
class Study:
    name: str
    paper: str  # full citation
    short: str  # "Smith et al. 2017"
    kind: str  # the analysis: "arms" (mean +- std per arm), "grid" (best lr per batch), "gap", "target"
    sizes: dict[str, Size]
    arms: Callable[[Size], list[Arm]]
    min_seeds: int = 2
    target_error: float | None = None  # the paper's test error (lenet5-1998)
    reference: str | None = None  # the arm the others are compared with

    def plan(self, size: str = QUICK, seeds: int | None = None) -> Plan:
        if size not in self.sizes:
            raise CnnlabError(f"study {self.name}: unknown size {size!r}; use quick or full")
        s = self.sizes[size]
        n = s.seeds if seeds is None else int(seeds)
        if n < self.min_seeds:
            raise CnnlabError(f"study {self.name}: --seeds {n} is too few; it compares arms within the noise "
                              f"between seeds, so it needs at least {self.min_seeds} (default {s.seeds})")
        if n > 20:
            raise CnnlabError(f"study {self.name}: --seeds {n}: use at most 20 seeds")
        return Plan(self.name, size, list(range(n)), s.limit, s.epochs, self.arms(s))

    def expected_minutes(self, size: str) -> float:
        return self.sizes[size].minutes


def planned_updates(n_train: int, epochs: int, batch_size: int,
                    batch_schedule: Iterable[Sequence[float]] = ()) -> int:
    """Optimizer steps of a run: per epoch ``n // batch`` (the trainer drops the last partial batch when
    the set holds at least two batches, else ``ceil``), the batch multiplied by each factor of
    ``batch_schedule`` once that many epochs are complete."""
    schedule = sorted((int(e), float(f)) for e, f in batch_schedule)
    total = 0
    for epoch in range(epochs):  # ``epoch`` epochs are complete when this one starts
        batch = batch_size
        for done, factor in schedule:
            if epoch >= done:
                batch = int(round(batch * factor))
        total += n_train // batch if n_train >= 2 * batch else math.ceil(n_train / batch)
    return total


# ------------------------------------------------------------------ the studies
def _milestones(epochs: int) -> list[int]:
    """Two decays, at a third and two thirds of the epochs (Smith et al. decay at fixed epochs too)."""
    return [max(1, round(epochs / 3)), max(2, round(2 * epochs / 3))]


def _increase_batch(s: Size) -> list[Arm]:
    factor = 5  # Smith et al.: the learning rate decays by 5, or the batch grows by 5
    miles = _milestones(s.epochs)
    base = {**COMMON, "epochs": s.epochs, "batch_size": s.batch, "lr": 0.05, "warmup": 0.0}
    decay = Arm("decay", "lr decay (batch fixed)",
                {**base, "schedule": "step", "lr_steps": [[m, 1 / factor] for m in miles]})
    grow = Arm("increase", "batch increase (lr fixed)",
               {**base, "schedule": "constant", "batch_schedule": [[m, factor] for m in miles]})
    return [decay, grow]


def _batch_vs_lr(s: Size) -> list[Arm]:
    batches = sorted({s.batch, 4 * s.batch, s.large})  # a set: a small `large` must not list a batch twice
    lrs = [0.0125 * 2 ** k for k in range(6)]  # 0.0125 .. 0.4: factor 2 steps
    grid = ("batch_size=" + ",".join(map(str, batches)), "lr=" + ",".join(f"{v:g}" for v in lrs))
    cfg = {**COMMON, "epochs": s.epochs, "schedule": "cosine", "warmup": 0.1}  # Goyal: warm-up, then decay
    return [Arm("grid", "batch size x learning rate", cfg, grid=grid)]


def _ghost_bn(s: Size) -> list[Arm]:
    lr = 0.02
    ratio = s.large / s.batch
    base = {**COMMON, "epochs": s.epochs, "schedule": "cosine", "warmup": 0.1}
    ghost = {**LENET_BN, "name": "lenet5-ghostbn", "layers": [{"batchnorm": {"ghost": s.batch}} if isinstance(layer, dict) and "batchnorm" in layer
                                    else layer for layer in LENET_BN["layers"]]}
    long_epochs = s.epochs * 4  # Hoffer's regime adaptation trains ratio x longer (same updates); we train 4x
    return [
        Arm("small", f"small batch {s.batch}", {**base, "batch_size": s.batch, "lr": lr}, LENET_BN),
        Arm("large", f"large batch {s.large}, same lr", {**base, "batch_size": s.large, "lr": lr}, LENET_BN),
        Arm("sqrt", f"large, lr x sqrt({ratio:g})", {**base, "batch_size": s.large, "lr": lr * math.sqrt(ratio)},
            LENET_BN),
        Arm("ghost", f"large, sqrt lr, ghost BN {s.batch}",
            {**base, "batch_size": s.large, "lr": lr * math.sqrt(ratio)}, ghost),
        Arm("longer", f"large, sqrt lr, ghost BN, {long_epochs} epochs",
            {**base, "batch_size": s.large, "lr": lr * math.sqrt(ratio), "epochs": long_epochs}, ghost),
    ]


# LeCun et al. 1998, Section III-A: global learning rate 0.0005 for 2 passes, 0.0002 for 3, 0.0001 for 3,
# 0.00005 for 4, 0.00001 afterwards (20 passes). As factors at completed passes: the shape we keep.
PAPER_STEPS = [(2, 0.4), (5, 0.5), (8, 0.5), (12, 0.2)]


def _lenet_1998(s: Size) -> list[Arm]:
    # the quick size keeps the shape, squeezed: one decay after each of the first epochs
    steps = [[e, f] for e, f in PAPER_STEPS] if s.epochs >= 20 else \
            [[e + 1, f] for e, f in zip(range(s.epochs - 1), [f for _, f in PAPER_STEPS], strict=False)]
    cfg = {**COMMON, "weight_decay": 0.0, "epochs": s.epochs, "batch_size": 16, "lr": 0.002, "schedule": "step",
           "lr_steps": steps, "warmup": 0.0, "resize": "pad"}
    return [Arm("lenet5-1998", "LeNet-5 (1998), RBF output", cfg, "lenet5-1998")]


STUDIES: dict[str, Study] = {s.name: s for s in [
    Study("increase-batch",
          "Smith, S. L., Kindermans, P.-J., Ying, C. & Le, Q. V. (2017). Don't Decay the Learning Rate, "
          "Increase the Batch Size. arXiv:1711.00489 (ICLR 2018).",
          "Smith et al. 2017", "arms",
          {QUICK: Size(10_000, 6, 3, 5.0), FULL: Size(None, 30, 3, 60.0, batch=64)},
          _increase_batch, reference="decay"),
    Study("batch-vs-lr",
          "Goyal, P., Dollár, P., Girshick, R., Noordhuis, P., Wesolowski, L., Kyrola, A., Tulloch, A., Jia, Y. & "
          "He, K. (2017). Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour. arXiv:1706.02677.",
          "Goyal et al. 2017", "grid",
          {QUICK: Size(10_000, 3, 1, 5.0), FULL: Size(None, 10, 2, 90.0)},
          _batch_vs_lr, min_seeds=1),
    Study("ghost-bn",
          "Hoffer, E., Hubara, I. & Soudry, D. (2017). Train longer, generalize better: closing the generalization "
          "gap in large batch training of neural networks. NeurIPS 2017, arXiv:1705.08741.",
          "Hoffer et al. 2017", "gap",
          {QUICK: Size(10_000, 2, 2, 5.0, large=256), FULL: Size(None, 10, 3, 120.0, large=512)},
          _ghost_bn, reference="small"),
    Study("lenet5-1998",
          "LeCun, Y., Bottou, L., Bengio, Y. & Haffner, P. (1998). Gradient-Based Learning Applied to Document "
          "Recognition. Proceedings of the IEEE 86(11), 2278-2324.",
          "LeCun et al. 1998", "target",
          {QUICK: Size(10_000, 4, 2, 5.0), FULL: Size(None, 20, 3, 60.0)},
          _lenet_1998, target_error=0.0095),
]}


def get_study(name: str) -> Study:
    """The study called ``name``; an unknown name is a ``CnnlabError`` that lists the studies."""
    if name not in STUDIES:
        raise CnnlabError(f"unknown study {name!r}{did_you_mean(name, list(STUDIES))}; "
                          f"the studies are: {', '.join(STUDIES)} (see `cnnlab study list`)")
    return STUDIES[name]


__all__ = ["STUDIES", "Study", "Arm", "Plan", "Size", "get_study", "planned_updates", "QUICK", "FULL",
           "PAPER_STEPS", "LENET_BN"]
