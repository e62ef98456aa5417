"""Search spaces: what a sweep varies, parsed from ``--param`` text or ``{sweep: ...}`` placeholders.

One short syntax everywhere (``NAME=VALUES``)::

    lr=0.001,0.003,0.01        choices (a grid axis; also sampled by random/TPE search)
    lr=log:1e-4..1e-1          a log-uniform range (random/TPE search)
    lr=log:1e-4..1e-1:4        4 log-spaced points: a grid axis
    dropout=0..0.5             a uniform range; ``0..0.5:6`` gives 6 evenly spaced points
    epochs=int:1..5            whole numbers from 1 to 5 (a grid axis of 5 points)
    epochs=2                   one value: a fixed option, not searched
    lr=0.001|0.01              ``|`` separates the values instead of ``,`` (then commas belong to the values)
    batch_schedule='none|10:5,20:5'   options whose one value is a comma list (``batch_schedule``,
                               ``lr_steps``: ``cnnlab.train.config.MILESTONE_FIELDS``) take ``|`` only;
                               ``none`` is the option off. ``batch_schedule=10:5,20:5`` is one value.
    optimizer="'sgd','adamw'"  a quoted value ('...' or "...") is kept as text, separators included
                               (as in Hydra's choice sweeps: ``batch_schedule="'10:5,20:5',none"``)

``NAME`` is a ``TrainConfig`` option (``lr``, ``batch_size``, ``optimizer``...) or a spec path
``layers.<index>.<key>`` (``layers.0.filters``; ``layers.5`` for a layer written ``- dense: 120``).
In a spec file, write the values where the number was: ``- conv: {filters: {sweep: [16, 32]}, kernel: 5}``
or ``- dropout: {sweep: "0..0.5:3"}``.

The text of one ``VALUES`` (``|``, quotes, schedules) is read in ``values.py``. No torch and no optuna here: ``cnnlab sweep --help`` and the error messages stay fast.

>>> p = parse_param("lr=log:1e-4..1e-1:4")
>>> [round(v, 6) for v in p.grid()]
[0.0001, 0.001, 0.01, 0.1]
>>> parse_param("batch_size=32,64").values
[32, 64]
>>> parse_param("batch_schedule=none | 10:5, 20:5 | off").values
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: --param batch_schedule: the value 'none' is listed twice; list each value once
>>> parse_param("batch_schedule=none | 10:5, 20:5").values
['none', '10:5,20:5']
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.sweep.values import schedule_value, split_values
from cnnlab.train.config import MILESTONE_FIELDS

# options the sweep itself sets for every trial: varying them would break the comparison or the workers
RESERVED = {"threads": "the sweep splits the cores between workers (--workers)",
            "device": "give --device to the sweep instead", "val_split": "give --val-split to the sweep instead"}
PLACEHOLDER = "sweep"  # the key of a spec placeholder: ``filters: {sweep: [16, 32]}``
MAX_GRID = 10_000
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclasses.dataclass(frozen=True)
class Param:
    """One dimension: ``kind`` is ``choice`` (``values``) or ``float``/``int`` (``low``..``high``)."""

    name: str
    kind: str
    values: list[Any] = dataclasses.field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    points: int | None = None  # a range cut into this many grid points

    @property
    def fixed(self) -> bool:
        return self.kind == "choice" and len(self.values) == 1

    @property
    def is_spec(self) -> bool:
        return self.name == "layers" or self.name.startswith("layers.")

    def gridable(self) -> bool:
        return self.kind in ("choice", "int") or self.points is not None

    def grid(self) -> list[Any]:
        """The values of this axis in a grid search."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int" and self.points is None:
            return list(range(int(self.low), int(self.high) + 1))
        n = self.points or 0
        if n == 1:
            return [self.low]
        if self.log:
            a, b = math.log(self.low), math.log(self.high)
            vals = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
        else:
            vals = [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)]
        vals = [float(f"{v:.6g}") for v in vals]  # 0.0001, not 0.00010000000000000009
        return [int(round(v)) for v in vals] if self.kind == "int" else vals

    def sample(self, rng: random.Random) -> Any:
        """One random value (random search)."""
        if self.kind == "choice" or self.points is not None:
            return rng.choice(self.grid())
        if self.kind == "int":
            if self.log:
                return int(round(math.exp(rng.uniform(math.log(self.low), math.log(self.high)))))
            return rng.randint(int(self.low), int(self.high))
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def describe(self) -> str:
        if self.kind == "choice":
            sep = "|" if self.name in MILESTONE_FIELDS or any(_needs_bar(v) for v in self.values) else ","
            return f"{self.name}=" + sep.join(str(v) for v in self.values)
        prefix = "log:" if self.log else ("int:" if self.kind == "int" else "")
        suffix = f":{self.points}" if self.points else ""
        return f"{self.name}={prefix}{_num(self.low)}..{_num(self.high)}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Param:
        return cls(**dict(d))


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e6 else f"{v:g}"


def parse_value(text: str) -> Any:
    """``"32"`` -> 32, ``"0.1"`` -> 0.1, ``"true"`` -> True, anything else stays text.

    >>> [parse_value(t) for t in ("32", "3e-3", "true", "sgd")]
    [32, 0.003, True, 'sgd']
    """
    t = text.strip()
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    if _NUMBER.match(t):
        return float(t)
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if t.lower() in ("none", "null"):
        return None
    return t


def _needs_bar(value: Any) -> bool:
    return isinstance(value, str) and "," in value


def parse_param(text: str, where: str = "--param") -> Param:
    """``NAME=VALUES`` (module docstring) -> ``Param``; a malformed text is a ``CnnlabError``."""
    name, sep, rest = text.partition("=")
    name = name.strip().replace("-", "_") if not name.strip().startswith("layers") else name.strip()
    if not sep or not name or not rest.strip():
        raise CnnlabError(f"{where} {text!r}: write NAME=VALUES, e.g. lr=0.001,0.01 or lr=log:1e-4..1e-1")
    return parse_values(name, rest.strip(), where)


def parse_values(name: str, spec: Any, where: str) -> Param:
    """Values for ``name``: a YAML list (choices) or the text syntax of the module docstring."""
    if name in MILESTONE_FIELDS:
        items = spec if isinstance(spec, (list, tuple)) else [spec]
        texts = [t for v in items for t, _ in (split_values(v, True, where) if isinstance(v, str) else [(v, True)])]
        return _choices(name, [schedule_value(name, v, where) for v in texts if v != ""], where)
    if isinstance(spec, (list, tuple)):
        values = [parse_value(v) if isinstance(v, str) else v for v in spec]
        return _choices(name, values, where)
    if not isinstance(spec, str):
        return _choices(name, [spec], where)
    text = spec
    log = text.startswith("log:")
    is_int = text.startswith("int:")
    if log or is_int:
        text = text[4:]
    items = split_values(spec, False, where)
    if ".." not in text or len(items) > 1 or items[0][1]:
        if log or is_int:
            raise CnnlabError(f"{where} {name}: {spec!r} needs a range, e.g. {name}=log:1e-4..1e-1")
        return _choices(name, [v if quoted else parse_value(v) for v, quoted in items], where)
    lo_text, _, hi_text = text.partition("..")
    hi_text, _, points_text = hi_text.partition(":")
    try:
        low, high = float(lo_text), float(hi_text)
        points = int(points_text) if points_text else None
    except ValueError:
        raise CnnlabError(f"{where} {name}: cannot read the range {spec!r}; write LOW..HIGH, LOW..HIGH:POINTS, "
                          f"log:LOW..HIGH or int:LOW..HIGH (e.g. {name}=log:1e-4..1e-1:4)") from None
    if not low < high:
        raise CnnlabError(f"{where} {name}: the range {spec!r} is empty (low {_num(low)} >= high {_num(high)}); "
                          "write the smaller value first")
    if log and low <= 0:
        raise CnnlabError(f"{where} {name}: a log range must stay above 0, got low={_num(low)}; e.g. log:1e-5..{hi_text}")
    if points is not None and points < 1:
        raise CnnlabError(f"{where} {name}: the number of points in {spec!r} must be >= 1")
    kind = "int" if is_int or (lo_text.strip().lstrip("+-").isdigit() and hi_text.strip().lstrip("+-").isdigit()
                               and not log and points is None) else "float"
    return Param(name, kind, low=low, high=high, log=log, points=points)


def _choices(name: str, values: list[Any], where: str) -> Param:
    values = [v for v in values if v != ""]
    if not values:
        raise CnnlabError(f"{where} {name}: no values given; write e.g. {name}=0.001,0.01")
    seen: list[Any] = []
    for v in values:
        if v in seen:
            raise CnnlabError(f"{where} {name}: the value {v!r} is listed twice; list each value once")
        seen.append(v)
    return Param(name, "choice", values=values)


# ------------------------------------------------------------------ spec placeholders and paths
def find_placeholders(spec: Mapping[str, Any]) -> list[Param]:
    """Every ``{sweep: VALUES}`` in a spec dict, named by its path (``layers.0.filters``)."""
    found: list[Param] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            if set(node) == {PLACEHOLDER}:
                found.append(parse_values(path, node[PLACEHOLDER], "spec placeholder"))
                return
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if path == "layers" and isinstance(item, Mapping) and len(item) == 1:
                    walk(next(iter(item.values())), f"{path}.{i}")  # ``{conv: {...}}``: the kind is not in the path
                else:
                    walk(item, f"{path}.{i}")

    walk(dict(spec), "")
    return found


def set_spec_value(spec: dict[str, Any], path: str, value: Any) -> None:
    """Set ``layers.<i>[.<key>]`` in a spec dict (in place); a path that is not there is a ``CnnlabError``."""
    parts = path.split(".")
    layers = spec.get("layers")
    if parts[0] != "layers" or len(parts) not in (2, 3) or not isinstance(layers, list):
        raise CnnlabError(f"spec option {path!r}: write layers.<index>.<key> (e.g. layers.0.filters) "
                          "or layers.<index> for a one-number layer such as `- dense: 120`")
    try:
        index = int(parts[1])
        layer = layers[index]
    except (ValueError, IndexError):
        raise CnnlabError(f"spec option {path!r}: the spec has layers 0..{len(layers) - 1}; "
                          f"check the index") from None
    if isinstance(layer, str):
        raise CnnlabError(f"spec option {path!r}: layer {index} ({layer}) has no options to vary")
    (kind, body), = layer.items()
    if len(parts) == 2:
        if isinstance(body, Mapping) and set(body) != {PLACEHOLDER}:
            raise CnnlabError(f"spec option {path!r}: layer {index} ({kind}) has several options "
                              f"({', '.join(map(str, body))}); name one, e.g. {path}.{next(iter(body))}")
        layer[kind] = value
        return
    key = parts[2]
    if isinstance(body, Mapping):
        if key not in body:
            raise CnnlabError(f"spec option {path!r}: layer {index} ({kind}) has no {key!r} in the spec"
                              f"{did_you_mean(key, [str(k) for k in body])}; set one of: {', '.join(map(str, body))}")
        layer[kind] = {**body, key: value}
    else:
        raise CnnlabError(f"spec option {path!r}: layer {index} is written `{kind}: {body}`; "
                          f"vary it with layers.{index}")


def strip_placeholders(spec: Mapping[str, Any], params: Iterable[Param]) -> dict[str, Any]:
    """A copy of ``spec`` with each placeholder replaced by its first value (a loadable spec)."""
    out = copy.deepcopy(dict(spec))
    for p in params:
        first = p.grid()[0] if p.gridable() else (p.low if p.kind == "float" else int(p.low))
        set_spec_value(out, p.name, first)
    return out


def apply_spec(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` with the trial's ``layers.*`` values set."""
    out = copy.deepcopy(dict(spec))
    for name, value in values.items():
        if name.startswith("layers"):
            set_spec_value(out, name, value)
    return out


# ------------------------------------------------------------------ the whole space
@dataclasses.dataclass
class Space:
    """The searched dimensions plus the fixed options; ``sampler`` is ``grid``, ``random`` or ``tpe``."""

    params: list[Param]
    fixed: dict[str, Any]
    sampler: str

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def grid_points(self) -> list[dict[str, Any]]:
        axes = [[(p.name, v) for v in p.grid()] for p in self.params]
        return [dict(combo) for combo in itertools.product(*axes)]

    def random_points(self, n: int, seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        return [{p.name: p.sample(rng) for p in self.params} for _ in range(n)]

    def size(self) -> int | None:
        """Number of grid points (None when some axis is continuous)."""
        if not all(p.gridable() for p in self.params):
            return None
        return math.prod(len(p.grid()) for p in self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"params": [p.to_dict() for p in self.params], "fixed": dict(self.fixed), "sampler": self.sampler}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Space:
        return cls([Param.from_dict(p) for p in d["params"]], dict(d.get("fixed", {})), str(d["sampler"]))


def build_space(params: Iterable[Param], option_names: Iterable[str], sampler: str | None = None,
                trials: int | None = None) -> Space:
    """Check the dimensions against the option names and each other; choose the sampler.

    ``sampler=None``: ``grid`` when every axis is a list of values, else ``tpe``.
    """
    options = list(option_names)
    searched: list[Param] = []
    fixed: dict[str, Any] = {}
    seen: set[str] = set()
    for p in params:
        if p.name in MILESTONE_FIELDS:  # a Param built in Python: its values in the one text form
            if p.kind != "choice":
                raise CnnlabError(f"search space: {p.name} takes a list of schedules, not a range; "
                                  f"e.g. -p {p.name}='none|10:5,20:5'")
            p = _choices(p.name, [schedule_value(p.name, v, "search space:") for v in p.values], "search space:")
        if p.name in seen:
            raise CnnlabError(f"search space: {p.name!r} is given twice (in the spec and/or --param); keep one")
        seen.add(p.name)
        if not p.is_spec:
            if p.name in RESERVED:
                raise CnnlabError(f"search space: {p.name!r} cannot be swept: {RESERVED[p.name]}")
            if p.name not in options:
                raise CnnlabError(f"search space: unknown option {p.name!r}{did_you_mean(p.name, options)}; "
                                  f"use a training option ({', '.join(options[:8])}...) or layers.<i>.<key>")
        if p.fixed:
            fixed[p.name] = p.values[0]
        else:
            searched.append(p)
    if not searched:
        raise CnnlabError("search space: nothing to search; give at least one option with two or more values, "
                          "e.g. --param lr=0.001,0.01 or --param lr=log:1e-4..1e-1 (or a {sweep: [...]} in the spec)")
    chosen = sampler or ("grid" if all(p.gridable() for p in searched) else "tpe")
    if chosen not in ("grid", "random", "tpe"):
        raise CnnlabError(f"unknown sampler {chosen!r}{did_you_mean(chosen, ['grid', 'random', 'tpe'])}; "
                          "use grid, random or tpe")
    space = Space(searched, fixed, chosen)
    if chosen == "grid":
        ranges = [p.name for p in searched if not p.gridable()]
        if ranges:
            raise CnnlabError(f"search space: a grid needs a list of values for every option, but {', '.join(ranges)} "
                              "is a continuous range; add a number of points (e.g. lr=log:1e-4..1e-1:4) "
                              "or use --sampler tpe / random")
        size = space.size() or 0
        if size > MAX_GRID:
            raise CnnlabError(f"search space: the grid has {size:,} points (more than {MAX_GRID:,}); "
                              "use fewer values or --sampler random with --trials")
        if trials is not None and trials != size:
            raise CnnlabError(f"search space: --trials {trials} contradicts the grid of {size} points; "
                              "drop --trials (a grid runs every point) or use --sampler random/tpe")
    elif trials is None:
        raise CnnlabError(f"search space: --sampler {chosen} needs --trials N (how many trials to run)")
    return space
