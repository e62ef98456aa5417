"""Training: ``train()`` writes a run folder, ``load_run()`` reads it back (docs/dev/CONTRACTS.md).

Names are imported on first use, so ``cnnlab.train.config`` (no torch) stays cheap for the CLI.

>>> from cnnlab.train import TrainConfig
>>> TrainConfig(epochs=2).epochs
2
"""

from __future__ import annotations

import sys
import types
from typing import Any

from cnnlab.utils.lazy import lazy_exports

_EXPORTS = {
    "train": "cnnlab.train.api",
    "TrainingInterrupted": "cnnlab.train.api",
    "TrainConfig": "cnnlab.train.config",
    "Device": "cnnlab.train.config",
    "Optimizer": "cnnlab.train.config",
    "Precision": "cnnlab.train.config",
    "Schedule": "cnnlab.train.config",
    "Run": "cnnlab.train.run",
    "RunDir": "cnnlab.train.run",
    "load_run": "cnnlab.train.run",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


class _CallableModule(types.ModuleType):
    """``cnnlab.train(...)`` must train even once ``import cnnlab.train.x`` has bound the attribute
    ``cnnlab.train`` to this package (Python sets a package's submodule as its attribute)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from cnnlab.train.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
