"""This CPU's matmul peak (fp32 and bf16) and keras-mnist training as a fraction of it (issue #15).

Peak: large square ``torch.mm`` (sizes ``--sizes``) with ``--threads`` intra-op threads (default 2),
``2 n^3`` FLOPs per product; the best of ``--repeats`` timings per size is the size's rate, the best
size is the peak (the median is printed too: on a shared machine the best is the least disturbed).
Training: cnnlab's keras-mnist steady-state img/s (``fit``, in this process, the first epoch excluded,
like ``bench/vs_keras_fit.py``), times the training FLOPs per image from cnnlab's analysis:
``total_macs × 2 (multiply-add) × 3 (forward + the two backward products)``. That convention
counts the first convolution's input gradient, which training never computes (the images need no
gradient): 0.4 % of keras-mnist's MACs, so the fraction is that much high.

On a CPU without native bf16 arithmetic (AVX2 only: no AVX512-BF16, no AMX) PyTorch has no fast bf16
matrix product: ``torch.mm`` on bf16 falls back to a generic kernel (measured on the 2-core AMD EPYC
dev VM: about 0.6 GFLOP/s, against about 50 for fp32, both under load). So the bf16 "peak" is far below
the fp32 one, training's bf16 FLOP rate exceeds it (convolutions under bf16 autocast go to oneDNN,
which converts to fp32 and multiplies in fp32), and bf16 can at best save memory traffic: it cannot
multiply faster than fp32 on this CPU.

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/peak.py
    ... --sizes 512,1024,2048 --repeats 5 --images 12800

Writes ``bench/results/peak.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _mnist_bench import loadavg, mnist_bundle, train_flops_per_image  # noqa: E402
from vs_keras_fit import cnnlab_run  # noqa: E402

NET = "keras-mnist"


def matmul_rates(n: int, dtype: torch.dtype, repeats: int) -> list[float]:
    """GFLOP/s of ``repeats`` products of two n×n ``dtype`` matrices (one untimed warm-up first)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="512,1024,2048", help="fp32 matrix sizes")
    ap.add_argument("--bf16-sizes", default="256,512",
                    help="bf16 matrix sizes (small: without native bf16 the product is ~50x slower)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=12800, help="training images per epoch for the img/s figure")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs, the first one excluded")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loads = [loadavg()]
    peaks: dict[str, dict[str, object]] = {}
    for name, dtype, sizes in (("fp32", torch.float32, args.sizes), ("bf16", torch.bfloat16, args.bf16_sizes)):
        per_size = {}
        for n in (int(s) for s in sizes.split(",")):
            rates = matmul_rates(n, dtype, args.repeats)
            per_size[str(n)] = {"best": max(rates), "median": statistics.median(rates)}
            print(f"{name} mm {n}x{n}: best {max(rates):,.1f} GFLOP/s, median {statistics.median(rates):,.1f}",
                  flush=True)
        best = max(v["best"] for v in per_size.values())
        peaks[name] = {"peak_gflops": best, "sizes": per_size}
    loads.append(loadavg())
    bundle = mnist_bundle(NET, args.images)
    flops = train_flops_per_image(NET)
    training: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            ips = cnnlab_run(NET, bundle, Path(tmp) / precision, precision, args.epochs, args.threads)
            rate = ips * flops / 1e9
            training[precision] = {"img_s": ips, "gflops": rate,
                                   "fraction_of_fp32_peak": rate / float(peaks["fp32"]["peak_gflops"]),  # type: ignore[arg-type]
                                   "fraction_of_bf16_peak": rate / float(peaks["bf16"]["peak_gflops"])}  # type: ignore[arg-type]
            print(f"SUMMARY keras-mnist training {precision}: {ips:,.0f} img/s x {flops / 1e6:.2f} MFLOP/image = "
                  f"{rate:,.1f} GFLOP/s = {100 * training[precision]['fraction_of_fp32_peak']:.0f} % of the fp32 peak "
                  f"({float(peaks['fp32']['peak_gflops']):,.0f} GFLOP/s), "  # type: ignore[arg-type]
                  f"{100 * training[precision]['fraction_of_bf16_peak']:.0f} % of the bf16 peak "
                  f"({float(peaks['bf16']['peak_gflops']):,.1f} GFLOP/s)", flush=True)  # type: ignore[arg-type]
    loads.append(loadavg())
    result = {"date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "threads": args.threads, "load_1min": loads, "peaks": peaks, "net": NET,
              "train_flops_per_image": flops, "training": training}
    out = Path(__file__).parent / "results" / "peak.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} (load average {' -> '.join(loads)})")


if __name__ == "__main__":
    main()
