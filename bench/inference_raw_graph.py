"""The onnx engine's raw graph (uint8 in; normalisation and log-softmax inside onnxruntime) against
the logits graph fed by PyTorch's per-batch normalisation and ``log_softmax`` (the path before it),
in one process, alternating rounds, wall and CPU time. Preloaded MNIST test images, untrained nets.

    CNNLAB_DATA=/work/shared/data PYTHONPATH=src .venv/bin/python bench/inference_raw_graph.py \
        [--nets keras-mnist lenet5] [--batch 256 1024] [--rounds 5] [--threads 2] [--n 5000]

Per (net, batch) each round runs, in order: ``raw`` (the evaluate loop as it is now: ``Forward.raw_batch``),
``logits`` (the same loop with the raw graph switched off: ``preprocess_batch`` + the logits session +
``torch.log_softmax``, as before round 3 of #15), ``session`` (the raw sessions alone through
``Forward.raw_batches``: several batches at once, one thread each), ``sequential`` (the raw graph's
all-threads session, one batch after another: what round 3 did before running batches in parallel). Prints img/s and process CPU seconds per pass (median), checks
the two paths agree within 1e-5, records ``/proc/loadavg``; writes ``bench/results/inference_raw_graph.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _mnist_bench import BenchRun, loadavg  # noqa: E402  (bench/ is on sys.path)

from cnnlab.data import load_data
from cnnlab.inference.engine import RAW_INPUT, Output, _session, engine_for
from cnnlab.inference.evaluation import _log_probabilities
from cnnlab.model import build

HERE = Path(__file__).resolve().parent


def bench_net(net: str, batches: list[int], rounds: int, n: int) -> list[dict[str, Any]]:
    model = build(net).eval()
    run = BenchRun(model, [str(i) for i in range(10)], (0.1307,), (0.3081,), tuple(model.spec.input))
    images = np.ascontiguousarray(load_data("mnist", run.input_shape, resize=run.resize).test.images[:n])
    raw = engine_for(run, "onnx")
    assert raw.raw is not None, "the raw graph is not in use"
    old = dataclasses.replace(raw, raw=None)  # the same engine without the raw graph
    whole = _session(run, raw=True, threads=torch.get_num_threads())  # the raw graph on all threads
    out = []
    for batch in batches:
        def session_only(b: int = batch) -> None:
            raw.raw_batches(images, b, Output.LOG_PROBS)

        def sequential(b: int = batch) -> None:
            for s in range(0, n, b):
                whole.run([Output.LOG_PROBS.value], {RAW_INPUT: images[s:s + b]})

        paths = {"raw": lambda b=batch: _log_probabilities(run, raw, images, b, 10),
                 "logits": lambda b=batch: _log_probabilities(run, old, images, b, 10),
                 "session": session_only, "sequential": sequential}
        with torch.inference_mode():
            diff = float(np.abs(paths["raw"]() - paths["logits"]()).max())  # also the warm-up
            assert diff <= 1e-5, diff
            paths["session"]()
            paths["sequential"]()
            rows = []
            for r in range(1, rounds + 1):
                row: dict[str, Any] = {"round": r, "load1": float(loadavg())}
                for name, fn in paths.items():
                    wall, cpu = time.perf_counter(), time.process_time()
                    fn()
                    row[name] = {"img_s": n / (time.perf_counter() - wall), "cpu_s": time.process_time() - cpu}
                rows.append(row)
                print(f"{net} b{batch} round {r}: " + ", ".join(
                    f"{k} {row[k]['img_s']:,.0f} img/s {row[k]['cpu_s']:.3f} CPU s" for k in paths)
                    + f" (load {row['load1']:.2f})", flush=True)
        med = {k: {m: statistics.median(row[k][m] for row in rows) for m in ("img_s", "cpu_s")} for k in paths}
        print(f"==> {net} b{batch}: raw {med['raw']['img_s']:,.0f} img/s / {med['raw']['cpu_s']:.3f} CPU s, "
              f"logits {med['logits']['img_s']:,.0f} / {med['logits']['cpu_s']:.3f}, session {med['session']['img_s']:,.0f}"
              f" / {med['session']['cpu_s']:.3f}, sequential {med['sequential']['img_s']:,.0f} / {med['sequential']['cpu_s']:.3f}; raw/logits {med['raw']['img_s'] / med['logits']['img_s']:.2f}x "
              f"(max |diff| {diff:.2g})", flush=True)
        out.append({"net": net, "batch": batch, "images": n, "max_abs_diff": diff, "rounds": rows, "median": med})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", default=["keras-mnist", "lenet5"])
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--out", default=str(HERE / "results" / "inference_raw_graph.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = [res for net in args.nets for res in bench_net(net, args.batch, args.rounds, args.n)]
    record = {"command": " ".join(["bench/inference_raw_graph.py", *sys.argv[1:]]), "date": started,
              "threads": args.threads, "torch": torch.__version__, "loadavg_after": Path("/proc/loadavg").read_text().strip(),
              "results": results}
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
