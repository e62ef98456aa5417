"""``cnnlab.report.figures.preload``: matplotlib is imported before the report forks its picture child,
so the child inherits it instead of importing it again (#15, report time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

SCRIPT = r"""
import json, sys
import numpy as np
from cnnlab.report import figures
from cnnlab.visualize import plot_confusion, figure_png
fresh = not any(m.startswith("matplotlib") for m in sys.modules)
figures.preload()
before = set(sys.modules)
rows = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + e / 10, "val_loss": 1.2 / e, "val_acc": 0.4 + e / 10,
         "lr": 0.01} for e in (1, 2, 3)]
pic = figures.curves_picture(rows, "en")
png = figure_png(plot_confusion(np.array([[5, 1], [2, 7]]), ["a", "b"], lang="en"))
late = sorted(m for m in set(sys.modules) - before if m.startswith(("matplotlib", "PIL", "fontTools")))
print(json.dumps({"fresh": fresh, "late": late, "drawn": pic is not None and len(png) > 100}))
"""


def test_after_preload_drawing_the_plain_pictures_imports_no_more_matplotlib():
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["fresh"], "matplotlib was imported before preload: the test would prove nothing"
    assert got["drawn"]
    assert got["late"] == []
