"""Stratified splits with a fixed seed: every class keeps its share in each split.

>>> import numpy as np
>>> labels = np.array([0] * 10 + [1] * 10)
>>> train, val, test = stratified_split(labels, val=0.2, test=0.0, seed=0)
>>> len(train), len(val), len(test), np.bincount(labels[val]).tolist()
(16, 4, 0, [2, 2])
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import DataError


def check_fraction(name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise DataError(f"{name} must be a fraction in [0, 1), got {value}; e.g. --val-split 0.2")
    return float(value)


def stratified_split(labels: np.ndarray, *, val: float, test: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)``; per class ``round(n*val)`` go to val and ``round(n*test)`` to test.

    A class with at least 2 images always keeps one for training and gives one to val when
    ``val > 0``. Each index array is sorted, so a split keeps the source order.
    """
    check_fraction("val_split", val)
    check_fraction("test_split", test)
    if val + test >= 1.0:
        raise DataError(f"val_split + test_split = {val + test:.2f} leaves no training images; keep the sum below 1")
    rng = np.random.default_rng([int(seed), 0x5EED])
    classes, counts = np.unique(labels, return_counts=True)
    n_val, n_test = apportion(counts, val), apportion(counts, test)
    parts: list[list[np.ndarray]] = [[], [], []]
    for k, cls in enumerate(classes):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        v, t = _keep_one_for_training(int(counts[k]), int(n_val[k]), int(n_test[k]), val > 0, test > 0)
        parts[1].append(idx[:v])
        parts[2].append(idx[v:v + t])
        parts[0].append(idx[v + t:])
    out = [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]
    return out[0].astype(np.int64), out[1].astype(np.int64), out[2].astype(np.int64)


def apportion(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Split ``round(sum(counts) * fraction)`` over classes in proportion (largest remainder).

    >>> apportion(np.array([10, 10, 10, 10]), 0.25).tolist()
    [3, 3, 2, 2]
    """
    quota = counts * fraction
    base = np.floor(quota).astype(np.int64)
    target = int(counts.sum() * fraction + 0.5)
    extra = max(0, target - int(base.sum()))
    order = np.argsort(-(quota - base), kind="stable")  # largest remainder first, ties by class order
    base[order[:extra]] += 1
    return base


def _keep_one_for_training(n: int, v: int, t: int, want_val: bool, want_test: bool) -> tuple[int, int]:
    """Every class with 2+ images gives val at least one and keeps at least one for training."""
    if want_val and n >= 2:
        v = max(1, v)
    if want_test and n >= 3:
        t = max(1, t)
    while v + t >= n and (v or t):
        if t >= v and t:
            t -= 1
        else:
            v -= 1
    return v, t
