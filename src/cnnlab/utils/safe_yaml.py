"""Bounded YAML reading: every YAML file cnnlab reads (spec, ``--config``, a run's config.yaml and
spec.yaml) goes through :func:`read_yaml` or :func:`load_yaml`.

PyYAML's safe loaders never run code, but a few hundred bytes of nested anchors and aliases
("billion laughs") describe a document of billions of nodes, and anything that walks it (a spec
check, a JSON dump) then runs out of memory. Here the composed node graph is measured before a
single Python object is built: the document size in bytes, the number of nodes once every alias is
expanded, and the nesting depth are each capped, and a self-referencing alias is refused.

>>> load_yaml("a: &x [1, 2]\\nb: *x")
{'a': [1, 2], 'b': [1, 2]}
>>> load_yaml("a: &a [1, 1]\\nb: &b [*a, *a]\\nc: &c [*b, *b]", max_nodes=10)
Traceback (most recent call last):
...
cnnlab.utils.safe_yaml.YamlLimitError: the document expands to more than 10 values once its aliases (*name) are expanded; write the values out instead of nesting aliases
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: a spec or a config is a few KB
MAX_NODES = 100_000  # values after alias expansion
MAX_DEPTH = 100  # nesting levels (100 nested residual blocks need more; the spec limit is lower anyway)

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(yaml.YAMLError):
    """The YAML text is too large, too deep, expands too far or is not UTF-8 text."""


class BoundedLoader(_BaseLoader):
    """The safe loader (C-accelerated when available); subclass it to add constructors."""


def read_yaml(path: str | os.PathLike[str], loader: type | None = None, *, max_bytes: int = MAX_BYTES) -> Any:
    """Read and parse the YAML file ``path`` within the limits; raises ``OSError`` or ``yaml.YAMLError``.

    Only a regular file is read, and never more than ``max_bytes + 1`` bytes of it.
    """
    p = Path(path)
    with open(p, "rb") as fh:
        if not _is_regular(fh.fileno()):
            raise YamlLimitError("it is not a regular file; name a .yaml file")
        data = fh.read(max_bytes + 1)
    return load_yaml(data, loader, max_bytes=max_bytes)


def load_yaml(text: str | bytes, loader: type | None = None, *, max_bytes: int = MAX_BYTES,
              max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one YAML document from ``text`` after checking its size, expansion and depth."""
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise YamlLimitError(f"the file is larger than {max_bytes} bytes, too large for a spec or a config")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise YamlLimitError(f"it is not UTF-8 text (byte {exc.start} is 0x{text[exc.start]:02x}); "
                                 "save it as UTF-8") from None
    elif len(text) > max_bytes:
        raise YamlLimitError(f"the text is longer than {max_bytes} characters, too large for a spec or a config")
    ld = (loader or BoundedLoader)(text)
    try:
        node = ld.get_single_node()
        if node is None:
            return None
        check_node_graph(node, max_nodes=max_nodes, max_depth=max_depth)
        return ld.construct_document(node)
    finally:
        ld.dispose()


def check_node_graph(root: yaml.Node, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``YamlLimitError`` when ``root`` expands past ``max_nodes``, nests past ``max_depth`` or loops.

    Aliases share one node, so sizes and heights are memoised per node: the walk costs the size of
    the composed text, not of the expanded document. No recursion: an explicit stack.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            if size[key] > max_nodes:
                raise YamlLimitError(f"the document expands to more than {max_nodes} values once its aliases "
                                     "(*name) are expanded; write the values out instead of nesting aliases")
            if height[key] > max_depth:
                raise YamlLimitError(f"the document nests deeper than {max_depth} levels; flatten it")
            continue
        if key in size:
            continue
        if key in on_path:
            mark = node.start_mark
            raise YamlLimitError(f"an alias refers to a value that contains it (line {mark.line + 1}); "
                                 "a spec or a config cannot be recursive")
        if len(on_path) >= max_depth:
            raise YamlLimitError(f"the document nests deeper than {max_depth} levels; flatten it")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)
