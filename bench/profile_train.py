"""CPU profile of cnnlab's training step (``torch.profiler``): where the time of one step goes.

Runs ``cnnlab.train.api.fit`` on the first ``--images`` MNIST training images (no augmentation, no
validation) once to warm up, once timed without the profiler (steady-state img/s of that epoch), and
once under ``torch.profiler``; prints the operators by self CPU time and writes the table to
``bench/results/profile_train_<tag>.txt``.

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/profile_train.py \\
        --net keras-mnist --precision fp32 --tag before_fp32
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _mnist_bench import loadavg, mnist_bundle  # noqa: E402

from cnnlab.train.api import fit  # noqa: E402


def run_fit(net: str, bundle: object, folder: Path, precision: str, threads: int, epochs: int = 1) -> float:
    """Train ``epochs`` epochs; returns the last epoch's images/s (loop time only)."""
    fitted = fit(net, bundle, out=folder, epochs=epochs, batch_size=128, augment=False, threads=threads,
                 precision=precision, quiet=True)
    from cnnlab.train import load_run

    return float(load_run(fitted.run_dir.path).metrics[-1]["images_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="keras-mnist")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--images", type=int, default=6400, help="training images per epoch (batch 128)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default=None, help="output file suffix (default NET_PRECISION)")
    ap.add_argument("--rows", type=int, default=25)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bundle = mnist_bundle(args.net, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        run_fit(args.net, bundle, Path(tmp) / "warm", args.precision, args.threads)
        ips = run_fit(args.net, bundle, Path(tmp) / "timed", args.precision, args.threads)
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run_fit(args.net, bundle, Path(tmp) / "prof", args.precision, args.threads)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    steps = args.images // 128
    head = (f"# profile of cnnlab fit: {args.net}, {args.precision}, batch 128, {args.images} images "
            f"({steps} steps), {args.threads} threads, torch {torch.__version__}\n"
            f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average (1 min) {loadavg()}; "
            f"unprofiled epoch: {ips:,.0f} img/s\n"
            f"# self CPU time of the whole fit() call (setup and checkpoint writes included): "
            f"{total / 1e3:,.1f} ms, {total / 1e3 / steps:.2f} ms per step\n")
    lines = [f"{'self %':>7} {'self ms/step':>12} {'calls/step':>10}  op"]
    for e in rows[: args.rows]:
        lines.append(f"{100 * e.self_cpu_time_total / total:7.1f} {e.self_cpu_time_total / 1e3 / steps:12.3f} "
                     f"{e.count / steps:10.1f}  {e.key}")
    text = head + "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / f"profile_train_{args.tag or args.net + '_' + args.precision}.txt"
    out.write_text(text)


if __name__ == "__main__":
    main()
