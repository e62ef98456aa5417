"""Wall time of ``cnnlab demo`` as a user runs it: a fresh process each round (issue #15: <= 30 s, >= 97 % held out).

Each round runs ``python -m cnnlab demo --out TMP/demo-N`` (imports, data, training, evaluation,
predictions, report: everything the command does), timed from process start to exit, and reads the
held-out accuracy and the thread choice from its output. Prints every round with the 1-minute load
average before and after, then the median.

    PYTHONPATH=src .venv/bin/python bench/demo_time.py --rounds 3
    PYTHONPATH=src .venv/bin/python bench/demo_time.py --rounds 1 -- --threads 2   # extra demo options

Writes ``bench/results/demo_time.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 1)[0] if Path("/proc/loadavg").exists() else "?"


def one_round(folder: Path, extra: list[str]) -> dict[str, object]:
    load_start = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "demo", "--out", str(folder), *extra],
                          capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"cnnlab demo failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    acc = re.search(r"held-out accuracy: ([\d.]+)%", proc.stdout)
    threads = re.search(r"threads (\d+(?: \([^)]*\))?), precision", proc.stdout)
    return {"wall_s": round(wall, 2), "held_out_accuracy": round(float(acc.group(1)) / 100, 4) if acc else None,
            "threads": threads.group(1) if threads else None, "load_1min_start": load_start,
            "load_1min_end": loadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("extra", nargs="*", help="options passed to cnnlab demo (after --)")
    args = ap.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            row = {"round": r + 1, **one_round(Path(tmp) / f"demo-{r}", args.extra)}
            rounds.append(row)
            print(f"round {row['round']}: {row['wall_s']:.1f} s, held-out {row['held_out_accuracy']}, threads "
                  f"{row['threads']} (load {row['load_1min_start']}->{row['load_1min_end']})", flush=True)
    median = statistics.median(float(r["wall_s"]) for r in rounds)  # type: ignore[arg-type]
    accs = [r["held_out_accuracy"] for r in rounds]
    walls = ", ".join(f"{float(r['wall_s']):.1f}" for r in rounds)  # type: ignore[arg-type]
    print(f"SUMMARY cnnlab demo: median {median:.1f} s wall (rounds: {walls}); held-out accuracy {accs}; "
          "target <= 30 s, >= 0.97")
    out = Path(__file__).parent / "results" / "demo_time.json"
    out.write_text(json.dumps({"date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "extra": args.extra,
                               "rounds": rounds, "median_wall_s": median}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
