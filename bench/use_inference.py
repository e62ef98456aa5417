"""Inference speed of the using commands, same-run comparisons (CPU).

    nice .venv/bin/python bench/use_inference.py [--spec keras-mnist] [--n 10000] [--threads 2]

Measures, on MNIST-shaped data (the bundled sample: 10,000 digits) with the given bundled spec
(weights as initialised: speed does not depend on their values):
  1. ``evaluate()`` images/s (batched, inference_mode, per-sample losses and metrics included)
     vs a bare ``model(x)`` loop over the same pre-normalised tensors (the floor);
  2. ``predict()`` images/s from PNG files on disk (decode + resize + normalise + forward);
  3. onnxruntime vs PyTorch on the exported graph, batch 256, same inputs.
Prints the figures and writes ``bench/results/use_inference.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _mnist_bench import BenchRun  # noqa: E402  (bench/ is on sys.path)
from PIL import Image

from cnnlab.data import load_data
from cnnlab.inference.evaluation import evaluate
from cnnlab.inference.export_onnx import export
from cnnlab.inference.prediction import predict
from cnnlab.model import build
from cnnlab.spec import load_spec


def _best_of(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="keras-mnist")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec)
    shape = tuple(int(d) for d in spec.input)
    bundle = load_data("sample", shape, val_split=0.0, progress=False)
    data = bundle.train.subset(np.arange(min(args.n, len(bundle.train))))
    torch.manual_seed(0)
    run = BenchRun(build(spec).eval(), list(bundle.classes), bundle.mean, bundle.std, shape)  # type: ignore[arg-type]
    n = len(data)
    out: dict[str, Any] = {"spec": args.spec, "images": n, "threads": args.threads, "torch": torch.__version__}

    t_eval = _best_of(lambda: evaluate(run, data, batch_size=256))
    x = ((torch.from_numpy(np.asarray(data.images)).float() / 255 - bundle.mean[0]) / bundle.std[0])

    def bare() -> None:
        with torch.inference_mode():
            for i in range(0, n, 256):
                run.model(x[i:i + 256])

    t_bare = _best_of(bare)
    out["evaluate_images_per_s"] = n / t_eval
    out["bare_forward_images_per_s"] = n / t_bare
    out["evaluate_vs_bare"] = t_bare / t_eval

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(min(args.files, n)):
            p = Path(tmp) / f"{i}.png"
            Image.fromarray(np.asarray(data.images[i])[0]).save(p)
            files.append(str(p))
        t_pred = _best_of(lambda: predict(run, files, top_k=3, batch_size=64), repeat=2)
        t_pred1 = _best_of(lambda: predict(run, files, top_k=3, batch_size=64, workers=1), repeat=2)
        out["predict_files_per_s"] = len(files) / t_pred
        out["predict_files_per_s_1_thread_decode"] = len(files) / t_pred1
        out["predict_threads_speedup"] = t_pred1 / t_pred

        res = export(run, Path(tmp) / "m.onnx", exporter="legacy")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(str(res.path), opts, providers=["CPUExecutionProvider"])
        xb = x[:256].numpy()
        t_ort = _best_of(lambda: [sess.run(None, {"input": xb}) for _ in range(10)])
        with torch.inference_mode():
            t_pt = _best_of(lambda: [run.model(x[:256]) for _ in range(10)])
        out["onnxruntime_images_per_s"] = 2560 / t_ort
        out["pytorch_images_per_s_b256"] = 2560 / t_pt
        out["onnxruntime_vs_pytorch"] = t_pt / t_ort
        out["onnx_max_abs_diff"] = res.max_abs_diff

    for k, v in out.items():
        print(f"{k:30s} {v:.4g}" if isinstance(v, float) else f"{k:30s} {v}")
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    Path("bench/results/use_inference.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
