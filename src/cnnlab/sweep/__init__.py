"""Hyperparameter sweeps: an Optuna study over training and spec options, each trial an ordinary run
folder, stored in SQLite (default) or any SQLAlchemy database that workers on many machines share.
May import every library package (trials run through ``cnnlab.workflows.train``); only ``cli`` is above it.

>>> from cnnlab.sweep import parse_param
>>> parse_param("batch_size=32,64").grid()
[32, 64]
"""

from __future__ import annotations

from cnnlab.utils.lazy import lazy_exports

_EXPORTS = {
    "run_sweep": "cnnlab.sweep.api",
    "join_sweep": "cnnlab.sweep.api",
    "finish_sweep": "cnnlab.sweep.api",
    "load_sweep": "cnnlab.sweep.results",
    "SweepResult": "cnnlab.sweep.results",
    "TrialRow": "cnnlab.sweep.results",
    "Param": "cnnlab.sweep.space",
    "Space": "cnnlab.sweep.space",
    "parse_param": "cnnlab.sweep.space",
    "build_space": "cnnlab.sweep.space",
    "write_sweep_report": "cnnlab.sweep.page",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
