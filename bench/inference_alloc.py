"""Why eager PyTorch inference slows down at batch 1024: fresh activations page-faulted every batch.

    PYTHONPATH=src .venv/bin/python bench/inference_alloc.py [--threads 1]
    MALLOC_MMAP_THRESHOLD_=1073741824 PYTHONPATH=src .venv/bin/python bench/inference_alloc.py   # control

keras-mnist's first activation is (B, 32, 26, 26) float32: 21 MB at batch 256, 85 MB at 1024. glibc
serves allocations above its mmap threshold (dynamic, at most 32 MB) with a fresh ``mmap`` that is
unmapped on free, so every 85 MB output is page-faulted (zero-filled) anew on every call. This
script measures, per batch size, (1) one ReLU with a fresh output vs into a preallocated one
(``out=``), and (2) the whole eager forward of keras-mnist (engine torch) vs onnxruntime (engine
onnx), each as microseconds per image and minor page faults per call (``getrusage``). Timings
are best of 5; record ``/proc/loadavg`` with them.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _measure(fn: Any, n: int, reps: int = 5) -> tuple[float, int]:
    fn()
    start, best = _faults(), float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6, (_faults() - start) // reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from dataclasses import dataclass

    from cnnlab.inference.engine import engine_for
    from cnnlab.model import build

    @dataclass
    class Run:
        model: Any
        classes: list[str]
        mean: tuple[float, ...] = (0.1307,)
        std: tuple[float, ...] = (0.3081,)
        input_shape: tuple[int, int, int] = (1, 28, 28)
        resize: str = "crop"

    run = Run(build("keras-mnist").eval(), [str(i) for i in range(10)])
    engines = {e: engine_for(run, e) for e in ("torch", "onnx")}
    print(f"threads {args.threads}; loadavg {Path('/proc/loadavg').read_text().strip()}")
    with torch.inference_mode():
        for batch in (256, 1024):
            a = torch.randn(batch, 32, 26, 26)  # conv1's output
            buf = torch.empty_like(a)
            x = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 1, 28, 28), np.float32))
            rows = {
                "relu, fresh output": (lambda a=a: torch.relu(a)),
                "relu, out= preallocated": (lambda a=a, buf=buf: torch.clamp_min(a, 0, out=buf)),
                "keras-mnist forward, engine torch": (lambda x=x: engines["torch"](x)),
                "keras-mnist forward, engine onnx": (lambda x=x: engines["onnx"](x)),
            }
            for name, fn in rows.items():
                us, faults = _measure(fn, batch)
                print(f"batch {batch:5d} {name:36s} {us:8.1f} us/image {faults:7d} minor faults/call "
                      f"({batch * 32 * 26 * 26 * 4 / 2**20:.0f} MiB conv1 output)")
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
