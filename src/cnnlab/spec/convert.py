"""Value converters for spec keys: each turns a YAML value into a typed value or raises ``Bad``.

``Bad``'s message says what is allowed; the parser adds where and what was received.

>>> pair(3)
(3, 3)
>>> padding("SAME")
'same'
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

from cnnlab.spec.types import (
    LRN,
    Act,
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Output,
    OutputKind,
    PadMode,
    Pool,
    PoolKind,
    Residual,
    Shortcut,
)

E = TypeVar("E", bound=enum.Enum)


class Bad(ValueError):
    """A key's value has the wrong type or range.

    ``rule`` names the catalog message ``spec.bad.<rule>`` (what is allowed), filled with ``values``;
    ``options`` are the valid names for a did-you-mean.
    """

    def __init__(self, rule: str, options: list[str] | None = None, **values: Any) -> None:
        super().__init__(rule)
        self.rule, self.options, self.values = rule, options or [], values


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def pos_int(v: Any) -> int:
    if not _is_int(v) or v <= 0:
        raise Bad("pos_int")
    return int(v)


def pair(v: Any, minimum: int = 1) -> tuple[int, int]:
    if _is_int(v) and v >= minimum:
        return (int(v), int(v))
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and x >= minimum for x in v):
        return (int(v[0]), int(v[1]))
    raise Bad("pair" if minimum == 1 else "pair0")


def optional_pair(v: Any) -> tuple[int, int] | None:
    return None if v is None else pair(v)


def padding(v: Any) -> PadMode | tuple[int, int]:
    if isinstance(v, str):
        try:
            return PadMode(v.strip().lower())
        except ValueError:
            raise Bad("padding", ["same", "valid"]) from None
    try:
        return pair(v, minimum=0)
    except Bad:
        raise Bad("padding") from None


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad("bool")
    return v


def rate(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise Bad("rate")
    return float(v)


def pos_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise Bad("pos_float")
    return float(v)


def nonneg_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise Bad("nonneg_float")
    return float(v)


def choice(enum_cls: type[E]) -> Callable[[Any], E]:
    """Converter for a string option: case-insensitive, ``null`` means ``none`` where allowed."""
    options = [e.value for e in enum_cls]
    members = {e.value: e for e in enum_cls}

    def convert(v: Any) -> E:
        if v is None and "none" in options:
            v = "none"
        if isinstance(v, str):
            member = members.get(v.strip().lower().replace("-", "_"))
            if member is not None:
                return member
        raise Bad("choice", options, allowed=", ".join(options))

    return convert


def connections(v: Any) -> tuple[tuple[int, ...], ...]:
    """A connection table: for each output map, the list of input-map indices it reads."""
    if not isinstance(v, list) or not v:
        raise Bad("connections")
    table = []
    for row in v:
        if not isinstance(row, list) or not row or not all(_is_int(x) and x >= 0 for x in row):
            raise Bad("connections")
        if len(set(row)) != len(row):
            raise Bad("twice", row=row)
        table.append(tuple(int(x) for x in row))
    return tuple(table)


def branch(v: Any) -> Any:
    """The residual branch; parsed recursively by the parser."""
    return v


CONVERTERS: dict[type, dict[str, Callable[[Any], Any]]] = {
    Conv: {
        "filters": pos_int, "kernel": pair, "stride": pair, "padding": padding, "dilation": pair,
        "groups": pos_int, "bias": boolean, "activation": choice(Act), "connections": connections,
    },
    Pool: {
        "kind": choice(PoolKind), "size": pair, "stride": optional_pair, "padding": padding,
        "ceil": boolean, "trainable": boolean, "activation": choice(Act),
    },
    GlobalPool: {"kind": choice(PoolKind)},
    BatchNorm: {"activation": choice(Act), "ghost": lambda v: None if v is None else pos_int(v)},
    Dropout: {"rate": rate},
    Flatten: {},
    Dense: {"units": pos_int, "activation": choice(Act), "bias": boolean},
    Output: {"classes": pos_int, "bias": boolean, "kind": choice(OutputKind), "trainable": boolean},
    Activation: {"kind": choice(Act), "slope": nonneg_float},
    LRN: {"size": pos_int, "alpha": nonneg_float, "beta": nonneg_float, "k": nonneg_float},
    Residual: {"layers": branch, "shortcut": choice(Shortcut), "activation": choice(Act)},
}
