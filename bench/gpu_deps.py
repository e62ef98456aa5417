"""Make cnnlab's pure-Python dependencies importable on an offline GPU machine, without pip.

The GPU machine has PyTorch but maybe not numpy, PyYAML, safetensors, rich, Pillow or pytest and
no network. ``bench/gpu_run.sh`` carries wheels in the ignored folder ``.whl/`` (filled on a
connected machine with ``pip download``, see BENCHMARKS.md) and calls this script, which unpacks
only the wheels of packages that do not import already into TARGET (then put on PYTHONPATH).

    python bench/gpu_deps.py .whl /tmp/cnnlab-deps
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

# import name -> (wheel name prefix, import names of its own dependencies)
NEEDED = {
    "numpy": ("numpy", []),
    "yaml": ("pyyaml", []),
    "safetensors": ("safetensors", []),
    "PIL": ("pillow", []),
    "rich": ("rich", ["markdown_it", "mdurl", "pygments"]),
    "markdown_it": ("markdown_it_py", ["mdurl"]),
    "mdurl": ("mdurl", []),
    "pygments": ("pygments", []),
    "pytest": ("pytest", ["iniconfig", "pluggy", "packaging"]),
    "iniconfig": ("iniconfig", []),
    "pluggy": ("pluggy", []),
    "packaging": ("packaging", []),
}


def missing(names: list[str]) -> list[str]:
    """``names`` plus their dependencies that cannot be imported here."""
    out: list[str] = []
    todo = list(names)
    while todo:
        name = todo.pop(0)
        if name in out or importlib.util.find_spec(name) is not None:
            continue
        out.append(name)
        todo.extend(NEEDED[name][1])
    return out


def main() -> int:
    wheels, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(target))  # already unpacked by an earlier call
    todo = missing(["numpy", "yaml", "safetensors", "PIL", "rich", "pytest"])
    if not todo:
        print("deps: everything imports already")
        return 0
    failed = []
    for name in todo:
        prefix = NEEDED[name][0]
        found = sorted(wheels.glob(f"{prefix}-*.whl"))
        if not found:
            failed.append(f"{name} (no {prefix}-*.whl in {wheels})")
            continue
        with zipfile.ZipFile(found[-1]) as whl:
            whl.extractall(target)
        print(f"deps: unpacked {found[-1].name}")
    if failed:
        print("deps: missing and not carried: " + ", ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
