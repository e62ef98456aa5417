"""Accuracy and memory of real training runs with cnnlab's recipes (one net per invocation).

- ``lenet5``: MNIST test error (target <= 1.0 %);
- ``keras-mnist``: the default recipe (``cnnlab train keras-mnist --data mnist``), test accuracy (>= 99.2 %);
- ``cats``: ``examples/cats-small.yaml`` on cats_vs_dogs from scratch, validation accuracy (>= 80 %);
- ``mnist-modern``: the zoo net with its bundled recipe (``--config mnist-modern``), test accuracy (>= 99.6 %);
- ``cats-scratch``: the zoo net with its bundled recipe, trained on ``train/`` only; the figure is read
  from the LAST epoch's weights (its own 10 % validation split, 200 images, only reports progress: it
  is too small to choose epochs), and ``validation/`` (1000 images) is measured once, as a test set (>= 85 %).

Each run also records peak RSS (``ru_maxrss``) next to the analysis's training-memory estimate.

    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py lenet5
    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py keras-mnist
    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py cats
    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py mnist-modern --seed 0
    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_accuracy.py cats-scratch --seed 0

Writes ``bench/results/train_accuracy_<name>.json`` (``_seed<N>``, ``_e<N>`` added for ``--seed``,
``--epochs``); the run folders go to ``runs/bench-<name>`` with the same suffix.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from cnnlab.train.config import load_config
from cnnlab.workflows import train

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CNNLAB_DATA", "/work/shared/data"))
RECIPES: dict[str, dict[str, Any]] = {
    "lenet5": {"spec": "lenet5", "data": "mnist", "options": {"epochs": 10}, "target": 0.990},
    "keras-mnist": {"spec": "keras-mnist", "data": "mnist", "options": {}, "target": 0.992},
    "cats": {"spec": str(ROOT / "examples" / "cats-small.yaml"), "data": str(DATA / "cats_vs_dogs"),
             "options": {"epochs": 30, "batch_size": 32, "lr": 2e-3}, "target": 0.80},
    # the bundled recipes (#14): options come from the recipe file, as with ``--config NAME``
    "mnist-modern": {"spec": "mnist-modern", "data": "mnist", "config": "mnist-modern", "options": {},
                     "target": 0.996},
    "cats-scratch": {"spec": "cats-scratch", "data": str(DATA / "cats_vs_dogs" / "train"),
                     "test": str(DATA / "cats_vs_dogs" / "validation"), "config": "cats-scratch",
                     "options": {}, "target": 0.85, "checkpoint": "last"},
}


def run(name: str, threads: int | None, seed: int | None = None, epochs: int | None = None) -> dict[str, Any]:
    recipe = RECIPES[name]
    spec = recipe["spec"]
    config = load_config(recipe["config"]) if "config" in recipe else None
    given = {"seed": seed, "epochs": epochs}
    options = dict(recipe["options"], **{k: v for k, v in given.items() if v is not None})
    batch = options.get("batch_size", config.batch_size if config is not None else 128)
    analysis = analyze(spec, batch=int(batch))
    val_split = config.val_split if config is not None else 0.1
    cache = Path(tempfile.gettempdir()) / "cnnlab-bench-cache"
    bundle = load_data(recipe["data"], _input(spec), val_split=val_split, seed=0, progress=False, cache_dir=cache)
    if "test" in recipe:  # a separate folder used once as the test set: it chooses nothing
        held = load_data(recipe["test"], _input(spec), val_split=0.0, seed=0, progress=False, cache_dir=cache)
        bundle = dataclasses.replace(bundle, test=held.train)
    load_before = os.getloadavg()[0]
    out = ROOT / "runs" / f"bench-{name}{_suffix(seed, epochs)}"  # one folder per seed/schedule
    if out.exists():
        import shutil

        shutil.rmtree(out)
    start = time.perf_counter()
    result = train(spec, bundle, config, out=out, threads=threads, quiet=False, report=False, **options)
    assert result is not None
    seconds = time.perf_counter() - start
    held_out = bundle.test if bundle.test is not None else bundle.val
    which = recipe.get("checkpoint", "best")  # "last": the validation split chooses nothing either
    if which != "best":
        from cnnlab.train.run import load_run

        result_or_run = load_run(out, which)
    else:
        result_or_run = result
    acc = evaluate(result_or_run, held_out).accuracy
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    estimate = analysis.memory.total if analysis.memory is not None else None
    return {
        "net": name, "spec": spec, "data": recipe["data"], "options": result.config.to_dict(),
        "held_out": "test" if bundle.test is not None else "validation", "held_out_images": len(held_out),
        "checkpoint": which,
        "accuracy": acc, "error_pct": 100 * (1 - acc), "target_accuracy": recipe["target"],
        "meets_target": acc >= recipe["target"], "train_seconds": seconds,
        "best_val_acc": max(r["val_acc"] for r in result.metrics), "epochs_run": len(result.metrics),
        "peak_rss_bytes": peak_rss, "analysis_training_memory_bytes": estimate,
        "images_per_s_median": sorted(r["images_per_s"] for r in result.metrics)[len(result.metrics) // 2],
        "load_avg_1min_at_start": load_before, "load_avg_1min_at_end": os.getloadavg()[0], "run_folder": str(out),
    }


def _suffix(seed: int | None, epochs: int | None) -> str:
    return (f"_seed{seed}" if seed is not None else "") + (f"_e{epochs}" if epochs is not None else "")


def _input(spec: str) -> tuple[int, int, int]:
    from cnnlab.spec import load_spec

    return tuple(load_spec(spec).input)  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("net", choices=sorted(RECIPES))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="a shorter (complete) schedule than the recipe's, when time is short; recorded in the JSON")
    args = ap.parse_args()
    res = run(args.net, args.threads, args.seed, args.epochs)
    res["recipe_epochs_overridden"] = args.epochs is not None
    print(json.dumps(res, indent=2))
    path = ROOT / "bench" / "results" / f"train_accuracy_{args.net}{_suffix(args.seed, args.epochs)}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
