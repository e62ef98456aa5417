"""Benchmark: the cost of each augmentation per 128-image MNIST batch (#14, ``--rotate``/``--scale``).

Two views: (1) ``Augment`` alone (draw + numpy apply, the CPU path) on one batch, best and median of
many calls; (2) a pass over MNIST's 60,000 training images through ``BatchLoader`` (gather, augment,
normalise), best of ``--rounds`` passes, as the trainer sees it. The difference to ``translate 2``
alone is what rotation adds.

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/augment_speed.py [--rounds 3]

Writes bench/results/augment_speed.json. Record the load average (in the file) with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from cnnlab.data import Augment, BatchLoader, load_data

CASES = {
    "translate 2": Augment(translate=2),
    "translate 2 + rotate 10": Augment(translate=2, rotate=10),
    "translate 2 + zoom 0.2": Augment(translate=2, zoom=0.2),
    "translate 2 + zoom 0.2 + rotate 10 + scale 0.1": Augment(translate=2, zoom=0.2, rotate=10, scale=0.1),
}


def alone(aug: Augment, x: np.ndarray, calls: int) -> tuple[float, float]:
    """Best and median milliseconds of draw + apply_numpy on batch ``x``."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        aug.apply_numpy(x, aug.draw(len(x), rng, x.shape[2:]))
        times.append(time.perf_counter() - t)
    return min(times) * 1e3, statistics.median(times) * 1e3


def epoch_ms_per_batch(loader: BatchLoader, rounds: int) -> tuple[float, float]:
    """Best wall and best CPU (process) milliseconds per batch over ``rounds`` passes; on a shared
    machine the CPU time is the steadier figure (it leaves out the time other processes run)."""
    wall = cpu = float("inf")
    for e in range(rounds):
        loader.set_epoch(e)
        t, c, n = time.perf_counter(), time.process_time(), 0
        for _x, _y in loader:
            n += 1
        wall = min(wall, (time.perf_counter() - t) / n)
        cpu = min(cpu, (time.process_time() - c) / n)
    return wall * 1e3, cpu * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    bundle = load_data("mnist", (1, 28, 28), val_split=0.0, progress=False, download=False)
    x = bundle.train.images[:args.batch_size]  # (B, 1, 28, 28) uint8
    result: dict[str, object] = {"batch_size": args.batch_size, "loadavg_before": os.getloadavg(), "cases": {}}
    plain = BatchLoader(bundle.train, args.batch_size, shuffle=True, seed=0, mean=bundle.mean, std=bundle.std)
    base, base_cpu = epoch_ms_per_batch(plain, args.rounds)
    print(f"{'no augmentation':>48}: loader {base:.3f} ms/batch wall, {base_cpu:.3f} CPU")
    for name, aug in CASES.items():
        best, median = alone(aug, x, args.calls)
        loader = BatchLoader(bundle.train, args.batch_size, shuffle=True, seed=0, mean=bundle.mean,
                             std=bundle.std, augment=aug)
        per_batch, cpu = epoch_ms_per_batch(loader, args.rounds)
        result["cases"][name] = {"alone_best_ms": best, "alone_median_ms": median,  # type: ignore[index]
                                 "loader_ms_per_batch": per_batch, "loader_added_ms": per_batch - base,
                                 "loader_cpu_ms_per_batch": cpu, "loader_added_cpu_ms": cpu - base_cpu}
        print(f"{name:>48}: alone {best:.3f} ms best / {median:.3f} ms median; loader {per_batch:.3f} ms/batch "
              f"wall (+{per_batch - base:.3f}), {cpu:.3f} CPU (+{cpu - base_cpu:.3f})")
    result["loader_plain_ms_per_batch"] = base
    result["loader_plain_cpu_ms_per_batch"] = base_cpu
    result["loadavg_after"] = os.getloadavg()
    print("load average before/after:", result["loadavg_before"], result["loadavg_after"])
    out = Path(__file__).parent / "results" / "augment_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
