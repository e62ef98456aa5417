"""Inference speed: cnnlab ``evaluate`` / ``classify`` vs Keras ``model.predict``, one invocation, alternating rounds.

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/vs_keras_predict.py \
        [--nets keras-mnist lenet5] [--batch 256 1024] [--rounds 3] [--threads 2] [--quick] \
        [--keras-python /work/keras-venv/bin/python]

The Keras side runs in its own venv (default: env ``CNNLAB_KERAS_PYTHON``, else
``/work/keras-venv/bin/python``), made with::

    python3.11 -m venv V && V/bin/pip install "tensorflow-cpu==2.21.*" "keras==3.15.*"

as a long-lived subprocess (``bench/_keras_side.py``, JSON lines) that builds the same nets
(``bench/_keras_nets.py``, parameter counts asserted equal to cnnlab's) with the same thread count.
Both sides classify MNIST's 10,000 test images (5,000 with ``--quick``), already in memory, at the
same batch size; cnnlab's figures include its uint8 -> float normalisation, Keras gets float32
inputs already scaled. Weights are as initialised (speed does not depend on their values).

Per (net, batch), after a warm-up of every path, each round runs, in order: cnnlab ``evaluate``
(engine auto), ``classify`` (auto), ``evaluate`` (engine torch), ``classify`` (torch), then Keras
``predict``; each one pass over the images. Prints every round, the median ratio
``evaluate(auto) / predict`` and ``classify(auto) / predict``, the torch-vs-fast-engine ratio,
the engine auto chose and the load average; writes ``bench/results/vs_keras_predict.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _mnist_bench import KERAS_PYTHON, BenchRun  # noqa: E402  (bench/ is on sys.path)

from cnnlab.data import load_data
from cnnlab.inference.evaluation import evaluate
from cnnlab.inference.prediction import classify
from cnnlab.model import build

HERE = Path(__file__).resolve().parent
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)




class KerasSide:
    """``bench/_keras_side.py`` in the Keras venv, one JSON request per line."""

    def __init__(self, python: str, threads: int) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.proc = subprocess.Popen([python, str(HERE / "_keras_side.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.info = self._ask({"threads": threads})

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("{"):
                return dict(json.loads(line))
        raise RuntimeError(f"the Keras side exited (code {self.proc.wait()})")

    def predict(self, net: str, batch: int) -> tuple[float, int]:
        answer = self._ask({"net": net, "batch": batch, "reps": 1})
        return float(answer["img_s"][0]), int(answer["params"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _timed(fn: Any, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def _loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def bench_net(net: str, batches: list[int], rounds: int, n: int, keras: KerasSide) -> list[dict[str, Any]]:
    model = build(net).eval()
    run = BenchRun(model, [str(i) for i in range(10)], MNIST_MEAN, MNIST_STD, tuple(model.spec.input))
    test = load_data("mnist", run.input_shape, resize=run.resize).test
    test = dataclasses.replace(test, images=test.images[:n], labels=test.labels[:n], sources=list(test.sources[:n]))
    params = sum(p.numel() for p in model.parameters())
    out = []
    for batch in batches:
        paths = {
            "evaluate_auto": lambda b=batch: evaluate(run, test, batch_size=b, engine="auto"),
            "classify_auto": lambda b=batch: classify(run, test.images, batch_size=b, engine="auto"),
            "evaluate_torch": lambda b=batch: evaluate(run, test, batch_size=b, engine="torch"),
            "classify_torch": lambda b=batch: classify(run, test.images, batch_size=b, engine="torch"),
        }
        chosen = paths["evaluate_auto"]().engine  # warm-up (builds the session) and the engine chosen
        for fn in paths.values():
            fn()
        _, keras_params = keras.predict(net, batch)  # warm-up (Keras traces its predict function)
        assert keras_params == params, f"Keras {net} has {keras_params} parameters, cnnlab's {params}"
        rows = []
        for r in range(1, rounds + 1):
            row: dict[str, Any] = {"round": r, "load1": _loadavg()}
            for name, fn in paths.items():
                row[name] = _timed(fn, n)
            row["keras_predict"], _ = keras.predict(net, batch)
            rows.append(row)
            print(f"{net} b{batch} round {r}: " + ", ".join(
                f"{k} {v:,.0f}" for k, v in row.items() if k not in ("round", "load1")) + f" img/s (load {row['load1']:.2f})",
                flush=True)

        def med(key: str, base: str = "keras_predict", rows: list[dict[str, Any]] = rows) -> float:
            return statistics.median(row[key] / row[base] for row in rows)

        result = {"net": net, "params": params, "batch": batch, "images": n, "engine_auto": chosen, "rounds": rows,
                  "median_evaluate_vs_keras": med("evaluate_auto"), "median_classify_vs_keras": med("classify_auto"),
                  "median_evaluate_torch_vs_keras": med("evaluate_torch"),
                  "median_evaluate_auto_vs_torch": med("evaluate_auto", "evaluate_torch"),
                  "median_classify_auto_vs_torch": med("classify_auto", "classify_torch")}
        print(f"==> {net} b{batch}: engine auto = {chosen}; median evaluate/predict {result['median_evaluate_vs_keras']:.2f}x, "
              f"classify/predict {result['median_classify_vs_keras']:.2f}x, torch-engine evaluate/predict "
              f"{result['median_evaluate_torch_vs_keras']:.2f}x, evaluate auto/torch {result['median_evaluate_auto_vs_torch']:.2f}x",
              flush=True)
        out.append(result)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=["keras-mnist", "lenet5"])
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="5,000 images instead of 10,000")
    ap.add_argument("--keras-python", default=KERAS_PYTHON)
    ap.add_argument("--out", default=str(HERE / "results" / "vs_keras_predict.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = 5_000 if args.quick else 10_000
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"
    keras = KerasSide(args.keras_python, args.threads)
    try:
        results = [res for net in args.nets for res in bench_net(net, args.batch, args.rounds, n, keras)]
    finally:
        keras.close()
    record = {"command": " ".join(["bench/vs_keras_predict.py", *sys.argv[1:]]), "date": started,
              "loadavg_before": load_before, "loadavg_after": Path("/proc/loadavg").read_text().strip(),
              "threads": args.threads, "torch": torch.__version__, "keras": keras.info, "results": results}
    Path(args.out).write_text(json.dumps(record, indent=1))
    print("summary: " + "; ".join(f"{r['net']} b{r['batch']} evaluate {r['median_evaluate_vs_keras']:.2f}x / "
                                  f"classify {r['median_classify_vs_keras']:.2f}x Keras predict ({r['engine_auto']})"
                                  for r in results) + f" | load {record['loadavg_after']}")


if __name__ == "__main__":
    main()
