"""Where the time of ``cnnlab.evaluate`` / ``classify`` goes, on preloaded MNIST test images (CPU).

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/profile_inference.py \
        RUN [RUN ...] [--batch 256 1024] [--engine torch] [--out bench/results/profile_inference_before.txt]

For each run folder (e.g. made by ``cnnlab train keras-mnist --data mnist --epochs 1``) and batch size:
images/s of ``evaluate`` and ``classify`` (median of 3 after a warm-up), the bare forward on
pre-normalised tensors (the floor), a ``torch.profiler`` operator table (self CPU time, top 12)
and a cProfile table of the Python side (top 15 by cumulative time). Everything is printed and
written to ``--out``. Records ``/proc/loadavg`` (timings taken while others run are loaded).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cnnlab.data import load_data
from cnnlab.inference.evaluation import evaluate
from cnnlab.inference.prediction import classify
from cnnlab.train import load_run


def _rate(fn: Any, n: int, repeat: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


class _Tee(io.StringIO):
    def write(self, s: str) -> int:
        sys.stdout.write(s)
        sys.stdout.flush()
        return super().write(s)


def profile_run(path: str, batches: list[int], engine: str, limit: int, out: io.StringIO) -> None:
    import dataclasses

    run = load_run(Path(path), device="cpu")
    bundle = load_data("mnist", tuple(run.input_shape), resize=run.resize)
    images = bundle.test
    images = dataclasses.replace(images, images=images.images[:limit], labels=images.labels[:limit],
                                 sources=list(images.sources[:limit]))
    n = len(images.labels)
    print(f"\n=== {run.model.spec.name} ({path}), {n} MNIST test images, engine={engine}, "
          f"threads={torch.get_num_threads()}, loadavg {_loadavg()}", file=out)
    x_all = run.preprocess(images.images)  # (N, C, H, W) float32, pre-normalised
    model = run.model.eval()
    kw = {} if engine == "default" else {"engine": engine}  # "default": the code before engines existed
    for batch in batches:
        def bare(batch: int = batch) -> None:
            with torch.inference_mode():
                for s in range(0, n, batch):
                    model(x_all[s:s + batch])

        ev = _rate(lambda: evaluate(run, images, batch_size=batch, **kw), n)  # noqa: B023
        cl = _rate(lambda: classify(run, images.images, batch_size=batch, **kw), n)  # noqa: B023
        fl = _rate(bare, n)
        print(f"batch {batch}: evaluate {ev:,.0f} img/s | classify {cl:,.0f} img/s | bare torch forward "
              f"{fl:,.0f} img/s | loadavg {_loadavg()}", file=out)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            evaluate(run, images, batch_size=batch, **kw)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40)
        print(f"--- torch.profiler, evaluate, batch {batch} (self CPU time)\n{table}", file=out)
        pr = cProfile.Profile()
        pr.enable()
        evaluate(run, images, batch_size=batch, **kw)
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(15)
        print(f"--- cProfile, evaluate, batch {batch} (cumulative)\n{s.getvalue()}", file=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--engine", default="auto", help="torch, onnx, auto, or default (pass no engine)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n", type=int, default=10_000, help="first N test images")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = _Tee()
    print(f"# {' '.join(sys.argv)}\n# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch "
          f"{torch.__version__}, {os.cpu_count()} CPUs", file=out)
    for path in args.runs:
        profile_run(path, args.batch, args.engine, args.n, out)
    text = out.getvalue()
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
