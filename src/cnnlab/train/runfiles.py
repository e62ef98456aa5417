"""Validation of the files of a run folder as they are read (``run.py`` owns the folder and calls these).

Each damaged or edited file gets a ``RunError`` that names the file, says what is wrong, and how to
recover, instead of a traceback or a silently wrong answer.

>>> check_classes(["cat", "dog"], 2, "RUN/classes.json")
['cat', 'dog']
>>> check_classes(["cat"], 2, "RUN/classes.json")
Traceback (most recent call last):
...
cnnlab.errors.RunError: RUN/classes.json lists 1 class names but the network has 2 outputs; restore the file (it was written at training time) or retrain
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import RunError

if TYPE_CHECKING:
    import torch

RESTORE = "restore it from a backup, or retrain the run"


def check_config(values: Any, path: Path) -> dict[str, Any]:
    if not isinstance(values, dict) or not values:
        raise RunError(f"{path} is empty or not a mapping of option: value; it records how this run was trained, "
                       f"so it cannot be guessed: {RESTORE}")
    return values


def check_classes(values: Any, outputs: int | None, where: str) -> list[str]:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise RunError(f"{where} must be a JSON list of class names; {RESTORE}")
    if outputs is not None and len(values) != outputs:
        raise RunError(f"{where} lists {len(values)} class names but the network has {outputs} outputs; "
                       "restore the file (it was written at training time) or retrain")
    if len(set(values)) != len(values):
        raise RunError(f"{where} names a class twice; {RESTORE}")
    return values


def check_data_info(data: Any, spec_input: tuple[int, ...], where: str) -> tuple[tuple[float, ...], tuple[float, ...], tuple[int, int, int]]:
    """``(mean, std, input_shape)`` of ``data.json``, each checked against the spec's input."""
    if not isinstance(data, dict):
        raise RunError(f"{where} must be a JSON object; {RESTORE}")
    channels = int(spec_input[0])
    try:
        shape = tuple(int(v) for v in data["input_shape"])
    except (KeyError, TypeError, ValueError):
        raise RunError(f"{where} has no valid input_shape; it should be {list(spec_input)} (the spec's input)") from None
    if shape != tuple(int(v) for v in spec_input):
        raise RunError(f"{where}: input_shape {list(shape)} differs from the spec's input {list(spec_input)}; "
                       f"set it back to {list(spec_input)}")
    stats: list[tuple[float, ...]] = []
    for key in ("mean", "std"):
        values = data.get(key)
        if not (isinstance(values, list) and len(values) == channels and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)):
            raise RunError(f"{where}: {key} must be a list of {channels} finite numbers (one per channel), "
                           f"got {values!r}; {RESTORE}")
        stats.append(tuple(float(v) for v in values))
    if any(s <= 0 for s in stats[1]):
        raise RunError(f"{where}: std {list(stats[1])} has a value <= 0, which would divide by zero; {RESTORE}")
    return stats[0], stats[1], (shape[0], shape[1], shape[2])


def check_finite(weights: dict[str, torch.Tensor], path: Path) -> None:
    import torch  # here, not at the top: reading a run's metadata (read_run_info) needs no torch

    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise RunError(f"{path} holds NaN or infinite weights (in {', '.join(bad[:5])}); the training diverged "
                       "or the file was damaged. Use the other checkpoint (--checkpoint last/best) or retrain "
                       "with a lower learning rate")
