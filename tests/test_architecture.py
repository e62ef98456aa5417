"""The package layout reads as the data flow (docs/dev/ARCHITECTURE.md): a layer imports only the
layers to its left, never one to its right, and there are no import circles between modules.

Every ``import`` in ``src/cnnlab`` counts, also those inside functions and under ``TYPE_CHECKING``:
a lazy import of a higher layer is still a dependency on it.

Run: .venv/bin/pytest tests/test_architecture.py
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# The flow, lowest first. Base modules (errors, i18n, utils, distributed) may be used by any layer.
LAYERS = ["spec", "analysis", "model", "data", "train", "inference", "visualize", "report", "explore",
          "workflows", "sweep", "studies", "cli"]
BASE = {"errors", "i18n", "utils", "distributed", "zoo"}
# zoo holds the bundled network specs (YAML) and is read by spec's loader: it sits with the base.
TOP = {"__init__", "__main__"}
TORCH_FREE = {"spec", "analysis", "errors", "i18n", "utils", "zoo"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["cnnlab", *parts])] = path
    return out


def _imports(path: Path, name: str) -> set[str]:
    """Every cnnlab module ``name`` imports (absolute or relative, at any depth of the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found |= {f"{base}.{a.name}" for a in node.names}  # a name or a submodule of base
    return {m for m in found if m == "cnnlab" or m.startswith("cnnlab.")}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        targets = set()
        for imported in _imports(path, name):
            while imported not in mods and "." in imported:  # `from pkg import name` -> pkg
                imported = imported.rsplit(".", 1)[0]
            if imported in mods and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _rank(area: str) -> int | None:
    return LAYERS.index(area) if area in LAYERS else None


def test_every_area_is_a_known_layer_or_base_module() -> None:
    areas = {_area(m) for m in _modules()}
    assert areas <= set(LAYERS) | BASE | TOP, areas - set(LAYERS) - BASE - TOP


def test_no_layer_imports_a_higher_layer() -> None:
    bad = []
    for module, targets in _graph().items():
        here = _area(module)
        for target in targets:
            there = _area(target)
            if here in TOP or there == here or there in TOP:  # `from cnnlab import __version__`
                continue
            if here in BASE and there not in BASE:
                bad.append(f"{module} (base) imports {target} ({there})")
            elif _rank(here) is not None and _rank(there) is not None and _rank(there) > _rank(here):
                bad.append(f"{module} ({here}) imports {target} ({there}), a higher layer")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_circles_between_modules() -> None:
    graph = _graph()
    # package __init__ files re-export their own submodules: an edge pkg -> pkg.x is not a circle
    edges = {m: {t for t in ts if not (t.startswith(m + ".") and (SRC / "/".join(m.split(".")[1:]) / "__init__.py").exists())}
             for m, ts in graph.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("area", sorted(TORCH_FREE))
def test_torch_free_areas_never_import_torch(area: str) -> None:
    offenders = []
    for name, path in _modules().items():
        if _area(name) != area:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "torch" or n.startswith("torch.") for n in names):
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders, offenders


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The AST reader finds lazy, relative and TYPE_CHECKING imports (else the tests above prove nothing)."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cnnlab.report import api\n"
                   "def f():\n    from ..cli import main\n    import cnnlab.train.run\n")
    found = _imports(src, "cnnlab.data.m")
    assert {"cnnlab.report.api", "cnnlab.cli.main", "cnnlab.train.run"} <= found


def test_each_package_says_what_it_owns_and_may_import() -> None:
    missing = []
    for area in LAYERS + ["utils", "zoo"]:
        init = SRC / area / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) if init.exists() else None
        if not doc or "import" not in doc.lower():
            missing.append(area)
    assert not missing, f"packages whose __init__ docstring does not say what they may import: {missing}"


def test_at_most_six_top_level_modules() -> None:
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= 6, top


def test_public_names_stay_functions_whatever_was_imported_before() -> None:
    """``import cnnlab.train.config`` binds ``cnnlab.train`` to the subpackage in plain Python; the
    package keeps its public functions. The old module paths still import (same module objects)."""
    import subprocess
    import sys

    code = ("import sys, cnnlab.evaluate, cnnlab.predict, cnnlab.export, cnnlab.report, cnnlab.train, "
            "cnnlab.train.config, cnnlab.report.api, cnnlab; import inspect; "
            "print(all(inspect.isfunction(getattr(cnnlab, n)) or inspect.isclass(getattr(cnnlab, n)) "
            "for n in cnnlab.__all__), "
            "sys.modules['cnnlab.evaluate'] is sys.modules['cnnlab.inference.evaluation'], "
            "sys.modules['cnnlab.evaluate'].__spec__.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "cnnlab.inference.evaluation"]
