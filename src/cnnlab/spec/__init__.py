"""The network spec: typed dataclasses (``types``), parsing with every problem located (``parse``).

Owns the spec format and its loading. May import: ``errors``, ``i18n``, ``zoo``, ``utils`` (no torch).
"""

from __future__ import annotations

from cnnlab.spec.parse import load_spec
from cnnlab.spec.types import (
    LAYER_CLASSES,
    LRN,
    Act,
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Kind,
    Layer,
    Output,
    OutputKind,
    Padding,
    PadMode,
    Pair,
    Pool,
    PoolKind,
    Residual,
    Shortcut,
    Spec,
    layer_to_dict,
)

__all__ = [
    "LAYER_CLASSES", "LRN", "Act", "Activation", "BatchNorm", "Conv", "Dense", "Dropout", "Flatten",
    "GlobalPool", "Kind", "Layer", "Output", "OutputKind", "PadMode", "Padding", "Pair", "Pool",
    "PoolKind", "Residual", "Shortcut", "Spec", "layer_to_dict", "load_spec",
]
