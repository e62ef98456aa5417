"""Accuracy and memory of real training runs with cnnlab's recipes (one net per invocation).

- ``lenet5``: MNIST test error (target <= 1.0 %);
- ``keras-mnist``: the default recipe (``cnnlab train keras-mnist --data mnist``), test accuracy (>= 99.2 %);
- ``cats``: ``examples/cats-small.yaml`` on cats_vs_dogs from scratch, validation accuracy (>= 80 %).

Each run also records peak RSS (``ru_maxrss``) next to the analysis's training-memory estimate.

    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py lenet5
    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py keras-mnist
    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py cats

Writes ``bench/results/train_accuracy_<name>.json``; the run folders go to ``runs/bench-<name>``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from cnnlab.analysis import analyze
from cnnlab.data import load_data
from cnnlab.inference.evaluation import evaluate
from cnnlab.workflows import train

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CNNLAB_DATA", "/work/shared/data"))
RECIPES: dict[str, dict[str, Any]] = {
    "lenet5": {"spec": "lenet5", "data": "mnist", "options": {"epochs": 10}, "target": 0.990},
    "keras-mnist": {"spec": "keras-mnist", "data": "mnist", "options": {}, "target": 0.992},
    "cats": {"spec": str(ROOT / "examples" / "cats-small.yaml"), "data": str(DATA / "cats_vs_dogs"),
             "options": {"epochs": 30, "batch_size": 32, "lr": 2e-3}, "target": 0.80},
}


def run(name: str, threads: int | None) -> dict[str, Any]:
    recipe = RECIPES[name]
    spec = recipe["spec"]
    analysis = analyze(spec, batch=int(recipe["options"].get("batch_size", 128)))
    bundle = load_data(recipe["data"], _input(spec),
                       val_split=0.1, seed=0, progress=False,
                       cache_dir=Path(tempfile.gettempdir()) / "cnnlab-bench-cache")
    out = ROOT / "runs" / f"bench-{name}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    start = time.perf_counter()
    result = train(spec, bundle, out=out, threads=threads, quiet=False, report=False, **recipe["options"])
    assert result is not None
    seconds = time.perf_counter() - start
    held_out = bundle.test if bundle.test is not None else bundle.val
    acc = evaluate(result, held_out).accuracy
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    estimate = analysis.memory.total if analysis.memory is not None else None
    return {
        "net": name, "spec": spec, "data": recipe["data"], "options": result.config.to_dict(),
        "held_out": "test" if bundle.test is not None else "validation", "held_out_images": len(held_out),
        "accuracy": acc, "error_pct": 100 * (1 - acc), "target_accuracy": recipe["target"],
        "meets_target": acc >= recipe["target"], "train_seconds": seconds,
        "best_val_acc": max(r["val_acc"] for r in result.metrics), "epochs_run": len(result.metrics),
        "peak_rss_bytes": peak_rss, "analysis_training_memory_bytes": estimate,
        "images_per_s_median": sorted(r["images_per_s"] for r in result.metrics)[len(result.metrics) // 2],
        "load_avg_1min_at_end": os.getloadavg()[0], "run_folder": str(out),
    }


def _input(spec: str) -> tuple[int, int, int]:
    from cnnlab.spec import load_spec

    return tuple(load_spec(spec).input)  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("net", choices=sorted(RECIPES))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    res = run(args.net, args.threads)
    print(json.dumps(res, indent=2))
    path = ROOT / "bench" / "results" / f"train_accuracy_{args.net}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
