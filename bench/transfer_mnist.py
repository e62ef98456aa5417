"""Transfer learning on real digits: pretrain on MNIST 0-4, fine-tune on 50 images per class of 5-9.

Compares, over 3 seeds and with the same budget (network, epochs, batch, optimizer, schedule,
augmentation), a network trained from scratch with one started from the 0-4 network:

- ``scratch``: fresh weights;
- ``fine-tune``: ``--init-from`` the 0-4 run, head replaced, body frozen for 1 epoch, then all layers
  with discriminative learning rates (``lr_ratio`` 0.1): cnnlab's defaults with ``--init-from``;
- ``init-only``: ``--init-from`` without freezing and with one learning rate (ablation);
- ``linear-probe``: ``--init-from`` with the body frozen for every epoch (only the head learns);
- ``converged-probe`` (diagnostic, not a cnnlab recipe): a logistic-regression head fitted to
  convergence with L-BFGS on the 0-4 network's frozen features, to show how good they are.

Splits: the 0-4 network trains on MNIST's training file only (digits 0-4). Each seed draws from the
training file's 5-9 digits 50 per class for fine-tuning and another 50 per class for validation,
which picks the best epoch (``best`` checkpoint). The figure is read on MNIST's test file, digits
5-9 (4,861 images): it chose nothing (no epoch, no option, no run).

    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/transfer_mnist.py

Writes ``bench/results/transfer_mnist<tag>.json``; run folders go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data import DataBundle, ImageSet, load_data
from cnnlab.spec import load_spec
from cnnlab.train import load_run
from cnnlab.workflows import train

ROOT = Path(__file__).resolve().parent.parent
ARMS: dict[str, dict[str, Any]] = {
    "scratch": {},
    "fine-tune": {"freeze_epochs": 1, "lr_ratio": 0.1},
    "init-only": {"freeze_epochs": 0, "lr_ratio": 1.0},
    "linear-probe": {"freeze_epochs": -1, "lr_ratio": 1.0},  # -1: frozen for every epoch (only the head trains)
}


def subset(s: ImageSet, index: np.ndarray, digits: list[int]) -> ImageSet:
    """Images ``index`` of ``s``, relabelled 0..len(digits)-1 in the order of ``digits``."""
    remap = {d: i for i, d in enumerate(digits)}
    labels = np.array([remap[int(v)] for v in s.labels[index]], dtype=np.int64)
    return ImageSet(np.ascontiguousarray(s.images[index]), labels, [str(d) for d in digits],
                    [s.sources[i] for i in index])


def per_class(s: ImageSet, digits: list[int], n: int, rng: np.random.Generator,
              exclude: set[int] | None = None) -> np.ndarray:
    picks = []
    for d in digits:
        pool = [i for i in np.flatnonzero(s.labels == d) if exclude is None or i not in exclude]
        picks.extend(rng.choice(pool, size=n, replace=False).tolist())
    return np.array(sorted(picks))


def make_bundle(train_set: ImageSet, val_set: ImageSet, test_set: ImageSet | None, source: str) -> DataBundle:
    x = train_set.images.astype(np.float64) / 255
    return DataBundle(train_set, val_set, test_set, list(train_set.classes), (float(x.mean()),), (float(x.std()),),
                      (1, 28, 28), source=source)


def accuracy(run_path: Path, test: ImageSet) -> float:
    run = load_run(run_path, "best")
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(test.labels), 1000):
            x = run.preprocess(test.images[start:start + 1000])  # (B, 1, 28, 28)
            correct += int((run.model(x).argmax(1).numpy() == test.labels[start:start + 1000]).sum())
    return correct / len(test.labels)


def features(run: Any, images: np.ndarray) -> torch.Tensor:
    """The input of the head (eval mode): (N, D)."""
    x = run.preprocess(images)  # (N, 1, 28, 28)
    with torch.inference_mode():
        for layer in run.model.layers[:-1]:
            x = layer(x)
    return x.clone()  # (N, D)


def converged_probe(run: Any, train_set: ImageSet, test: ImageSet, test_features: torch.Tensor) -> float:
    """A logistic-regression head fitted to convergence (L-BFGS) on the frozen 0-4 features: how good they are."""
    f, y = features(run, train_set.images), torch.from_numpy(train_set.labels)
    torch.manual_seed(0)
    head = torch.nn.Linear(f.shape[1], len(train_set.classes))
    opt = torch.optim.LBFGS(head.parameters(), max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(f), y) + 1e-3 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)  # type: ignore[arg-type]
    with torch.no_grad():
        return float((head(test_features).argmax(1).numpy() == test.labels).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pretrain-images", type=int, default=12000)
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of: " + ", ".join(ARMS))
    ap.add_argument("--tag", default="", help="suffix of the result file: transfer_mnist<tag>.json")
    args = ap.parse_args()
    start = time.perf_counter()
    bundle = load_data("mnist", (1, 28, 28), val_split=0.0, seed=0, progress=False)
    full, test_file = bundle.train, bundle.test
    assert test_file is not None
    spec = load_spec(ROOT / "examples" / "mnist-cnn.yaml").to_dict()
    spec["layers"][-1] = {"output": {"classes": 5}}
    common = {"batch_size": 32, "device": "cpu", "threads": args.threads, "quiet": True, "report": False}
    work = Path(tempfile.mkdtemp(prefix="transfer-bench-"))

    low, high = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    rng = np.random.default_rng(1234)
    low_idx = np.flatnonzero(np.isin(full.labels, low))
    pre_idx = np.sort(rng.choice(low_idx, size=min(args.pretrain_images, len(low_idx)), replace=False))
    pre_val_idx = per_class(full, low, 100, rng, exclude=set(pre_idx.tolist()))
    pre_bundle = make_bundle(subset(full, pre_idx, low), subset(full, pre_val_idx, low), None, "mnist 0-4")
    train(spec, pre_bundle, out=work / "pretrain", epochs=args.pretrain_epochs, seed=0, **common)
    pre_acc = load_run(work / "pretrain").metrics[-1]["val_acc"]
    pretrain_s = time.perf_counter() - start

    test_high = subset(test_file, np.flatnonzero(np.isin(test_file.labels, high)), high)
    arms = {a: dict(ARMS[a]) for a in args.arms.split(",")}
    for extra in arms.values():
        if extra.get("freeze_epochs") == -1:
            extra["freeze_epochs"] = args.epochs
    results: dict[str, list[float]] = {arm: [] for arm in arms}
    results["converged-probe"] = []
    pre_run = load_run(work / "pretrain")
    test_features = features(pre_run, test_high.images)
    for seed in range(args.seeds):
        srng = np.random.default_rng(seed)
        tr_idx = per_class(full, high, args.per_class, srng)
        va_idx = per_class(full, high, args.per_class, srng, exclude=set(tr_idx.tolist()))
        data = make_bundle(subset(full, tr_idx, high), subset(full, va_idx, high), None, f"mnist 5-9 seed {seed}")
        results["converged-probe"].append(converged_probe(pre_run, data.train, test_high, test_features))
        for arm, extra in arms.items():
            init = {"init_from": str(work / "pretrain")} if extra else {}
            out = work / f"{arm}-{seed}"
            train(spec, data, out=out, epochs=args.epochs, seed=seed, **common, **init, **extra)
            results[arm].append(accuracy(out, test_high))
            print(f"seed {seed} {arm:10s} test acc {results[arm][-1]:.4f}", flush=True)

    summary = {arm: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "runs": v}
               for arm, v in results.items()}
    out = {"pretrain": {"images": int(len(pre_idx)), "epochs": args.pretrain_epochs, "val_acc_0_4": pre_acc,
                        "seconds": round(pretrain_s, 1)},
           "fine_tune": {"per_class": args.per_class, "epochs": args.epochs, "batch_size": 32, "seeds": args.seeds,
                         "val_per_class": args.per_class, "test_images": int(len(test_high.labels))},
           "results": summary, "seconds": round(time.perf_counter() - start, 1), "threads": args.threads}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / f"transfer_mnist{args.tag}.json").write_text(json.dumps(out, indent=2) + "\n")
    for arm, s in summary.items():
        print(f"{arm:10s} test accuracy on MNIST test 5-9: {s['mean']:.2%} ± {s['std']:.2%}  ({', '.join(f'{v:.2%}' for v in s['runs'])})")
    print(json.dumps(out["pretrain"]), f"total {out['seconds']} s")


if __name__ == "__main__":
    main()
