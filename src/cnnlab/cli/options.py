"""Checked numeric option types for every ``cnnlab`` command: one home for "what numbers may an
option take".

Each helper returns an argparse ``type=`` callable. A bad value ends in argparse's usual error,
which names the option: ``cnnlab train: error: argument --seed: must be a whole number from 0 to
4294967295; received '-5'`` (exit 2, no traceback). No torch, no numpy: the parser is built by
every command.

>>> whole(1)("3")
3
>>> whole(1)("0")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a whole number >= 1; received '0'
>>> number(0, 1, hi_open=True)("nan")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a number in [0, 1); received 'nan'
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

# plain ASCII numbers only (int() and float() also take "1_000" and other scripts' digits)
_INT = re.compile(r"\s*[+-]?[0-9]+\s*")
_FLOAT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
SEED_MAX = 2**32 - 1  # numpy's legacy seeding and most RNGs take 32-bit seeds
BIG = 2**31 - 1  # counts beyond this are never meant (and overflow C ints in libraries)


def whole(lo: int = 0, hi: int = BIG) -> Callable[[str], int]:
    """A whole number in ``lo..hi``."""

    def parse(text: str) -> int:
        value = int(text) if _INT.fullmatch(text) else None
        if value is None or not lo <= value <= hi:
            allowed = f">= {lo}" if hi == BIG else f"from {lo} to {hi}"
            raise argparse.ArgumentTypeError(f"must be a whole number {allowed}; received {text!r}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Callable[[str], float]:
    """A finite number between ``lo`` and ``hi`` (open or closed ends; ``None``: unbounded)."""
    if lo is not None and hi is not None:
        allowed = f"in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    elif lo is not None:
        allowed = f"{'>' if lo_open else '>='} {_fmt(lo)}"
    elif hi is not None:
        allowed = f"{'<' if hi_open else '<='} {_fmt(hi)}"
    else:
        allowed = "(finite)"

    def parse(text: str) -> float:
        value = float(text) if _FLOAT.fullmatch(text) else math.nan
        ok = math.isfinite(value)
        if ok and lo is not None:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value < hi if hi_open else value <= hi
        if not ok:
            raise argparse.ArgumentTypeError(f"must be a number {allowed}; received {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


seed = whole(0, SEED_MAX)
count = whole(1)  # images, epochs, steps, batch sizes...
fraction = number(0, 1, hi_open=True)  # val_split, warmup, momentum, label smoothing

# TrainConfig's numeric fields -> their CLI type (the same limits as TrainConfig.validate)
TRAIN_TYPES: dict[str, Callable[[str], object]] = {
    "epochs": count, "batch_size": count, "lr": number(0, lo_open=True), "momentum": fraction,
    "weight_decay": number(0), "warmup": fraction, "label_smoothing": fraction, "translate": whole(0, 4096),
    "zoom": fraction, "rotate": number(0, 180), "scale": fraction, "val_split": fraction, "seed": seed, "patience": count, "threads": whole(1, 4096),
    "eval_batch_size": count, "checkpoint_minutes": number(0, lo_open=True), "checkpoint_steps": whole(0),
    "max_steps_per_epoch": count, "freeze_epochs": whole(0), "lr_ratio": number(0, 1, lo_open=True),
    "lr_reference_batch": count,
}
