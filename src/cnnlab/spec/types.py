"""The network spec: typed, frozen dataclasses that round-trip to YAML/JSON (STYLE.md rule 6).

A spec is ``name``, ``input`` (C, H, W) and a list of layers. Each layer kind is a dataclass
below; its fields and defaults are THE documentation of the format (``cnnlab summary --help``
and the README point here). Parsing lives in ``parse.py``.

>>> from cnnlab.spec import load_spec
>>> spec = load_spec({"name": "tiny", "input": [1, 28, 28],
...                   "layers": [{"conv": 8}, {"pool": 2}, "flatten", {"output": 10}]})
>>> spec.layers[0]
Conv(filters=8, kernel=(3, 3), stride=(1, 1), padding='valid', dilation=(1, 1), groups=1, bias=True, activation='relu', connections=None)
>>> load_spec(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

Pair = tuple[int, int]


class Kind(str, enum.Enum):
    """Layer kinds, as written in a spec."""

    CONV = "conv"
    POOL = "pool"
    GLOBAL_POOL = "global_pool"
    BATCHNORM = "batchnorm"
    DROPOUT = "dropout"
    FLATTEN = "flatten"
    DENSE = "dense"
    OUTPUT = "output"
    ACTIVATION = "activation"
    LRN = "lrn"
    RESIDUAL = "residual"

    def __str__(self) -> str:
        return self.value


class Act(str, enum.Enum):
    """Activation functions (``none`` = identity)."""

    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    GELU = "gelu"
    NONE = "none"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


class PoolKind(str, enum.Enum):
    MAX = "max"
    AVG = "avg"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


class PadMode(str, enum.Enum):
    """String paddings: ``same`` (output = ⌈input/stride⌉, like Keras) and ``valid`` (no padding)."""

    SAME = "same"
    VALID = "valid"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


class Shortcut(str, enum.Enum):
    """Residual shortcut: ``auto`` = identity when shapes match, else 1×1 conv + batchnorm."""

    AUTO = "auto"
    IDENTITY = "identity"
    CONV = "conv"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


class OutputKind(str, enum.Enum):
    """``linear`` logits (default) or LeNet-1998 Euclidean ``rbf`` units (logit = −‖x − w‖²)."""

    LINEAR = "linear"
    RBF = "rbf"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


Padding = PadMode | Pair


def _line() -> Any:
    return field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Conv:
    """2-D convolution (+ activation). ``connections[j]`` lists the input maps output map j reads."""

    KIND: ClassVar[Kind] = Kind.CONV
    MAIN: ClassVar[str] = "filters"
    filters: int
    kernel: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Padding = PadMode.VALID
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    activation: Act = Act.RELU
    connections: tuple[tuple[int, ...], ...] | None = None
    line: int | None = _line()


@dataclass(frozen=True)
class Pool:
    """Max or average pooling; ``stride`` defaults to ``size``. ``trainable``: LeNet-1998
    subsampling (per channel y = a·avg + b)."""

    KIND: ClassVar[Kind] = Kind.POOL
    MAIN: ClassVar[str] = "size"
    kind: PoolKind = PoolKind.MAX
    size: Pair = (2, 2)
    stride: Pair | None = None
    padding: Padding = (0, 0)
    ceil: bool = False
    trainable: bool = False
    activation: Act = Act.NONE
    line: int | None = _line()

    @property
    def resolved_stride(self) -> Pair:
        return self.stride if self.stride is not None else self.size


@dataclass(frozen=True)
class GlobalPool:
    """Average (or max) over the whole H×W of each channel; outputs a vector (C,)."""

    KIND: ClassVar[Kind] = Kind.GLOBAL_POOL
    MAIN: ClassVar[str] = "kind"
    kind: PoolKind = PoolKind.AVG
    line: int | None = _line()


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation (2-D on maps, 1-D on vectors), optionally followed by an activation.

    ``ghost: 32``: ghost batch normalisation (Hoffer, Hubara & Soudry 2017): in training, statistics
    are taken over virtual batches of 32 samples, each normalised on its own; evaluation is unchanged.
    """

    KIND: ClassVar[Kind] = Kind.BATCHNORM
    MAIN: ClassVar[str] = "activation"
    activation: Act = Act.NONE
    ghost: int | None = None
    line: int | None = _line()


@dataclass(frozen=True)
class Dropout:
    KIND: ClassVar[Kind] = Kind.DROPOUT
    MAIN: ClassVar[str] = "rate"
    rate: float = 0.5
    line: int | None = _line()


@dataclass(frozen=True)
class Flatten:
    KIND: ClassVar[Kind] = Kind.FLATTEN
    MAIN: ClassVar[str] = ""
    line: int | None = _line()


@dataclass(frozen=True)
class Dense:
    """Fully connected layer (+ activation); a (C, H, W) input is flattened implicitly."""

    KIND: ClassVar[Kind] = Kind.DENSE
    MAIN: ClassVar[str] = "units"
    units: int
    activation: Act = Act.RELU
    bias: bool = True
    line: int | None = _line()


@dataclass(frozen=True)
class Output:
    """The classifier: ``classes`` logits (no softmax; apply it for probabilities)."""

    KIND: ClassVar[Kind] = Kind.OUTPUT
    MAIN: ClassVar[str] = "classes"
    classes: int
    bias: bool = True
    kind: OutputKind = OutputKind.LINEAR
    trainable: bool = True
    line: int | None = _line()


@dataclass(frozen=True)
class Activation:
    KIND: ClassVar[Kind] = Kind.ACTIVATION
    MAIN: ClassVar[str] = "kind"
    kind: Act = Act.RELU
    slope: float = 0.01
    line: int | None = _line()


@dataclass(frozen=True)
class LRN:
    """Local response normalisation across ``size`` neighbouring channels (AlexNet 2012):
    ``b = a / (k + alpha·Σa²)^beta`` with the paper's alpha (not divided by size)."""

    KIND: ClassVar[Kind] = Kind.LRN
    MAIN: ClassVar[str] = "size"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0
    line: int | None = _line()


@dataclass(frozen=True)
class Residual:
    """``activation(branch(x) + shortcut(x))``; the branch is a list of spatial layers."""

    KIND: ClassVar[Kind] = Kind.RESIDUAL
    MAIN: ClassVar[str] = "layers"
    layers: tuple[Layer, ...]
    shortcut: Shortcut = Shortcut.AUTO
    activation: Act = Act.RELU
    line: int | None = _line()


Layer = Conv | Pool | GlobalPool | BatchNorm | Dropout | Flatten | Dense | Output | Activation | LRN | Residual
LAYER_CLASSES: dict[Kind, type] = {
    cls.KIND: cls
    for cls in (Conv, Pool, GlobalPool, BatchNorm, Dropout, Flatten, Dense, Output, Activation, LRN, Residual)
}


@dataclass(frozen=True)
class Spec:
    """A whole network: ``input`` is (channels, height, width)."""

    name: str
    input: tuple[int, int, int]
    layers: tuple[Layer, ...]
    description: str = ""
    source: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-safe dict with every key explicit; ``load_spec`` reads it back equal."""
        out: dict[str, Any] = {"name": self.name, "input": list(self.input)}
        if self.description:
            out["description"] = self.description
        out["layers"] = [layer_to_dict(layer) for layer in self.layers]
        return out


def layer_to_dict(layer: Layer) -> dict[str, Any] | str:
    """``{kind: {key: value, ...}}`` with plain values (lists for pairs, strings for enums)."""
    if isinstance(layer, Flatten):
        return "flatten"
    body: dict[str, Any] = {}
    for f in fields(layer):
        if f.name == "line" or getattr(layer, f.name) is None:
            continue
        body[f.name] = _plain(getattr(layer, f.name))
    return {layer.KIND.value: body}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        if value and is_dataclass(value[0]):
            return [layer_to_dict(v) for v in value]
        return [_plain(v) for v in value]
    return value
