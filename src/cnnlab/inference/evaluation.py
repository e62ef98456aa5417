"""Evaluate a trained run on a labelled image set: accuracy, top-k, per-class metrics, confusion.

Compute only (STYLE.md habit 8): :func:`evaluate` returns an :class:`EvalResult`; the CLI
(``cnnlab evaluate RUN --data mnist``), ``show confusion`` and ``show mistakes`` render it.

>>> from cnnlab.train import load_run                      # doctest: +SKIP
>>> from cnnlab.data import load_data                      # doctest: +SKIP
>>> run = load_run("runs/lenet")                           # doctest: +SKIP
>>> bundle = load_data("mnist", run.input_shape, resize=run.resize)   # doctest: +SKIP
>>> res = evaluate(run, bundle.test)                       # doctest: +SKIP
>>> res.accuracy, res.most_confused(3)                     # doctest: +SKIP
(0.9912, [('4', '9', 7), ('9', '4', 6), ('2', '7', 5)])

The pure metric functions (:func:`confusion_matrix`, :func:`per_class_metrics`,
:func:`top_k_accuracy`, :func:`most_confused_pairs`) take numpy arrays and need no model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.data.defaults import EVAL_BATCH_SIZE
from cnnlab.errors import DataError
from cnnlab.inference.common import RunLike, preprocess_batch

if TYPE_CHECKING:
    import torch

DEFAULT_TOP_K = (1, 3, 5)


# ---------------------------------------------------------------- pure metric arithmetic


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Count matrix ``C[true, pred]`` (np.int64, ``num_classes x num_classes``, rows = true class).

    >>> confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3).tolist()
    [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    """
    flat = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    counts = np.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def per_class_metrics(confusion: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class from a confusion matrix (rows = true).

    A ratio whose denominator is zero (a class never predicted, or absent) is reported as 0.0,
    as scikit-learn does with ``zero_division=0``.

    >>> m = per_class_metrics(np.array([[3, 1], [2, 4]]), ["a", "b"])
    >>> round(m[0]["precision"], 3), round(m[0]["recall"], 3), m[0]["support"]
    (0.6, 0.75, 4)
    """
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)  # column sums: how often each was predicted
    support = confusion.sum(axis=1)  # row sums: how many truly belong to each class
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support.astype(np.float64))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return [
        {
            "name": str(name),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    ]


def averages(per_class: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Macro (plain mean over the classes present, support > 0) and weighted (by support) precision/recall/F1.

    Classes with no image in the evaluated set are left out of the macro mean (their recall is
    undefined); :func:`absent_classes` names them.

    >>> rows = [{"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5},
    ...         {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}]
    >>> averages(rows)["macro"]["f1"], absent_classes(rows + [{"name": "c", "support": 0}])
    (1.0, ['c'])
    """
    support = np.array([c["support"] for c in per_class], dtype=np.float64)
    present = support > 0
    out: dict[str, dict[str, float]] = {"macro": {}, "weighted": {}}
    for key in ("precision", "recall", "f1"):
        values = np.array([c[key] for c in per_class], dtype=np.float64)
        out["macro"][key] = float(values[present].mean()) if present.any() else 0.0
        total = support.sum()
        out["weighted"][key] = float((values * support).sum() / total) if total else 0.0
    return out


def absent_classes(per_class: Sequence[dict[str, Any]]) -> list[str]:
    """Names of the classes that have no image in the evaluated set (left out of macro averages)."""
    return [str(c["name"]) for c in per_class if int(c["support"]) == 0 and "name" in c]


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, ks: Iterable[int]) -> dict[int, float]:
    """Fraction of samples whose true label is among the ``k`` highest scores, for each ``k``.

    Ties are broken by class index (a stable sort), the way ``torch.topk`` usually does.

    >>> top_k_accuracy(np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]), np.array([2, 1]), [1, 2])
    {1: 0.0, 2: 1.0}
    """
    if len(labels) == 0:
        return {int(k): 0.0 for k in ks}
    order = np.argsort(-probabilities, axis=1, kind="stable")  # (N, K) best first
    rank = np.argmax(order == labels[:, None], axis=1)  # (N,) position of the true class
    return {int(k): float((rank < k).mean()) for k in ks}


def most_confused_pairs(
    confusion: np.ndarray, classes: Sequence[str], n: int = 10
) -> list[tuple[str, str, int]]:
    """The ``n`` largest off-diagonal cells as ``(true name, predicted name, count)``, largest first.

    >>> most_confused_pairs(np.array([[5, 2, 0], [4, 5, 1], [0, 0, 9]]), ["a", "b", "c"], 2)
    [('b', 'a', 4), ('a', 'b', 2)]
    """
    off = confusion.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    true_idx, pred_idx = np.nonzero(off)
    counts = off[true_idx, pred_idx]
    order = np.lexsort((pred_idx, true_idx, -counts))[:n]  # count desc, then true, then pred
    return [(str(classes[true_idx[i]]), str(classes[pred_idx[i]]), int(counts[i])) for i in order]


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


# ---------------------------------------------------------------- result object


@dataclass
class EvalResult:
    """Everything :func:`evaluate` measured. Arrays are per sample, in the image set's order."""

    classes: list[str]
    labels: np.ndarray  # int64 (N,), indices into ``classes`` (the run's classes)
    predictions: np.ndarray  # int64 (N,)
    probabilities: np.ndarray  # float32 (N, K), softmax of the logits
    losses: np.ndarray  # float32 (N,), cross-entropy per sample (no label smoothing)
    sources: list[str]  # a path or "mnist:test:123" per sample
    top_k: dict[int, float] = field(default_factory=dict)
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    per_class: list[dict[str, Any]] = field(default_factory=list)
    engine: str = "torch"  # the engine that ran the model ("torch" or "onnx", see inference.engine; "cache": reused)
    log_probabilities: np.ndarray | None = field(default=None, repr=False)  # float32 (N, K): what all the above derive from

    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean()) if self.n else 0.0

    @property
    def loss(self) -> float:
        """Mean cross-entropy over the set."""
        return float(self.losses.astype(np.float64).mean()) if self.n else 0.0

    def most_confused(self, n: int = 10) -> list[tuple[str, str, int]]:
        """The ``n`` most frequent mistakes as ``(true class, predicted class, count)``."""
        return most_confused_pairs(self.confusion, self.classes, n)

    def highest_loss(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` samples with the highest loss (the worst mistakes), worst first."""
        order = np.argsort(-self.losses, kind="stable")[:n]
        return [self.sample(int(i)) for i in order]

    def sample(self, i: int) -> dict[str, Any]:
        """One sample's outcome: index, source, true and predicted class, loss, confidence."""
        pred = int(self.predictions[i])
        return {
            "index": i,
            "source": self.sources[i] if i < len(self.sources) else str(i),
            "true": self.classes[int(self.labels[i])],
            "predicted": self.classes[pred],
            "confidence": float(self.probabilities[i, pred]),
            "loss": float(self.losses[i]),
        }

    def write_samples_csv(self, path: str | Path) -> Path:
        """Every sample's outcome as CSV (index, source, true, predicted, confidence, loss), atomically."""
        import csv

        from cnnlab.utils.io import atomic_path

        target = Path(path)
        with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "source", "true", "predicted", "confidence", "loss"])
            for i in range(self.n):
                s = self.sample(i)
                writer.writerow([i, s["source"], s["true"], s["predicted"], f"{s['confidence']:.6f}", f"{s['loss']:.6f}"])
        return target

    def to_dict(self, *, top_losses: int = 10, confused: int = 10) -> dict[str, Any]:
        """A JSON-safe summary (no per-sample arrays beyond the ``top_losses`` worst samples)."""
        return {
            "n": self.n,
            "classes": list(self.classes),
            "accuracy": self.accuracy,
            "loss": self.loss,
            "top_k": {str(k): v for k, v in sorted(self.top_k.items())},
            "per_class": self.per_class,
            "average": averages(self.per_class),
            "absent_classes": absent_classes(self.per_class),
            "confusion": self.confusion.tolist(),
            "most_confused": [
                {"true": t, "predicted": p, "count": c} for t, p, c in self.most_confused(confused)
            ],
            "highest_loss": self.highest_loss(top_losses),
        }


# ---------------------------------------------------------------- model evaluation


def evaluate(
    run: RunLike | str | os.PathLike[str],
    imageset: Any = None,
    batch_size: int = EVAL_BATCH_SIZE,
    *,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    split: str = "auto",
    cache: str | os.PathLike[str] | None = None,
    engine: str = "auto",
) -> EvalResult:
    """Run ``run.model`` over ``imageset`` (an ``ImageSet``) in batches and measure it.

    As on the command line, ``run`` may be a run folder path and ``imageset`` a data source
    (``"mnist"``, a folder, a CSV), a ``DataBundle`` or ``None`` (the run's own data); ``split``
    then picks the split (``auto``: test if there is one, else the held-out validation split).

    Preprocessing is the run's own (``run.preprocess``: ``(x/255 - mean)/std`` with the training
    statistics), on the model's device, under ``torch.inference_mode``. The model's train/eval
    mode is restored afterwards. The image set's labels are mapped onto the run's classes by name,
    so a folder holding only some of the classes (or in another order) is evaluated correctly.
    ``top_k`` values at or above the number of classes (always 100 %) are left out, except 1.
    ``cache``: an ``.npz`` file that keeps the per-image log-probabilities; they are reused while the
    weights, images, labels, classes, normalisation, batch size and engine choice are unchanged
    (``eval_cache``); ``EvalResult.engine`` then reads ``cache``.
    ``engine``: ``auto`` (onnxruntime when it is installed and matches PyTorch, else PyTorch),
    ``torch`` or ``onnx``; see :mod:`cnnlab.inference.engine`. Results agree within 1e-5.
    """
    from cnnlab.inference.engine import parse_engine
    from cnnlab.inference.inputs import as_images, as_run

    choice = parse_engine(engine)  # a bad name fails before any data is loaded
    run = as_run(run)
    imageset = as_images(run, imageset, split)
    classes = [str(c) for c in run.classes]
    labels = _labels_in_run_order(imageset, classes)
    images = imageset.images
    if len(labels) != len(images):
        raise DataError(f"image set has {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise DataError("the image set to evaluate is empty; pick a split that has images (e.g. --split val)")
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1; received {batch_size}")
    logp, used = None, "cache"
    if cache is not None:
        from cnnlab.inference import eval_cache

        key = eval_cache.cache_key(run.model, images, labels, classes, run.mean, run.std, batch_size,
                                   engine=str(getattr(choice, "value", choice)))
        logp = eval_cache.load(cache, key, len(labels), len(classes))
    if logp is None:
        logp, used = log_probabilities(run, images, batch_size, len(classes), engine=choice)  # (N, K)
        if cache is not None:
            eval_cache.save(cache, key, logp)
    result = result_from_log_probabilities(logp, labels, classes, imageset, top_k)
    result.engine = used
    return result


def log_probabilities(run: RunLike, images: Any, batch_size: int, num_classes: int,
                      engine: Any = "torch") -> tuple[np.ndarray, str]:
    """(log-softmax of ``run.model`` for every image, float32 ``(N, K)``; the engine that ran it), in
    eval mode under ``torch.inference_mode`` (the model's train/eval mode is restored afterwards)."""
    import torch

    from cnnlab.inference.engine import engine_for, parse_engine

    model = run.model
    was_training = model.training
    model.eval()
    try:
        forward = engine_for(run, parse_engine(engine), n_images=len(images))
        with torch.inference_mode():
            return _log_probabilities(run, forward, images, batch_size, num_classes), forward.name  # (N, K)
    finally:
        model.train(was_training)


def result_from_log_probabilities(logp: np.ndarray, labels: np.ndarray, classes: list[str], imageset: Any,
                                  top_k: Sequence[int] = DEFAULT_TOP_K) -> EvalResult:
    """The :class:`EvalResult` of per-image log-probabilities ``logp`` ``(N, K)`` against ``labels`` ``(N,)``
    (run order): every figure of :func:`evaluate` is computed here from ``logp`` alone."""
    probabilities = np.exp(logp).astype(np.float32)
    losses = (-logp[np.arange(len(labels)), labels]).astype(np.float32)  # (N,) cross-entropy
    predictions = logp.argmax(axis=1).astype(np.int64)  # (N,)
    confusion = confusion_matrix(labels, predictions, len(classes))
    ks = sorted({int(k) for k in top_k if int(k) == 1 or 1 <= int(k) < len(classes)})
    return EvalResult(
        classes=classes,
        labels=labels,
        predictions=predictions,
        probabilities=probabilities,
        losses=losses,
        sources=[str(s) for s in getattr(imageset, "sources", [])] or [str(i) for i in range(len(labels))],
        top_k=top_k_accuracy(probabilities, labels, ks),
        confusion=confusion,
        per_class=per_class_metrics(confusion, classes),
        log_probabilities=logp,
    )


def result_for(imageset: Any, classes: Sequence[str], logp: np.ndarray,
               top_k: Sequence[int] = DEFAULT_TOP_K) -> EvalResult:
    """What :func:`evaluate` returns for ``imageset`` when the model's log-probabilities ``logp`` ``(N, K)``
    were kept from an earlier evaluation of the same weights and images (no model, no torch)."""
    names = [str(c) for c in classes]
    result = result_from_log_probabilities(logp, _labels_in_run_order(imageset, names), names, imageset, top_k)
    result.engine = "cache"
    return result


def _log_probabilities(run: RunLike, forward: Any, images: Any, batch_size: int, num_classes: int) -> np.ndarray:
    """Log-softmax of the model's logits for every image, as float32 ``(N, K)``, batch by batch.

    With the onnx engine's raw graph (``Forward.raw_batches``) the uint8 batches go in as they are and
    the normalisation and log-softmax run inside onnxruntime: no PyTorch op per batch."""
    import torch

    from cnnlab.inference.engine import Output
    from cnnlab.model import model_device

    raw = forward.raw_batches(images, batch_size, Output.LOG_PROBS)  # [(B, K), ...], or None: no raw graph
    if raw is not None:
        for i, logp in enumerate(raw):
            _check_logits(logp, min(batch_size, len(images) - i * batch_size), num_classes)
        return np.concatenate(raw, axis=0) if raw else np.zeros((0, num_classes), np.float32)
    device = model_device(run.model)
    chunks: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size])  # (B, C, H, W) uint8
        x = preprocess_batch(run, batch, device)  # (B, C, H, W) float32
        logits = forward(x)  # (B, K) on the CPU
        _check_logits(logits, len(batch), num_classes)
        chunks.append(torch.log_softmax(logits, dim=1).numpy())
    if not chunks:
        return np.zeros((0, num_classes), np.float32)
    return np.concatenate(chunks, axis=0)


def _check_logits(logits: torch.Tensor | np.ndarray, batch: int, num_classes: int) -> None:
    if logits.ndim != 2 or logits.shape[0] != batch or logits.shape[1] != num_classes:
        raise DataError(
            f"the model returned logits of shape {tuple(logits.shape)} for a batch of {batch}; "
            f"expected ({batch}, {num_classes}) for the run's {num_classes} classes"
        )


def _labels_in_run_order(imageset: Any, classes: list[str]) -> np.ndarray:
    """The image set's labels as indices into the run's ``classes`` (matched by class name)."""
    labels = np.asarray(imageset.labels, dtype=np.int64)
    set_classes = [str(c) for c in getattr(imageset, "classes", classes)]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(set_classes)):
        raise DataError(
            f"image set labels range over {labels.min()}..{labels.max()} but it names "
            f"{len(set_classes)} classes"
        )
    if set_classes == classes:
        return labels
    unknown = [c for c in set_classes if c not in classes]
    used = set(labels.tolist())
    unknown_used = [c for i, c in enumerate(set_classes) if c in unknown and i in used]
    if unknown_used:
        raise DataError(
            f"the data has classes the run was not trained on: {', '.join(unknown_used[:10])}; "
            f"the run knows: {', '.join(classes[:20])}. Evaluate on data with the same class "
            "folders (or labels) as training"
        )
    lookup = np.array([classes.index(c) if c in classes else -1 for c in set_classes], np.int64)
    return lookup[labels] if len(labels) else labels
