"""Peak RSS, wall time and the message of each memory case of issue 11, each in its own child process.

Run:  PYTHONPATH=src .venv/bin/python bench/hostile_memory.py
Each case (``tests/_hostile_cases.py``: billion-laughs spec and --config, a CIFAR batch declaring
1.5 M x 3,072, a 20 GB sparse .jpg, a 784 M-parameter dense layer, a 3 x 20000 x 20000 input) runs
``python -m cnnlab ...`` under RLIMIT_AS = 4 GiB, a guard so that a regression fails instead of
taking the machine. The child's peak RSS comes from ``os.wait4``. Target: all under 1 GB, exit 2.
Writes bench/results/hostile_memory.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import _hostile_cases as cases  # noqa: E402


def main() -> int:
    rows = []
    for name, builder in cases.MEMORY_CASES.items():
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d)
            args = builder(folder)
            t0 = time.perf_counter()
            code, err, rss = cases.run_capped(args, cap=4 * cases.GB, env={"CNNLAB_CACHE": str(folder / "cache")})
            wall = time.perf_counter() - t0
        line = next((x for x in err.splitlines() if x.startswith("error: ")), err.strip()[-200:])
        rows.append({"case": name, "exit": code, "peak_rss_mb": round(rss / 2**20, 1), "wall_s": round(wall, 2),
                     "traceback": "Traceback" in err, "message": line[:300]})
        print(f"{name:40s} exit {code}  peak RSS {rss / 2**20:7.1f} MiB  {wall:6.2f} s  {line[:110]}")
    out = ROOT / "bench" / "results" / "hostile_memory.json"
    out.write_text(json.dumps({"cap_bytes": 4 * cases.GB, "cases": rows}, indent=2) + "\n")
    ok = all(r["exit"] == 2 and not r["traceback"] and r["peak_rss_mb"] < 1024 for r in rows)
    print(f"all under 1 GB, exit 2, no traceback: {ok}  -> {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
