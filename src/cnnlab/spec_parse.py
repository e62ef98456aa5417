"""Turn YAML/JSON/dicts into a typed ``Spec``, collecting EVERY problem with its layer index and line.

Used through ``cnnlab.spec.load_spec``. YAML is read with a loader that remembers the line of
each list item, so an error says ``layer 3 (conv, line 9)``.

>>> load_spec({"input": [1, 8, 8], "layers": [{"conv": {"filter": 4}}, {"output": 2}]})
Traceback (most recent call last):
...
cnnlab.errors.SpecError: the spec has 1 problem:
  - layer 0 (conv): unknown key 'filter'; did you mean 'filters'? Allowed keys: filters, kernel, stride, padding, dilation, groups, bias, activation, connections
(shapes are checked once these are fixed)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import SpecError, did_you_mean
from cnnlab.spec import (
    LAYER_CLASSES,
    Flatten,
    Kind,
    Layer,
    Output,
    Residual,
    Spec,
)
from cnnlab.spec_convert import CONVERTERS, Bad

TOP_KEYS = ("name", "input", "layers", "description")
# names people bring from Keras/PyTorch -> our kind
ALIASES = {
    "conv2d": "conv", "convolution": "conv", "linear": "dense", "fc": "dense", "fully_connected": "dense",
    "maxpool": "pool", "max_pool": "pool", "avgpool": "pool", "avg_pool": "pool", "maxpool2d": "pool",
    "bn": "batchnorm", "batch_norm": "batchnorm", "batchnorm2d": "batchnorm", "relu": "activation",
    "softmax": "output", "classifier": "output", "gap": "global_pool", "globalaveragepooling2d": "global_pool",
    "resblock": "residual", "block": "residual", "lrn": "lrn", "localresponsenorm": "lrn",
}
SPATIAL_ONLY = (Kind.FLATTEN, Kind.DENSE, Kind.OUTPUT, Kind.GLOBAL_POOL)


class _LineList(list[Any]):
    """A YAML sequence that remembers the 1-based line of each item."""

    item_lines: list[int | None]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_seq(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_sequence(node, deep=True))
    out.item_lines = [item.start_mark.line + 1 for item in node.value]
    return out


_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_spec(source: Any) -> Spec:
    """Path, dict, bundled name or Spec -> Spec (see ``cnnlab.spec.load_spec``)."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return parse_spec(source, origin=None)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return parse_spec(read_spec_file(path), origin=str(path))
        from cnnlab import zoo

        bundled = zoo.spec_path(str(source))
        if bundled is not None:
            return parse_spec(read_spec_file(bundled), origin=str(source))
        hint = did_you_mean(str(source), zoo.names())
        raise SpecError(
            f"no spec file or bundled network named '{source}'{hint} "
            f"(bundled: {', '.join(zoo.names())}; a file must end in .yaml, .yml or .json)"
        )
    raise SpecError(f"load_spec takes a path, a dict, a bundled name or a Spec; received {type(source).__name__}")


def read_spec_file(path: Path) -> Any:
    """Read YAML or JSON with line numbers; syntax errors become a SpecError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        if path.suffix == ".json":
            try:
                return json.loads(text)
            except json.JSONDecodeError as jexc:
                raise SpecError(f"{path}: invalid JSON at line {jexc.lineno}: {jexc.msg}") from None
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}: invalid YAML{where}: {problem}") from None


def parse_spec(data: Any, origin: str | None) -> Spec:
    """Validate the structure of a spec and build the typed ``Spec``; raise one SpecError with all problems."""
    label = origin or "spec"
    if not isinstance(data, dict):
        raise SpecError(
            f"{label}: a spec is a mapping with keys name, input and layers; received {type(data).__name__}"
        )
    problems: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key '{key}'{did_you_mean(str(key), TOP_KEYS)}; allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name")
    if name is None:
        name = Path(origin).stem if origin and origin.endswith((".yaml", ".yml", ".json")) else (origin or "network")
    elif not isinstance(name, str) or not name:
        problems.append(f"'name' must be a non-empty text; received {name!r}")
        name = "network"
    shape = _parse_input(data.get("input"), problems)
    items = data.get("layers")
    layers: tuple[Layer, ...] = ()
    if not isinstance(items, list) or not items:
        problems.append(
            "'layers' must be a non-empty list, e.g. layers: [{conv: 32}, {pool: 2}, flatten, {output: 10}]; "
            f"received {items!r}"
        )
    else:
        layers = _parse_layers(items, "", problems, top=True)
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(f"'description' must be text; received {description!r}")
        description = ""
    if problems:
        n = len(problems)
        raise SpecError(
            f"{'the spec' if origin is None else origin} has {n} problem{'s' if n > 1 else ''}:\n  - "
            + "\n  - ".join(problems)
            + "\n(shapes are checked once these are fixed)",
            problems,
        )
    return Spec(name=name, input=shape, layers=layers, description=description, source=origin)


def _parse_input(value: Any, problems: list[str]) -> tuple[int, int, int]:
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok:
        if value is None:
            problems.append("missing 'input': give [channels, height, width], e.g. input: [3, 32, 32]")
        else:
            problems.append(f"'input' must be [channels, height, width] with positive integers; received {value!r}")
        return (1, 1, 1)
    return (value[0], value[1], value[2])


def where(index: str, kind: str | None, line: int | None, lang: str = "en") -> str:
    """``layer 3 (conv, line 9)`` — how every message names a layer."""
    from cnnlab.i18n import tr

    word_line = tr("analysis.where.line", lang) if lang != "en" else "line"
    extra = ", ".join(x for x in (kind, f"{word_line} {line}" if line else None) if x)
    word = tr("analysis.where.layer", lang) if lang != "en" else "layer"
    return f"{word} {index}" + (f" ({extra})" if extra else "")


def _parse_layers(items: list[Any], prefix: str, problems: list[str], top: bool) -> tuple[Layer, ...]:
    lines: list[int | None] = getattr(items, "item_lines", [None] * len(items))
    out: list[Layer] = []
    for i, item in enumerate(items):
        index = f"{prefix}{i}"
        layer = _parse_item(item, index, lines[i], problems)
        if layer is None:
            continue
        here = where(index, layer.KIND.value, lines[i])
        if not top and layer.KIND in SPATIAL_ONLY:
            problems.append(f"{here}: a residual branch keeps (C, H, W) maps, so '{layer.KIND}' cannot be inside it")
        if top and isinstance(layer, Output) and i != len(items) - 1:
            problems.append(f"{here}: 'output' must be the last layer (it gives the class logits); move it to the end")
        out.append(layer)
    if top and items and not (out and isinstance(out[-1], Output)):
        last_line = lines[-1]
        problems.append(
            f"{where(str(len(items) - 1), None, last_line)}: the last layer must be 'output: N' (N classes), "
            "e.g. '- output: 10'"
        )
    return tuple(out)


def _parse_item(item: Any, index: str, line: int | None, problems: list[str]) -> Layer | None:
    if isinstance(item, str):
        kind_name, value = item, None
    elif isinstance(item, dict) and len(item) == 1:
        kind_name, value = next(iter(item.items()))
    elif isinstance(item, dict) and "kind" in item:
        kind_name, value = item["kind"], {k: v for k, v in item.items() if k != "kind"}
    else:
        keys = ", ".join(map(str, item)) if isinstance(item, dict) else repr(item)
        problems.append(
            f"{where(index, None, line)}: each layer is one kind with its options, e.g. '- conv: {{filters: 32}}'; "
            f"received {keys} (check the indentation: options go inside the braces or one level deeper)"
        )
        return None
    kind = _parse_kind(kind_name, index, line, problems)
    if kind is None:
        return None
    cls = LAYER_CLASSES[kind]
    here = where(index, kind.value, line)
    kwargs = _layer_kwargs(cls, value, here, problems)
    if kwargs is None:
        return None
    if cls is Residual and "layers" in kwargs:
        kwargs["layers"] = _parse_branch(kwargs["layers"], index, here, problems)
        if kwargs["layers"] is None:
            return None
    layer: Layer = cls(**kwargs, line=line)
    return layer


def _parse_branch(items: Any, index: str, here: str, problems: list[str]) -> tuple[Layer, ...] | None:
    if not isinstance(items, list) or not items:
        problems.append(f"{here}: 'layers' must be a non-empty list of layers for the branch; received {items!r}")
        return None
    return _parse_layers(items, f"{index}.", problems, top=False)


def _parse_kind(name: Any, index: str, line: int | None, problems: list[str]) -> Kind | None:
    text = str(name).strip().lower() if isinstance(name, str) else None
    if text is not None:
        for kind in Kind:
            if kind.value == text:
                return kind
    choices = [k.value for k in Kind]
    hint = did_you_mean(str(name), choices)
    if not hint and text is not None and text.replace("-", "_") in ALIASES:
        hint = f"; did you mean '{ALIASES[text.replace('-', '_')]}'?"
    problems.append(f"{where(index, None, line)}: unknown layer kind '{name}'{hint} Allowed: {', '.join(choices)}")
    return None


def _layer_kwargs(cls: type, value: Any, here: str, problems: list[str]) -> dict[str, Any] | None:
    converters: dict[str, Callable[[Any], Any]] = CONVERTERS[cls]
    allowed = [f.name for f in fields(cls) if f.name != "line"]
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    if value is None:
        raw: dict[str, Any] = {}
    elif isinstance(value, dict):
        raw = dict(value)
    elif cls is Flatten:
        problems.append(f"{here}: flatten takes no options; write '- flatten'; received {value!r}")
        return None
    else:
        raw = {cls.MAIN: value}  # type: ignore[attr-defined]
    kwargs: dict[str, Any] = {}
    ok = True
    suggested: set[str] = set()
    for key, val in raw.items():
        if key not in converters:
            hint = did_you_mean(str(key), allowed)
            suggested.update(a for a in allowed if f"'{a}'" in hint)
            problems.append(f"{here}: unknown key '{key}'{hint} Allowed keys: {', '.join(allowed) or 'none'}")
            ok = False
            continue
        try:
            kwargs[key] = converters[key](val)
        except Bad as exc:
            problems.append(f"{here}: '{key}' {exc}; received {val!r}{exc.hint}")
            ok = False
    for key in required:
        if key not in raw and key not in suggested:
            problems.append(f"{here}: missing '{key}', e.g. '- {cls.KIND.value}: {_EXAMPLE[key]}'")  # type: ignore[attr-defined]
            ok = False
    return kwargs if ok else None


_EXAMPLE = {"filters": "32", "units": "128", "classes": "10", "layers": "[{conv: {filters: 64, padding: same}}]"}
