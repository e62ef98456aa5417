"""Benchmark: peak resident memory of loading MNIST (60,000 + 10,000 images) as uint8 in RAM.

Each measurement runs in a fresh subprocess and reports ``ru_maxrss`` (peak RSS) and the RSS
of the bare interpreter with the same imports, so the figure is what loading itself costs.
``load_data`` does not import torch; a second measurement imports torch first, as training does.

    CNNLAB_DATA=../shared/data nice .venv/bin/python bench/data_memory.py

Writes bench/results/data_memory.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys
if sys.argv[1] == "torch":
    import torch  # noqa: F401
import cnnlab.data.api  # noqa: F401  (the loader's own imports)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from cnnlab.data import load_data
b = load_data("mnist", (1, 28, 28), progress=False, download=False)
held = sum(s.images.nbytes for s in b.splits().values())
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_load_mb": before / 1024, "images_held_mb": held / 2**20,
                  "counts": {k: len(v) for k, v in b.splits().items()}}))
"""


def measure(mode: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, env=os.environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    result = {"without_torch": measure("plain"), "with_torch": measure("torch")}
    for name, r in result.items():
        print(f"{name:>13}: peak RSS {r['peak_rss_mb']:.0f} MB (interpreter + imports {r['rss_before_load_mb']:.0f} MB, "
              f"images held {r['images_held_mb']:.1f} MB, splits {r['counts']})")
    out = Path(__file__).parent / "results" / "data_memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
