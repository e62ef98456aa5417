"""Training under contention, cnnlab vs Keras ``fit``, in one invocation with alternating rounds (issue #15).

What happens to training speed when another process takes one core? Each round measures, first on
the machine as it is ("quiet"), then with a busy-loop process started by this script
(``python -c "while True: pass"``, one core's worth of work), three sides on the same data:

* ``cnnlab auto``: ``cnnlab.train.api.fit`` with ``threads=None`` (chosen by ``cnnlab.utils.cpus`` from
  affinity, cgroup quota and the other runnable tasks; the choice is read back from ``runtime.json``);
* ``cnnlab t2``: ``threads=2`` forced (torch's old default of one thread per core, for comparison);
* ``keras``: Keras ``model.fit`` in a long-lived subprocess of the Keras venv (``bench/_keras_side.py``,
  intra/inter-op threads = ``--keras-threads``, default: the cores of this process).

Net keras-mnist (built identically in Keras by ``bench/_keras_nets.py``, parameter count asserted), the
first ``--images`` MNIST training images, batch 128, no augmentation, ``--epochs`` epochs per run of which
the first is the warm-up and excluded (img/s = images of the other epochs over their epoch time). For
each side the round's ``loaded / quiet`` ratio is printed, and its per-core form
``(loaded img/s / free cores) / (quiet img/s / cores)``, free cores = cores - 1 (the busy loop).
Medians over rounds go in the SUMMARY lines (target: cnnlab auto keeps >= 80 % of its per-core speed).

The Keras venv (no cnnlab, no torch in it):

    python3.11 -m venv V && V/bin/pip install "tensorflow-cpu==2.21.*" "keras==3.15.*"

Run (quick: 6,400 images, 3 epochs, 3 rounds, about 2-3 minutes on an idle 2-core machine):

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/vs_keras_contention.py --quick
    ... --rounds 5 --images 25600 --keras-python /work/keras-venv/bin/python

The "quiet" phase is only as quiet as the machine: record the load (printed per run). Writes
``bench/results/vs_keras_contention[_quick].json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _mnist_bench import KERAS_PYTHON, loadavg, mnist_bundle, param_count  # noqa: E402
from vs_keras_fit import BATCH, KerasSide, _cpu_name, keras_arrays, steady_rate  # noqa: E402

from cnnlab.train import load_run  # noqa: E402
from cnnlab.train.api import fit  # noqa: E402
from cnnlab.utils.cpus import affinity  # noqa: E402

NET = "keras-mnist"
SIDES = ("cnnlab_auto", "cnnlab_t2", "keras")


def cnnlab_side(bundle: Any, folder: Path, epochs: int, threads: int | None) -> dict[str, Any]:
    """One fresh training run; its steady img/s and the thread count it used (and why)."""
    fitted = fit(NET, bundle, out=folder, epochs=epochs, batch_size=BATCH, augment=False, threads=threads, quiet=True)
    rows = load_run(fitted.run_dir.path).metrics
    n = len(bundle.train)
    runtime = json.loads((fitted.run_dir.path / "runtime.json").read_text())
    return {"img_s": steady_rate([n / float(r["images_per_s"]) for r in rows], n), "threads": runtime["threads"],
            "reason": runtime["reason"], "others": runtime.get("others")}


def keras_side(keras: KerasSide, data: Path, epochs: int, seed: int) -> dict[str, Any]:
    ans = keras.fit(net=NET, params=param_count(NET), data=str(data), epochs=epochs, batch=BATCH, seed=seed)
    return {"img_s": steady_rate(ans["epoch_seconds"], ans["images"]), "framework": ans["framework"]}


class BusyLoop:
    """A process that keeps one core busy until stopped (started by this script, stopped by its pid)."""

    def __enter__(self) -> BusyLoop:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # it runs before the next side looks at the machine
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def measure(condition: str, r: int, bundle: Any, keras: KerasSide, tmp: Path, epochs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"load_1min_start": loadavg()}
    out["cnnlab_auto"] = cnnlab_side(bundle, tmp / f"auto-{condition}-{r}", epochs, None)
    out["keras"] = keras_side(keras, tmp / "mnist.npz", epochs, r)
    out["cnnlab_t2"] = cnnlab_side(bundle, tmp / f"t2-{condition}-{r}", epochs, 2)
    out["load_1min_end"] = loadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=12800, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run, the first one excluded")
    ap.add_argument("--quick", action="store_true", help="6,400 images (50 steps), 3 epochs")
    ap.add_argument("--keras-threads", type=int, default=affinity())
    ap.add_argument("--keras-python", default=KERAS_PYTHON)
    args = ap.parse_args()
    if args.quick:
        args.images, args.epochs = 6400, 3
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first one is the warm-up)")
    cores = affinity()
    if cores < 2:
        raise SystemExit("needs at least 2 cores: one is taken by the busy loop")
    keras = KerasSide(args.keras_python, args.keras_threads)
    rounds: list[dict[str, Any]] = []
    framework = ""
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            bundle = mnist_bundle(NET, args.images)
            keras_arrays(bundle, tmp / "mnist.npz")
            for r in range(args.rounds):
                row: dict[str, Any] = {"round": r + 1, "quiet": measure("quiet", r, bundle, keras, tmp, args.epochs)}
                with BusyLoop():
                    row["loaded"] = measure("loaded", r, bundle, keras, tmp, args.epochs)
                framework = row["quiet"]["keras"].pop("framework")
                row["loaded"]["keras"].pop("framework")
                for side in SIDES:
                    ratio = row["loaded"][side]["img_s"] / row["quiet"][side]["img_s"]
                    row[f"{side}/loaded_over_quiet"] = ratio
                    row[f"{side}/per_core"] = ratio * cores / (cores - 1)
                rounds.append(row)
                _print_round(row)
    finally:
        keras.close()
    summary = _summary(rounds)
    result = {"date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), "keras": framework,
              "torch": torch.__version__, "cores": cores, "keras_threads": args.keras_threads, "net": NET,
              "batch": BATCH, "images": args.images, "epochs": args.epochs, "warmup_epochs": 1, "cpu": _cpu_name(),
              "rounds": rounds, "median": summary}
    out = Path(__file__).parent / "results" / f"vs_keras_contention{'_quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def _print_round(row: dict[str, Any]) -> None:
    for cond in ("quiet", "loaded"):
        m = row[cond]
        auto = m["cnnlab_auto"]
        print(f"round {row['round']} {cond:6} (load {m['load_1min_start']}->{m['load_1min_end']}) img/s: "
              f"cnnlab auto {auto['img_s']:,.0f} ({auto['threads']} thread(s), {auto['reason']}, others "
              f"{auto['others']}), cnnlab t2 {m['cnnlab_t2']['img_s']:,.0f}, Keras {m['keras']['img_s']:,.0f}",
              flush=True)
    print(f"round {row['round']} loaded/quiet (per core): " + ", ".join(
        f"{s} {row[f'{s}/loaded_over_quiet']:.2f} ({row[f'{s}/per_core']:.2f})" for s in SIDES), flush=True)


def _summary(rounds: list[dict[str, Any]]) -> dict[str, float]:
    med: dict[str, float] = {}
    for side in SIDES:
        for key in ("loaded_over_quiet", "per_core"):
            med[f"{side}/{key}"] = statistics.median(r[f"{side}/{key}"] for r in rounds)
        for cond in ("quiet", "loaded"):
            med[f"{side}/{cond}_img_s"] = statistics.median(r[cond][side]["img_s"] for r in rounds)
        values = ", ".join(f"{r[f'{side}/loaded_over_quiet']:.2f}" for r in rounds)
        print(f"SUMMARY {side}: loaded/quiet median {med[f'{side}/loaded_over_quiet']:.2f} (rounds: {values}); "
              f"per-core {med[f'{side}/per_core']:.2f}; median img/s quiet {med[f'{side}/quiet_img_s']:,.0f}, "
              f"loaded {med[f'{side}/loaded_img_s']:,.0f}")
    med["auto_over_keras_loaded"] = med["cnnlab_auto/loaded_img_s"] / med["keras/loaded_img_s"]
    print(f"SUMMARY under contention cnnlab auto / Keras: {med['auto_over_keras_loaded']:.2f}x (median img/s)")
    return med


if __name__ == "__main__":
    main()
