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
from cnnlab.utils.safe_yaml import read_yaml


class Optimizer(str, enum.Enum):
    ADAMW = "adamw"
    SGD = "sgd"  # SGD with Nesterov momentum


class Schedule(str, enum.Enum):
    ONECYCLE = "onecycle"
    COSINE = "cosine"
    CONSTANT = "constant"


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

_ENUMS: dict[str, type[enum.Enum]] = {
    "optimizer": Optimizer,
    "schedule": Schedule,
    "device": Device,
    "precision": Precision,
}


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
    warmup: float = 0.25  # fraction of all steps spent warming up (one-cycle, cosine)
    label_smoothing: float = 0.0
    augment: bool = True
    translate: int | None = None  # random shift in pixels; None: about 1/12 of the image height
    hflip: bool | None = None  # random horizontal flip; None: on for colour images, off for grey
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

    def __post_init__(self) -> None:
        for name, enum_type in _ENUMS.items():
            value = getattr(self, name)
            if not isinstance(value, enum_type):
                setattr(self, name, _to_enum(name, value, enum_type))
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
        _check(0 <= self.warmup < 1, "warmup", self.warmup, "a fraction in [0, 1)")
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "a fraction in [0, 1)")
        _check(0 <= self.val_split < 1, "val_split", self.val_split, "a fraction in [0, 1)")
        _check(0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        _check(self.patience is None or self.patience >= 1, "patience", self.patience, "a whole number >= 1")
        _check(self.threads is None or self.threads >= 1, "threads", self.threads, "a whole number >= 1")
        _check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "a whole number >= 1")
        _check(self.checkpoint_minutes > 0, "checkpoint_minutes", self.checkpoint_minutes, "a number of minutes > 0")
        _check(self.checkpoint_steps >= 0, "checkpoint_steps", self.checkpoint_steps, "a whole number >= 0")
        _check(self.translate is None or self.translate >= 0, "translate", self.translate, "pixels >= 0")
        _check(self.freeze_epochs is None or self.freeze_epochs >= 0, "freeze_epochs", self.freeze_epochs,
               "a whole number >= 0")
        _check(not self.freeze_epochs or bool(self.init_from), "freeze_epochs", self.freeze_epochs,
               "0 without --init-from (freezing random weights teaches nothing), or give --init-from SOURCE")
        _check(self.lr_ratio is None or 0 < self.lr_ratio <= 1, "lr_ratio", self.lr_ratio, "a number in (0, 1], e.g. 0.1")
        _check(
            self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
            "max_steps_per_epoch", self.max_steps_per_epoch, "a whole number >= 1",
        )

    def resolve(self, input_shape: tuple[int, int, int]) -> TrainConfig:
        """Return a copy with every ``None``/auto choice made concrete for this input (device stays)."""
        channels, height, _ = input_shape
        return dataclasses.replace(
            self,
            lr=self.lr if self.lr is not None else DEFAULT_LR[self.optimizer],
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
