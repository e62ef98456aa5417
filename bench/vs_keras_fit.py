"""Training speed, cnnlab vs Keras ``fit``, side by side in one invocation with alternating rounds (issue #15).

Nets keras-mnist and lenet5 (built identically in Keras by ``bench/_keras_nets.py``: same layers, the
parameter count asserted against cnnlab's analysis), MNIST training images in memory, batch 128,
no augmentation, no validation, the same thread count on both sides (``--threads``, default 2: torch
intra-op threads; TensorFlow intra- and inter-op threads). Both sides see the same float32 pixels:
the first ``--images`` MNIST training images as ``cnnlab.data.load_data`` shapes them (lenet5's
32×32 is its resize), normalised with cnnlab's ``normalise``, handed to Keras as NHWC arrays.

Each round, per net: cnnlab fp32 (``cnnlab.train.api.fit``, in this process), Keras fp32 (``model.fit``,
in a long-lived subprocess of the Keras venv, ``bench/_keras_fit_side.py``), cnnlab bf16
(``--precision bf16``). Every run trains a fresh model for ``--epochs`` epochs; the first epoch is the
warm-up on both sides (graph tracing, oneDNN primitive creation) and is excluded; the figure is the
images of the other epochs over their summed epoch time (cnnlab: its loop time, the per-epoch
checkpoint excluded; Keras: ``on_epoch_begin`` to ``on_epoch_end``). Ratios are taken within a round
(cnnlab / Keras fp32) and the median over rounds is printed.

The Keras venv (no cnnlab, no torch in it):

    python3.11 -m venv V && V/bin/pip install "tensorflow-cpu==2.21.*" "keras==3.15.*"

Run (quick: 12,800 images, 3 epochs, about 2-3 minutes on an idle 2-core machine):

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/vs_keras_fit.py --quick
    ... --rounds 5 --images 60000 --keras-python /work/keras-venv/bin/python

Writes ``bench/results/vs_keras_fit[_quick].json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _mnist_bench import KERAS_PYTHON, loadavg, mnist_bundle, param_count  # noqa: E402

from cnnlab.data.normalise import normalise  # noqa: E402
from cnnlab.train import load_run  # noqa: E402
from cnnlab.train.api import fit  # noqa: E402

BATCH = 128


def steady_rate(epoch_seconds: list[float], images: int, warmup: int = 1) -> float:
    """Images/s over the epochs after the first ``warmup`` ones."""
    timed = epoch_seconds[warmup:]
    return images * len(timed) / sum(timed)


def cnnlab_run(net: str, bundle: Any, folder: Path, precision: str, epochs: int, threads: int) -> float:
    fitted = fit(net, bundle, out=folder, epochs=epochs, batch_size=BATCH, augment=False, threads=threads,
                 precision=precision, quiet=True)
    rows = load_run(fitted.run_dir.path).metrics
    n = len(bundle.train)
    return steady_rate([n / float(r["images_per_s"]) for r in rows], n)


class KerasSide:
    """``bench/_keras_fit_side.py`` in the Keras venv, kept alive for the whole invocation."""

    def __init__(self, python: str, threads: int) -> None:
        env = {**os.environ, "PYTHONPATH": ""}
        self.proc = subprocess.Popen([python, str(Path(__file__).parent / "_keras_fit_side.py"), "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def fit(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the Keras side exited (code {self.proc.wait()}); see its messages above")
        return dict(json.loads(line))

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def keras_arrays(bundle: Any, path: Path) -> None:
    """The bundle's training pixels, normalised by cnnlab, as NHWC float32 for Keras."""
    x = normalise(bundle.train.images, bundle.mean, bundle.std)  # (N, C, H, W) float32
    np.savez(path, x=x.permute(0, 2, 3, 1).contiguous().numpy(), y=bundle.train.labels.astype(np.int64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="keras-mnist,lenet5")
    ap.add_argument("--precisions", default="fp32,bf16", help="cnnlab precisions (Keras runs fp32)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=30000, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run, the first one excluded")
    ap.add_argument("--quick", action="store_true", help="12,800 images (100 steps), 3 epochs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keras-python", default=KERAS_PYTHON)
    args = ap.parse_args()
    if args.quick:
        args.images, args.epochs = 12800, 3
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first one is the warm-up)")
    torch.set_num_threads(args.threads)
    nets = args.nets.split(",")
    precisions = args.precisions.split(",")
    keras = KerasSide(args.keras_python, args.threads)
    rounds: list[dict[str, Any]] = []
    framework = ""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bundles = {net: mnist_bundle(net, args.images) for net in nets}
            for net in nets:
                keras_arrays(bundles[net], Path(tmp) / f"{net}.npz")
            for r in range(args.rounds):
                row: dict[str, Any] = {"round": r + 1, "load_1min_start": loadavg()}
                for net in nets:
                    for i, precision in enumerate(precisions):
                        if i == 1:  # Keras between cnnlab's first and second precision
                            row[f"{net}/keras"] = _keras(keras, net, tmp, args, r)
                        row[f"{net}/cnnlab_{precision}"] = cnnlab_run(
                            net, bundles[net], Path(tmp) / f"{net}-{precision}-{r}", precision, args.epochs, args.threads)
                    if len(precisions) == 1:
                        row[f"{net}/keras"] = _keras(keras, net, tmp, args, r)
                    framework = row[f"{net}/keras"].pop("framework")
                    for precision in precisions:
                        row[f"{net}/ratio_{precision}"] = row[f"{net}/cnnlab_{precision}"] / row[f"{net}/keras"]["img_s"]
                row["load_1min_end"] = loadavg()
                rounds.append(row)
                _print_round(row, nets, precisions)
    finally:
        keras.close()
    summary = _summary(rounds, nets, precisions)
    result = {"date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "keras": framework,
              "torch": torch.__version__, "threads": args.threads, "batch": BATCH, "images": args.images,
              "epochs": args.epochs, "warmup_epochs": 1, "cpu": _cpu_name(), "rounds": rounds, "median": summary}
    out = Path(__file__).parent / "results" / f"vs_keras_fit{'_quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def _keras(keras: KerasSide, net: str, tmp: str, args: argparse.Namespace, r: int) -> dict[str, Any]:
    ans = keras.fit(net=net, params=param_count(net), data=str(Path(tmp) / f"{net}.npz"), epochs=args.epochs,
                    batch=BATCH, seed=r)
    return {"img_s": steady_rate(ans["epoch_seconds"], ans["images"]), "epoch_seconds": ans["epoch_seconds"],
            "framework": ans["framework"]}


def _print_round(row: dict[str, Any], nets: list[str], precisions: list[str]) -> None:
    parts = []
    for net in nets:
        ours = ", ".join(f"cnnlab {p} {row[f'{net}/cnnlab_{p}']:,.0f} ({row[f'{net}/ratio_{p}']:.2f}x)" for p in precisions)
        parts.append(f"{net}: Keras {row[f'{net}/keras']['img_s']:,.0f}, {ours}")
    print(f"round {row['round']} (load {row['load_1min_start']}->{row['load_1min_end']}) img/s: " + "; ".join(parts),
          flush=True)


def _summary(rounds: list[dict[str, Any]], nets: list[str], precisions: list[str]) -> dict[str, float]:
    med: dict[str, float] = {}
    for net in nets:
        med[f"{net}/keras"] = statistics.median(r[f"{net}/keras"]["img_s"] for r in rounds)
        for p in precisions:
            med[f"{net}/cnnlab_{p}"] = statistics.median(r[f"{net}/cnnlab_{p}"] for r in rounds)
            med[f"{net}/ratio_{p}"] = statistics.median(r[f"{net}/ratio_{p}"] for r in rounds)
            ratios = ", ".join(f"{r[f'{net}/ratio_{p}']:.2f}" for r in rounds)
            print(f"SUMMARY {net} cnnlab {p} vs Keras fp32 fit: median ratio {med[f'{net}/ratio_{p}']:.2f}x "
                  f"(rounds: {ratios}); median img/s cnnlab {med[f'{net}/cnnlab_{p}']:,.0f}, "
                  f"Keras {med[f'{net}/keras']:,.0f}")
    return med


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    main()
