"""Benchmark: CPU seconds the explore server spends per answer (what a busy machine cannot hide).

    .venv/bin/python bench/explore_cpu.py [--images 12]

In-process, no browser: for keras-mnist (the bundled sample) and resnet18 (224×224, photos of
``/work/shared/data/cats_vs_dogs/validation``), the server's work for a new image (forward pass of every
layer plus the encoded first page of maps: ``Explorer.image`` with an empty cache), a layer
(``Explorer.layer``) and a neuron (``Explorer.neuron``), timed in wall and process CPU seconds with
torch on 1 thread. On a loaded machine wall time measures the other processes; CPU time is the work.
Writes ``bench/results/explore_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000


def measure(name: str, ex, n: int) -> dict:
    ids = ex.image_ids()[:n]
    rng = np.random.default_rng(0)
    spatial = [i for i, r in enumerate(ex.analysis.layers) if len(r.output_shape) == 3]
    rows: dict[str, list[tuple[float, float]]] = {"image": [], "layer": [], "neuron": []}
    ex.image(ids[0])  # warm-up
    for k, key in enumerate(ids[1:]):
        ex._cache.clear()
        rows["image"].append(timed(lambda key=key: ex.image(key)))
        rows["layer"].append(timed(lambda k=k: ex.layer(k % len(ex.layers))))
        layer = spatial[k % len(spatial)]
        c, h, w = ex.analysis.layers[layer].output_shape
        rows["neuron"].append(timed(lambda key=key, layer=layer, c=c, h=h, w=w: ex.neuron(
            key, layer, int(rng.integers(c)), int(rng.integers(h)), int(rng.integers(w)))))
    out = {}
    for what, vals in rows.items():
        wall, cpu = np.array(vals).T
        out[what] = {"wall_p50_ms": round(float(np.median(wall)), 1), "cpu_p50_ms": round(float(np.median(cpu)), 1),
                     "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 1), "n": len(vals)}
        print(f"{name:12s} {what:7s} wall p50 {out[what]['wall_p50_ms']:7.1f} ms   CPU p50 "
              f"{out[what]['cpu_p50_ms']:7.1f} ms  p95 {out[what]['cpu_p95_ms']:7.1f} ms")
    return out


def main() -> None:
    import torch

    from cnnlab.explore import open_explorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import explore_latency  # the same photos as the browser benchmark (bench/ is on sys.path when run from it)

    result = {"loadavg_at_start": os.getloadavg(), "torch_threads": 1}
    result["keras-mnist"] = measure("keras-mnist", open_explorer("keras-mnist", data="sample"), args.images)
    rn = open_explorer("resnet18", data=explore_latency.cats_images(args.images))
    result["resnet18"] = measure("resnet18", rn, args.images)
    result["loadavg_at_end"] = os.getloadavg()
    print("load average", result["loadavg_at_start"], "->", result["loadavg_at_end"])
    (ROOT / "results" / "explore_cpu.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
