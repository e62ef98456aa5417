"""``TrainConfig``: every training option, typed, with defaults, round-tripping to YAML.

The CLI builds one from ``--config FILE`` (a YAML mapping of these fields) overridden by flags;
the resolved config (``resolve()``: ``auto`` values made concrete) is saved as ``RUN/config.yaml``.

>>> c = TrainConfig(epochs=3, optimizer="sgd")
>>> c.optimizer
<Optimizer.SGD: 'sgd'>
>>> TrainConfig.from_dict(c.to_dict()) == c
True
>>> TrainConfig.from_dict({"epoch": 3})
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: training config: unknown option 'epoch'; did you mean 'epochs'?
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cnnlab.data import defaults
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.train.batches import MAX_BATCH, batch_sizes
from cnnlab.utils.safe_yaml import read_yaml


class Optimizer(str, enum.Enum):
    ADAMW = "adamw"
    SGD = "sgd"  # SGD with Nesterov momentum


class Schedule(str, enum.Enum):
    ONECYCLE = "onecycle"
    COSINE = "cosine"
    CONSTANT = "constant"
    STEP = "step"  # multiply by the lr_steps factors after chosen epochs (classic step decay)


class LRScaling(str, enum.Enum):
    """How the given ``lr`` (meant for ``lr_reference_batch``) scales with the batch size."""

    LINEAR = "linear"  # Goyal et al. 2017: lr * batch / reference
    SQRT = "sqrt"  # Hoffer, Hubara & Soudry 2017: lr * sqrt(batch / reference)


class Device(str, enum.Enum):
    AUTO = "auto"  # cuda, then mps, then cpu
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class Precision(str, enum.Enum):
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


# Learning rate used when ``lr`` is left unset (``None``): the peak of the schedule.
DEFAULT_LR = {Optimizer.ADAMW: 3e-3, Optimizer.SGD: 0.05}
# Weight decay when ``weight_decay`` is unset: decoupled (AdamW) vs L2-coupled (SGD) scales differ.
DEFAULT_WD = {Optimizer.ADAMW: 0.01, Optimizer.SGD: 5e-4}
# Warm-up fraction when ``warmup`` is unset: each schedule's own default (step decay: none unless asked).
DEFAULT_WARMUP = {Schedule.ONECYCLE: 0.25, Schedule.COSINE: 0.25, Schedule.CONSTANT: 0.0, Schedule.STEP: 0.0}
MAX_MILESTONES = 1000  # entries of batch_schedule / lr_steps (a bound on what a config file can make us build)

_ENUMS: dict[str, type[enum.Enum]] = {
    "optimizer": Optimizer,
    "schedule": Schedule,
    "device": Device,
    "precision": Precision,
    "lr_scaling": LRScaling,
}
# fields that are lists of (completed epochs, factor): YAML [[10, 5], [20, 5]] or the text "10:5,20:5"
# (one value holds commas: `cnnlab sweep` separates several of them with |)
MILESTONE_FIELDS = ("batch_schedule", "lr_steps")


@dataclasses.dataclass
class TrainConfig:
    """Training options. ``None`` means "choose for me"; ``resolve()`` fills those in."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: Optimizer = Optimizer.ADAMW
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: Schedule = Schedule.ONECYCLE
    warmup: float | None = None  # fraction of all steps spent warming up; None: 0.25 onecycle/cosine, 0 step
    label_smoothing: float = 0.0
    augment: bool = True
    translate: int | None = None  # random shift in pixels; None: about 1/12 of the image height
    hflip: bool | None = None  # random horizontal flip; None: on for colour images, off for grey
    zoom: float = 0.0  # random zoom-in: a crop enlarged by up to 1 + zoom (0.2: up to 1.2x); 0: off
    rotate: float = 0.0  # random rotation by up to this many degrees either way (10: -10..+10); 0: off
    scale: float = 0.0  # random scale about the centre by a factor in [1 - scale, 1 + scale]; 0: off
    val_split: float = defaults.VAL_SPLIT
    resize: str = defaults.RESIZE
    strict: bool = False  # unreadable image files: an error instead of skipped (listed in skipped.txt)
    seed: int = defaults.SEED
    device: Device = Device.AUTO
    precision: Precision = Precision.FP32
    channels_last: bool | None = None  # None: on for CPUs, and for GPUs in mixed precision
    compile: bool = False
    sync_bn: bool = False
    patience: int | None = None  # early stopping: epochs without a better val accuracy
    threads: int | None = None  # CPU threads; None: chosen at start from the free cores (cnnlab.utils.cpus)
    eval_batch_size: int = defaults.EVAL_BATCH_SIZE
    checkpoint_minutes: float = 5.0  # mid-epoch "last" checkpoint at most this often
    checkpoint_steps: int = 0  # also every N optimizer steps (0: off)
    max_steps_per_epoch: int | None = None  # cut epochs short (smoke tests, benchmarks)
    init_from: str | None = None  # start from weights: run folder, weights file or named set (train/init_from.py)
    freeze_epochs: int | None = None  # train only the head this many epochs; None: 1 with init_from, else 0
    lr_ratio: float | None = None  # first layer's LR / the head's (discriminative); None: 0.1 with init_from, else 1
    # after E completed epochs the batch size is multiplied by F (lr unchanged): Smith et al. 2017
    batch_schedule: list[tuple[int, float | int]] | None = None
    lr_steps: list[tuple[int, float]] | None = None  # schedule "step": after E completed epochs lr *= F
    lr_scaling: LRScaling | None = None  # peak lr = lr * (batch_size / lr_reference_batch) [linear] or its sqrt
    lr_reference_batch: int = 256  # the batch size the given lr is meant for (with lr_scaling)

    def __post_init__(self) -> None:
        for name, enum_type in _ENUMS.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, enum_type):
                setattr(self, name, _to_enum(name, value, enum_type))
        for name in MILESTONE_FIELDS:
            if getattr(self, name) is not None:
                setattr(self, name, parse_milestones(name, getattr(self, name)) or None)
        self.validate()

    def validate(self) -> None:
        """Raise ``CnnlabError`` for values that cannot work, naming the option and the fix."""
        _check(self.epochs >= 1, "epochs", self.epochs, "a whole number >= 1")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "a whole number >= 1")
        _check(0 <= self.seed <= 2**32 - 1, "seed", self.seed, "a whole number from 0 to 4294967295")
        _check(self.weight_decay is None or math.isfinite(self.weight_decay), "weight_decay", self.weight_decay,
               "a finite number >= 0")
        _check(self.lr is None or (math.isfinite(self.lr) and self.lr > 0), "lr", self.lr, "a number > 0, e.g. 0.003")
        _check(self.weight_decay is None or self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0")
        _check(self.warmup is None or 0 <= self.warmup < 1, "warmup", self.warmup, "a fraction in [0, 1)")
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "a fraction in [0, 1)")
        _check(0 <= self.val_split < 1, "val_split", self.val_split, "a fraction in [0, 1)")
        _check(0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        _check(self.patience is None or self.patience >= 1, "patience", self.patience, "a whole number >= 1")
        _check(self.threads is None or self.threads >= 1, "threads", self.threads, "a whole number >= 1")
        _check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "a whole number >= 1")
        _check(self.checkpoint_minutes > 0, "checkpoint_minutes", self.checkpoint_minutes, "a number of minutes > 0")
        _check(self.checkpoint_steps >= 0, "checkpoint_steps", self.checkpoint_steps, "a whole number >= 0")
        _check(self.translate is None or self.translate >= 0, "translate", self.translate, "pixels >= 0")
        _check(0 <= self.zoom <= 1, "zoom", self.zoom, "a fraction from 0 to 1, e.g. 0.2 for crops enlarged up to 1.2x")
        _check(0 <= self.rotate <= 180, "rotate", self.rotate,
               "degrees from 0 to 180, e.g. 10 for angles drawn from -10 to +10 (0: off)")
        _check(0 <= self.scale < 1, "scale", self.scale,
               "a fraction in [0, 1), e.g. 0.1 for factors drawn from 0.9 to 1.1 (0: off)")
        _check(self.freeze_epochs is None or self.freeze_epochs >= 0, "freeze_epochs", self.freeze_epochs,
               "a whole number >= 0")
        _check(not self.freeze_epochs or bool(self.init_from), "freeze_epochs", self.freeze_epochs,
               "0 without --init-from (freezing random weights teaches nothing), or give --init-from SOURCE")
        _check(self.lr_ratio is None or 0 < self.lr_ratio <= 1, "lr_ratio", self.lr_ratio, "a number in (0, 1], e.g. 0.1")
        _check(
            self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
            "max_steps_per_epoch", self.max_steps_per_epoch, "a whole number >= 1",
        )
        self._validate_schedules()

    def _validate_schedules(self) -> None:
        """batch_schedule, lr_steps, lr_scaling: milestones inside the run, batch sizes whole, pairs consistent."""
        _check(1 <= self.lr_reference_batch <= MAX_BATCH, "lr_reference_batch", self.lr_reference_batch,
               "a whole number >= 1 (the batch size the given lr is meant for), e.g. 256")
        for name in MILESTONE_FIELDS:
            _check_milestones(name, getattr(self, name), self.epochs)
        batch_sizes(self.batch_size, self.batch_schedule)  # each a whole number >= 1, else an error
        if self.schedule is Schedule.STEP and not self.lr_steps:
            raise CnnlabError("training config: schedule=step needs lr_steps, the epochs after which the learning "
                              "rate is multiplied, e.g. --lr-steps 30:0.1,60:0.1 (in a config file: lr_steps: "
                              "[[30, 0.1], [60, 0.1]])")
        if self.lr_steps and self.schedule is not Schedule.STEP:
            raise CnnlabError(f"training config: lr_steps is used only by --schedule step, but schedule is "
                              f"'{self.schedule.value}'; add --schedule step, or drop lr_steps")
        if self.schedule is Schedule.STEP and self.freeze_epochs:
            raise CnnlabError("training config: schedule=step with freeze_epochs (fine-tuning restarts the schedule "
                              "when the body unfreezes, which step decay does not define); use --freeze-epochs 0, "
                              "or --schedule onecycle/cosine")

    def resolve(self, input_shape: tuple[int, int, int]) -> TrainConfig:
        """Return a copy with every ``None``/auto choice made concrete for this input (device stays)."""
        channels, height, _ = input_shape
        return dataclasses.replace(
            self,
            lr=self.lr if self.lr is not None else DEFAULT_LR[self.optimizer],
            warmup=self.warmup if self.warmup is not None else DEFAULT_WARMUP[self.schedule],
            weight_decay=self.weight_decay if self.weight_decay is not None else DEFAULT_WD[self.optimizer],
            translate=self.translate if self.translate is not None else max(1, round(height / 12)),
            hflip=self.hflip if self.hflip is not None else channels == 3,
            freeze_epochs=self.freeze_epochs if self.freeze_epochs is not None else int(bool(self.init_from)),
            lr_ratio=self.lr_ratio if self.lr_ratio is not None else (0.1 if self.init_from else 1.0),
        )

    def for_device(self, device_type: str) -> TrainConfig:
        """Return a copy with the device-dependent auto choices made (``channels_last``).

        Channels-last convolutions are 20-25 % cheaper on CPUs (oneDNN) and use tensor cores on
        GPUs in bf16/fp16; in fp32 on GPUs, and on Apple MPS, the default layout is kept.
        """
        if self.channels_last is not None:
            return self
        auto = device_type == "cpu" or (device_type == "cuda" and self.precision is not Precision.FP32)
        return dataclasses.replace(self, channels_last=auto)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-safe values (enums become their strings)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in MILESTONE_FIELDS and value is not None:
                value = [[epoch, factor] for epoch, factor in value]
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "training config") -> TrainConfig:
        """Build from a mapping; unknown keys and wrong types are errors that name the key."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            norm = str(key).replace("-", "_")
            if norm not in names:
                raise CnnlabError(f"{where}: unknown option {key!r}{did_you_mean(norm, names)}")
            clean[norm] = _coerce(norm, value, names[norm].type, where)
        return cls(**clean)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with ``overrides`` applied (``None`` values are ignored: "flag not given")."""
        given = {k: v for k, v in overrides.items() if v is not None}
        base = self.to_dict()
        base.update({k: (v.value if isinstance(v, enum.Enum) else v) for k, v in given.items()})
        return TrainConfig.from_dict(base)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a config file (``--config``); errors name the file."""
        p = Path(path)
        try:
            data = read_yaml(p) or {}
        except OSError as exc:
            raise CnnlabError(f"cannot read config file {p}: {exc.strerror or exc}; check the path") from None
        except yaml.YAMLError as exc:
            raise CnnlabError(f"config file {p} is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise CnnlabError(f"config file {p} must be a mapping of option: value, got {type(data).__name__}")
        return cls.from_dict(data, where=f"config file {p}")


def load_config(source: str | Path) -> TrainConfig:
    """A ``--config`` value: a YAML file, or the name of a bundled recipe (``cnnlab.zoo.recipe_names()``).

    A file that exists wins over a recipe of the same name.

    >>> load_config("mnist-modern").label_smoothing
    0.1
    """
    from cnnlab import zoo

    path = Path(source)
    if not path.exists():
        bundled = zoo.recipe_path(str(source))
        if bundled is not None:
            return TrainConfig.from_yaml(bundled)
        if path.suffix.lower() not in (".yaml", ".yml"):
            recipes = zoo.recipe_names()
            raise CnnlabError(f"config {str(source)!r} is neither a file nor a bundled recipe"
                              f"{did_you_mean(str(source), recipes)}; bundled recipes: {', '.join(recipes)}")
    return TrainConfig.from_yaml(path)


def parse_milestones(name: str, value: Any, where: str = "training config") -> list[tuple[int, float | int]]:
    """``"10:5,20:0.5"`` or ``[[10, 5], [20, 0.5]]`` -> ``[(10, 5), (20, 0.5)]`` (epochs, factors > 0);
    ``"none"`` / ``"off"`` -> ``[]`` (no schedule: overrides a config file's).

    >>> parse_milestones("batch_schedule", "10:5, 20:0.5")
    [(10, 5), (20, 0.5)]
    >>> parse_milestones("lr_steps", [[30, 0.1]])
    [(30, 0.1)]
    """
    example = "e.g. 10:5,20:5 (in a config file [[10, 5], [20, 5]]): after 10 completed epochs x5, after 20 x5 again"
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return []
    if isinstance(value, str):
        items: list[Any] = [part.split(":") for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise CnnlabError(f"{where}: {name}={value!r} is not a list of EPOCH:FACTOR pairs; {example}")
    if not items or len(items) > MAX_MILESTONES:
        raise CnnlabError(f"{where}: {name} needs 1 to {MAX_MILESTONES} EPOCH:FACTOR pairs, got {len(items)}; {example}")
    out: list[tuple[int, float | int]] = []
    for item in items:
        try:
            if isinstance(item, (str, bytes, dict)) or len(item) != 2 or any(isinstance(v, bool) for v in item):
                raise ValueError
            epoch_f, factor_f = float(str(item[0]).strip()), float(str(item[1]).strip())
            if not (math.isfinite(epoch_f) and epoch_f == int(epoch_f) and math.isfinite(factor_f) and factor_f > 0):
                raise ValueError
        except (ValueError, TypeError, OverflowError):
            raise CnnlabError(f"{where}: {name}: {item!r} is not EPOCH:FACTOR with a whole epoch and a factor > 0; "
                              f"{example}") from None
        out.append((int(epoch_f), int(factor_f) if factor_f == int(factor_f) else factor_f))
    return out


def milestones_text(pairs: list[tuple[int, float | int]] | None) -> str:
    """The text form ``parse_milestones`` reads back: ``"10:5,20:0.5"``; no pairs -> ``"none"``.

    >>> milestones_text([(10, 5), (20, 0.5)]), milestones_text([])
    ('10:5,20:0.5', 'none')
    >>> parse_milestones("lr_steps", milestones_text([(3, 1e-05)]))
    [(3, 1e-05)]
    """
    return ",".join(f"{int(epoch)}:{factor}" for epoch, factor in pairs or []) or "none"


def _check_milestones(name: str, pairs: list[tuple[int, float | int]] | None, epochs: int) -> None:
    """Epoch milestones are counts of completed epochs: strictly increasing, in 1..epochs-1."""
    if pairs is None:
        return
    last = 0
    for epoch, _ in pairs:
        if not last < epoch < epochs:
            raise CnnlabError(
                f"training config: {name}: epoch {epoch} is not allowed here; milestones count completed epochs, "
                f"must increase strictly and lie in 1..{epochs - 1} (the run has {epochs} epochs)")
        last = epoch


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise CnnlabError(f"training config: {name}={value!r} is not allowed; use {allowed}")


def _to_enum(name: str, value: Any, enum_type: type[enum.Enum]) -> enum.Enum:
    choices = [m.value for m in enum_type]
    try:
        return enum_type(str(value).lower())
    except ValueError:
        hint = did_you_mean(str(value).lower(), choices) or f"; use one of: {', '.join(choices)}"
        raise CnnlabError(f"training config: {name}={value!r} is not an option{hint}") from None


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _coerce(name: str, value: Any, type_text: Any, where: str) -> Any:
    """Turn YAML/CLI values into the field's type (``"3"`` -> 3 for an int field, and so on)."""
    text = str(type_text)
    if value is None:
        if "None" in text:
            return None
        raise CnnlabError(f"{where}: {name} cannot be empty")
    if name in _ENUMS:
        return _to_enum(name, value, _ENUMS[name])
    if name in MILESTONE_FIELDS:
        return parse_milestones(name, value, where) or None
    try:
        if text.startswith("bool"):
            if isinstance(value, bool):
                return value
            return _BOOL_WORDS[str(value).lower()]
        if text.startswith("int"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if text.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
    except (ValueError, KeyError, TypeError):
        kind = text.split(" ")[0]
        raise CnnlabError(f"{where}: {name}={value!r} is not a {kind}") from None
    return str(value)
