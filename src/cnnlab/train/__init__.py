"""Training: ``fit()`` writes a run folder, ``load_run()`` reads it back (docs/dev/CONTRACTS.md).

Owns the training loop, checkpoints, the run folder and lr-find. May import: spec, analysis, model,
data, distributed, errors, i18n, utils. ``cnnlab.train(...)`` (train, then report) is in ``workflows``.

>>> from cnnlab.train import TrainConfig
>>> TrainConfig(epochs=2).epochs
2
"""

from __future__ import annotations

from cnnlab.utils.lazy import lazy_exports

_EXPORTS = {
    "fit": "cnnlab.train.api",
    "Fitted": "cnnlab.train.api",
    "TrainingInterrupted": "cnnlab.train.api",
    "TrainConfig": "cnnlab.train.config",
    "Device": "cnnlab.train.config",
    "Optimizer": "cnnlab.train.config",
    "Precision": "cnnlab.train.config",
    "Schedule": "cnnlab.train.config",
    "Run": "cnnlab.train.run",
    "RunDir": "cnnlab.train.run",
    "load_run": "cnnlab.train.run",
    "lr_find": "cnnlab.train.lr_find",
    "LRFindResult": "cnnlab.train.lr_find",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
