"""Wall time of ``cnnlab summary resnet18`` (a fresh process each time) and proof that torch is not imported.

Run:  .venv/bin/python bench/analysis_cli.py
Prints the figures and writes bench/results/analysis_cli.json. Target: ≤ 0.4 s wall, no torch.
Also times a bare ``python -c pass`` and splits the in-process time into CLI start-up (parser,
all command groups), analysis and rendering, so the share of each part is visible.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "cnnlab", "summary", "resnet18"]
# the same command through the summary handler only (no other command group imported)
OWN_PATH = (
    "import argparse\n"
    "from cnnlab.cli.analysis_cmds import run_summary\n"
    "run_summary(argparse.Namespace(net='resnet18', format='table', batch=1, lang=None, width=None, input=None))\n"
)
PROBE = (
    "import io, sys, time, contextlib\n"
    "t0 = time.perf_counter()\n"
    "from cnnlab.cli import build_parser\n"
    "parser = build_parser()\n"
    "t1 = time.perf_counter()\n"
    "from cnnlab.analysis import analyze\n"
    "a = analyze('resnet18')\n"
    "t2 = time.perf_counter()\n"
    "from cnnlab.analysis.render import render_text\n"
    "text = render_text(a)\n"
    "t3 = time.perf_counter()\n"
    "print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, 'torch' in sys.modules)\n"
)


CPU: dict[str, list[float]] = {}


def wall(cmd: list[str], repeats: int) -> list[float]:
    """Wall seconds per run; the CPU seconds (user + system) of each run go to ``CPU[cmd[-1]]``."""
    out = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        CPU.setdefault(cmd[-1], []).append(cpu)
    return out


def main() -> None:
    repeats = 15
    bare = wall([sys.executable, "-c", "pass"], repeats)
    summary = wall(CLI, repeats)
    own = wall([sys.executable, "-c", OWN_PATH], repeats)
    parts = [subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout.split()
             for _ in range(5)]
    torch_loaded = subprocess.run(
        [sys.executable, "-c", "import sys, runpy; sys.argv = ['cnnlab', 'summary', 'resnet18'];\n"
         "import contextlib, io\nfrom cnnlab.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()): main(sys.argv[1:])\nprint('torch' in sys.modules)"],
        check=True, capture_output=True, text=True).stdout.strip()
    result = {
        "command": " ".join(["python", "-m", "cnnlab", "summary", "resnet18"]),
        "summary_wall_min_s": round(min(summary), 3),
        "summary_wall_median_s": round(statistics.median(summary), 3),
        "summary_cpu_median_s": round(statistics.median(CPU[CLI[-1]]), 3),
        "python_startup_cpu_median_s": round(statistics.median(CPU["pass"]), 3),
        "python_startup_min_s": round(min(bare), 3),
        "summary_handler_only_wall_min_s": round(min(own), 3),
        "summary_handler_only_wall_median_s": round(statistics.median(own), 3),
        "summary_handler_only_cpu_median_s": round(statistics.median(CPU[OWN_PATH]), 3),
        "cli_startup_ms_min": round(min(float(p[0]) for p in parts), 1),
        "analyze_ms_min": round(min(float(p[1]) for p in parts), 1),
        "render_ms_min": round(min(float(p[2]) for p in parts), 1),
        "torch_imported": torch_loaded == "True",
        "target_s": 0.4,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "analysis_cli.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
