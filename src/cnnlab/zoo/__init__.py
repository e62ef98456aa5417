"""Bundled classic networks: one YAML spec per network in this folder.

>>> "resnet18" in names()
True
>>> [m.name for m in list_models()][:2]
['alexnet', 'alexnet-2012']

``cnnlab models`` lists them with their counts; ``cnnlab summary NAME`` explains one.
A base module: it may import only ``errors`` (the spec loader reads its YAML files by name).

Some come with a training recipe, a ``--config`` file in ``recipes/`` found by name:

>>> recipe_path("mnist-modern").name
'mnist-modern.yaml'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cnnlab.errors import SpecError, did_you_mean


@dataclass(frozen=True)
class ZooEntry:
    """A bundled network: its name, one-line description and the spec file's path."""

    name: str
    description: str
    path: Path


def _folder() -> Path:
    return Path(str(resources.files("cnnlab.zoo")))


def names() -> list[str]:
    """Names of the bundled networks, sorted."""
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def spec_path(name: str) -> Path | None:
    """The YAML file of a bundled network, or None when there is no such name."""
    path = _folder() / f"{name.strip().lower()}.yaml"
    return path if path.is_file() and "/" not in name else None


def get(name: str) -> ZooEntry:
    """The entry for ``name``; ``SpecError`` with did-you-mean for an unknown name."""
    path = spec_path(name)
    if path is None:
        raise SpecError(f"no bundled network '{name}'{did_you_mean(name, names())}; available: {', '.join(names())}")
    return ZooEntry(name, _description(path), path)


def recipe_names() -> list[str]:
    """Names of the bundled training recipes (``cnnlab train ... --config NAME``), sorted."""
    return sorted(p.stem for p in (_folder() / "recipes").glob("*.yaml"))


def recipe_path(name: str) -> Path | None:
    """The bundled recipe file ``recipes/NAME.yaml``, or None when there is no such recipe."""
    path = _folder() / "recipes" / f"{name.strip().lower()}.yaml"
    return path if "/" not in name and "\\" not in name and path.is_file() else None


def list_models() -> list[ZooEntry]:
    """Every bundled network, sorted by name (counts: ``cnnlab.analyze(entry.name)``)."""
    return [get(n) for n in names()]


def _description(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("description:"):
            text = line.split(":", 1)[1].strip()
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":  # quoted: "for: ..." holds a colon
                text = text[1:-1]
            return text
    return ""
