"""Benchmark: a 12-trial learning-rate x batch-size grid on MNIST with ``--workers 1`` and ``--workers 2``.

    .venv/bin/python bench/sweep_grid.py [--limit 3000] [--epochs 1] [--workers 1 2]

Runs ``cnnlab sweep keras-mnist --data $CNNLAB_MNIST -p lr=0.001,0.003,0.01,0.03 -p batch_size=32,64,128
-p epochs=E --limit N --workers W`` in a fresh process for each W (sweep folders under $TMPDIR), and
records the wall time, the trials' validation accuracies, the winner and its test accuracy. Writes
``bench/results/sweep_grid.json``. The screenshot ``bench/results/sweep_report.png`` comes from the browser
test run on the last sweep folder: ``CNNLAB_SWEEP_REPORT=$TMPDIR/cnnlab-bench-sweep/w1
CNNLAB_SWEEP_SCREENSHOT=bench/results/sweep_report.png .venv/bin/python -m pytest -m slow tests/test_sweep_browser.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LRS = "0.001,0.003,0.01,0.03"
BATCHES = "32,64,128"


def one(workers: int, limit: int, epochs: int, data: str, base: Path) -> dict:
    out = base / f"w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "cnnlab", "sweep", "keras-mnist", "--data", data, "-p", f"lr={LRS}",
           "-p", f"batch_size={BATCHES}", "-p", f"epochs={epochs}", "--limit", str(limit),
           "--workers", str(workers), "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    result = json.loads((out / "results.json").read_text())
    trials = [{"trial": t["number"], "lr": t["params"]["lr"], "batch_size": t["params"]["batch_size"],
               "val_acc": t["value"], "time_s": t["time_s"], "state": t["state"]} for t in result["trials"]]
    return {"workers": workers, "wall_s": round(wall, 1), "command": " ".join(cmd[1:]), "trials": trials,
            "best": result["best"], "test": result["test"], "report": str(out / "report.html"),
            "load_before": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    data = os.environ.get("CNNLAB_MNIST", "/work/shared/data/mnist")
    base = Path(tempfile.gettempdir()) / "cnnlab-bench-sweep"
    runs = []
    for w in args.workers:
        r = one(w, args.limit, args.epochs, data, base)
        print(f"--workers {w}: {r['wall_s']} s (12 trials), best trial {r['best']}, test {r['test']}", flush=True)
        runs.append(r)
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "limit": args.limit, "epochs": args.epochs,
            "runs": runs}
    (RESULTS / "sweep_grid.json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
