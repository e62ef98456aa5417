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

import functools
import json
import os
import reprlib
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import SpecError, did_you_mean
from cnnlab.i18n import tr
from cnnlab.spec.convert import CONVERTERS, Bad
from cnnlab.spec.types import (
    LAYER_CLASSES,
    Flatten,
    Kind,
    Layer,
    Output,
    Residual,
    Spec,
)
from cnnlab.utils.paths import missing_path_hint
from cnnlab.utils.safe_yaml import BoundedLoader, YamlLimitError, read_yaml

TOP_KEYS = ("name", "input", "layers", "description")
# names people bring from Keras/PyTorch -> our kind
ALIASES = {
    "conv2d": "conv", "convolution": "conv", "linear": "dense", "fc": "dense", "fully_connected": "dense",
    "maxpool": "pool", "max_pool": "pool", "avgpool": "pool", "avg_pool": "pool", "maxpool2d": "pool",
    "bn": "batchnorm", "batch_norm": "batchnorm", "batchnorm2d": "batchnorm", "relu": "activation",
    "softmax": "output", "classifier": "output", "gap": "global_pool", "globalaveragepooling2d": "global_pool",
    "resblock": "residual", "block": "residual", "lrn": "lrn", "localresponsenorm": "lrn",
}
MAX_NESTING = 16  # residual blocks inside residual blocks: deeper specs are refused, not recursed into
SPATIAL_ONLY = (Kind.FLATTEN, Kind.DENSE, Kind.OUTPUT, Kind.GLOBAL_POOL)


class _LineList(list[Any]):
    """A YAML sequence that remembers the 1-based line of each item."""

    item_lines: list[int | None]


class _Loader(BoundedLoader):
    pass


def _construct_seq(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_sequence(node, deep=True))
    out.item_lines = [item.start_mark.line + 1 for item in node.value]
    return out


_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


class Problems:
    """Collects problems as translated messages (``lang``: en or pt)."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang
        self.items: list[str] = []

    def add(self, msg_id: str, /, **values: Any) -> None:
        self.items.append(tr(f"spec.{msg_id}", self.lang, **values))

    def hint(self, name: str, choices: Any) -> str:
        """did-you-mean in the problem's language."""
        text = did_you_mean(name, choices)
        return text if not text or self.lang == "en" else tr("spec.did_you_mean", self.lang, name=text.split("'")[1])


def load_spec(source: Any, lang: str = "en") -> Spec:
    """Path, dict, bundled name or Spec -> Spec (see ``cnnlab.spec.load_spec``)."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return parse_spec(source, origin=None, lang=lang)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return parse_spec(read_spec_file(path), origin=str(path), lang=lang)
        if path.exists():
            raise SpecError(tr("spec.not_a_file", lang, path=path))
        from cnnlab import zoo

        bundled = zoo.spec_path(str(source))
        if bundled is not None:
            return parse_spec(read_spec_file(bundled), origin=str(source), lang=lang)
        ps = Problems(lang)
        raise SpecError(tr("spec.no_such", lang, name=source, hint=ps.hint(str(source), zoo.names()) or missing_path_hint(source),
                           names=", ".join(zoo.names())))
    raise SpecError(tr("spec.bad_source", lang, type=type(source).__name__))


def read_spec_file(path: Path) -> Any:
    """Read YAML or JSON with line numbers, within the limits of ``cnnlab.utils.safe_yaml``.

    Syntax errors become a SpecError with the line.
    """
    try:
        return read_yaml(path, _Loader)
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}; check the path") from None
    except YamlLimitError as exc:
        raise SpecError(f"spec file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        if path.suffix == ".json":
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as jexc:
                raise SpecError(f"{path}: invalid JSON at line {jexc.lineno}: {jexc.msg}") from None
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}: invalid YAML{where}: {problem}") from None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 60, 60, 8, 8


def short_repr(value: Any) -> str:
    """``repr`` cut to a readable length and depth (a hostile value can be huge or deeply nested)."""
    return _REPR.repr(value)


def yaml_type(value: Any) -> str:
    """The YAML word for a value's type (``a list``), never an internal class name."""
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, bool):
        return f"true/false ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return "text"
    return "nothing (an empty document)" if value is None else "a value of another kind"


def parse_spec(data: Any, origin: str | None, lang: str = "en") -> Spec:
    """Validate the structure of a spec and build the typed ``Spec``; raise one SpecError with all problems."""
    if not isinstance(data, dict):
        raise SpecError(tr("spec.not_mapping", lang, label=origin or "spec", type=yaml_type(data)))
    ps = Problems(lang)
    for key in data:
        if key not in TOP_KEYS:
            ps.add("top_key", key=key, hint=ps.hint(str(key), TOP_KEYS), allowed=", ".join(TOP_KEYS))
    name = data.get("name")
    if name is None:
        name = Path(origin).stem if origin and origin.endswith((".yaml", ".yml", ".json")) else (origin or "network")
    elif not isinstance(name, str) or not name:
        ps.add("name", value=short_repr(name))
        name = "network"
    shape = _parse_input(data.get("input"), ps)
    items = data.get("layers")
    layers: tuple[Layer, ...] = ()
    if not isinstance(items, list) or not items:
        ps.add("layers", value=short_repr(items))
    else:
        layers = _parse_layers(items, "", ps, top=True)
    description = data.get("description", "")
    if not isinstance(description, str):
        ps.add("description", value=short_repr(description))
        description = ""
    if ps.items:
        n = len(ps.items)
        label = origin or tr("spec.the_spec", lang)
        raise SpecError(
            tr("spec.header", lang, label=label, n=n, s="s" if n > 1 else "") + "\n  - " + "\n  - ".join(ps.items)
            + "\n" + tr("spec.footer", lang),
            ps.items,
        )
    return Spec(name=name, input=shape, layers=layers, description=description, source=origin)


def _parse_input(value: Any, ps: Problems) -> tuple[int, int, int]:
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok:
        if value is None:
            ps.add("input_missing")
        else:
            ps.add("input_bad", value=short_repr(value))
        return (1, 1, 1)
    return (value[0], value[1], value[2])


def where(index: str, kind: str | None, line: int | None, lang: str = "en") -> str:
    """``layer 3 (conv, line 9)`` — how every message names a layer."""
    word_line = tr("analysis.where.line", lang) if lang != "en" else "line"
    extra = ", ".join(x for x in (kind, f"{word_line} {line}" if line else None) if x)
    word = tr("analysis.where.layer", lang) if lang != "en" else "layer"
    return f"{word} {index}" + (f" ({extra})" if extra else "")


def _parse_layers(items: list[Any], prefix: str, ps: Problems, top: bool) -> tuple[Layer, ...]:
    lines: list[int | None] = getattr(items, "item_lines", [None] * len(items))
    out: list[Layer] = []
    for i, item in enumerate(items):
        index = f"{prefix}{i}"
        layer = _parse_item(item, index, lines[i], ps)
        if layer is None:
            continue
        if not top and layer.KIND in SPATIAL_ONLY:
            ps.add("in_branch", where=where(index, layer.KIND.value, lines[i], ps.lang), kind=layer.KIND.value)
        if top and isinstance(layer, Output) and i != len(items) - 1:
            ps.add("output_not_last", where=where(index, layer.KIND.value, lines[i], ps.lang))
        out.append(layer)
    if top and items and not (out and isinstance(out[-1], Output)):
        ps.add("no_output", where=where(str(len(items) - 1), None, lines[-1], ps.lang))
    return tuple(out)


def _parse_item(item: Any, index: str, line: int | None, ps: Problems) -> Layer | None:
    if isinstance(item, str):
        kind_name, value = item, None
    elif isinstance(item, dict) and len(item) == 1:
        kind_name, value = next(iter(item.items()))
    elif isinstance(item, dict) and "kind" in item:
        kind_name, value = item["kind"], {k: v for k, v in item.items() if k != "kind"}
    else:
        keys = ", ".join(map(str, item)) if isinstance(item, dict) else short_repr(item)
        ps.add("one_kind", where=where(index, None, line, ps.lang), keys=keys)
        return None
    kind = _parse_kind(kind_name, index, line, ps)
    if kind is None:
        return None
    cls = LAYER_CLASSES[kind]
    here = functools.partial(where, index, kind.value, line, ps.lang)  # built only for a message
    kwargs = _layer_kwargs(cls, value, here, ps)
    if kwargs is None:
        return None
    if cls is Residual and "layers" in kwargs:
        kwargs["layers"] = _parse_branch(kwargs["layers"], index, here, ps)
        if kwargs["layers"] is None:
            return None
    layer: Layer = cls(**kwargs, line=line)
    return layer


def _parse_branch(items: Any, index: str, here: Callable[[], str], ps: Problems) -> tuple[Layer, ...] | None:
    depth = index.count(".") + 1
    if depth > MAX_NESTING:
        ps.add("too_deep", where=here(), depth=depth, limit=MAX_NESTING)
        return None
    if not isinstance(items, list) or not items:
        ps.add("branch", where=here(), value=short_repr(items))
        return None
    return _parse_layers(items, f"{index}.", ps, top=False)


def _parse_kind(name: Any, index: str, line: int | None, ps: Problems) -> Kind | None:
    text = str(name).strip().lower() if isinstance(name, str) else None
    if text is not None and text in _KINDS:
        return _KINDS[text]
    choices = [k.value for k in Kind]
    hint = ps.hint(str(name), choices)
    if not hint and text is not None and text.replace("-", "_") in ALIASES:
        hint = ps.hint(ALIASES[text.replace("-", "_")], choices)
    ps.add("kind", where=where(index, None, line, ps.lang), name=name, hint=hint, allowed=", ".join(choices))
    return None


@functools.cache
def _keys(cls: type) -> tuple[list[str], list[str]]:
    """(allowed keys, required keys) of a layer dataclass."""
    allowed = [f.name for f in fields(cls) if f.name != "line"]
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    return allowed, required


_KINDS = {k.value: k for k in Kind}


def _layer_kwargs(cls: type, value: Any, here: Callable[[], str], ps: Problems) -> dict[str, Any] | None:
    converters: dict[str, Callable[[Any], Any]] = CONVERTERS[cls]
    allowed, required = _keys(cls)
    if value is None:
        raw: dict[str, Any] = {}
    elif isinstance(value, dict):
        raw = dict(value)
    elif cls is Flatten:
        ps.add("flatten", where=here(), value=short_repr(value))
        return None
    else:
        raw = {cls.MAIN: value}  # type: ignore[attr-defined]
    kwargs: dict[str, Any] = {}
    ok = True
    suggested: set[str] = set()
    for key, val in raw.items():
        if key not in converters:
            hint = ps.hint(str(key), allowed)
            suggested.update(a for a in allowed if f"'{a}'" in hint)
            ps.add("key", where=here(), key=key, hint=hint, allowed=", ".join(allowed) or "-")
            ok = False
            continue
        try:
            kwargs[key] = converters[key](val)
        except Bad as exc:
            hint = ps.hint(str(val), exc.options) if exc.options else ""
            ps.add("value", where=here(), key=key, rule=tr(f"spec.bad.{exc.rule}", ps.lang, **exc.values),
                   value=short_repr(val), hint=hint)
            ok = False
    for key in required:
        if key not in raw and key not in suggested:
            ps.add("missing", where=here(), key=key, kind=cls.KIND.value, example=_EXAMPLE[key])  # type: ignore[attr-defined]
            ok = False
    return kwargs if ok else None


_EXAMPLE = {"filters": "32", "units": "128", "classes": "10", "layers": "[{conv: {filters: 64, padding: same}}]"}
