"""Lazy package exports: ``import cnnlab`` (or ``cnnlab.data``) stays cheap; names load on first use.

A package lists ``{public name: defining module}`` and installs the two module-level hooks:

    _EXPORTS = {"load_data": "cnnlab.data.api"}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

>>> import types, sys
>>> pkg = types.ModuleType("demo_pkg"); sys.modules["demo_pkg"] = pkg
>>> pkg.__getattr__, pkg.__dir__ = lazy_exports("demo_pkg", {"sqrt": "math"})
>>> pkg.sqrt(9.0)
3.0
>>> "sqrt" in vars(pkg)   # cached after the first lookup
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` that import ``exports`` on first access."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


def install_api(
    package: str, exports: Mapping[str, str], moved: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``lazy_exports`` for the top-level package, plus two guarantees for its public names:

    - a public name keeps meaning its function or class, whatever was imported before: Python binds
      a subpackage as an attribute of its parent when it is imported (``import cnnlab.train.config``
      sets ``cnnlab.train``), and the package refuses that binding for a name it exports;
    - ``moved`` maps module paths of earlier releases to their homes (``cnnlab.evaluate`` ->
      ``cnnlab.inference.evaluation``): importing the old path gives the same module object.
    """
    import types

    module = sys.modules[package]
    public = frozenset(exports)

    class _Api(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if name in public and isinstance(value, types.ModuleType):
                return  # the import system binding a subpackage: the public function stays
            super().__setattr__(name, value)

    module.__class__ = _Api
    if moved:
        sys.meta_path.insert(0, _Alias(dict(moved)))
    return lazy_exports(package, exports)


class _Alias(importlib.abc.Loader, importlib.abc.MetaPathFinder):
    """Meta-path finder: an old module path imports as the module at its new home (same object)."""

    def __init__(self, moved: dict[str, str]) -> None:
        self.moved = moved
        self.home_spec: Any = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.moved:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(name, self)

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(self.moved[spec.name])
        self.home_spec = module.__spec__  # importlib overwrites __spec__ with the alias's: restored below
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = self.home_spec  # already executed at its home: nothing to run
