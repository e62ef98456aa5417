"""Benchmark: one epoch of cached MNIST (60,000 images) delivered as shuffled batches of 128.

The training images are held as uint8 in RAM; each batch is gathered by index, moved to the
device and normalised there (``cnnlab.data.BatchLoader``). Measured with and without
augmentation (translate 2 px + horizontal flip), best of ``--rounds`` epochs each.

    CNNLAB_DATA=../shared/data nice .venv/bin/python bench/data_epoch.py [--rounds 5]

Writes bench/results/data_epoch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from cnnlab.data import Augment, BatchLoader, load_data


def epoch_time(loader: BatchLoader, epoch: int) -> tuple[float, int]:
    loader.set_epoch(epoch)
    n = 0
    t = time.perf_counter()
    for _x, y in loader:
        n += y.shape[0]
    return time.perf_counter() - t, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="mnist")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    bundle = load_data(args.source, (1, 28, 28), val_split=0.0, progress=False, download=False)
    result: dict[str, object] = {"source": args.source, "images": len(bundle.train), "batch_size": args.batch_size,
                                 "torch_threads": torch.get_num_threads(), "loadavg": os.getloadavg()}
    for name, aug in (("plain", None), ("augmented", Augment(translate=2, hflip=True))):
        loader = BatchLoader(bundle.train, args.batch_size, shuffle=True, seed=0, mean=bundle.mean,
                             std=bundle.std, augment=aug)
        times = []
        for e in range(args.rounds):
            dt, n = epoch_time(loader, e)
            times.append(dt)
        best = min(times)
        result[name] = {"best_s": best, "images_per_s": n / best, "all_s": times}
        print(f"{name:>9}: {n:,} images in {best:.3f} s = {n / best:,.0f} images/s (best of {args.rounds})")
    out = Path(__file__).parent / "results" / "data_epoch.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
