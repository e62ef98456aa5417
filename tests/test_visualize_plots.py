"""Curves, confusion matrix and mistakes grid: the data they draw is the data they were given."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnlab.errors import RunError
from cnnlab.visualize import (
    curves_data,
    normalise_rows,
    plot_confusion,
    plot_curves,
    plot_mistakes,
    top_mistakes,
)

ROWS = [
    {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "train_acc": 0.60, "val_acc": 0.70, "lr": 0.1},
    {"epoch": 2, "train_loss": 0.6, "val_loss": 0.5, "train_acc": 0.80, "val_acc": 0.85, "lr": 0.1},
    {"epoch": 3, "train_loss": 0.4, "val_loss": 0.55, "train_acc": 0.90, "val_acc": 0.84, "lr": 0.1},
]


def test_curves_follow_metrics_and_mark_the_best_epoch() -> None:
    curves = curves_data(ROWS)
    assert curves.epochs.tolist() == [1, 2, 3]
    assert curves.best_epoch == 2  # highest val_acc
    fig = plot_curves(curves)
    loss_ax, acc_ax = fig.axes
    train_line, val_line = loss_ax.lines[:2]
    assert train_line.get_ydata().tolist() == [1.0, 0.6, 0.4]
    assert val_line.get_ydata().tolist() == [0.9, 0.5, 0.55]
    assert acc_ax.lines[1].get_ydata().tolist() == [0.70, 0.85, 0.84]
    assert any(line.get_xdata()[0] == 2 for line in acc_ax.lines[2:])  # best-epoch marker


def test_curves_without_validation_or_with_nan_still_plot() -> None:
    rows = [{"epoch": 1, "train_loss": 0.9, "train_acc": 0.5, "val_loss": None},
            {"epoch": 2, "train_loss": float("nan"), "train_acc": 0.6}]
    curves = curves_data(rows)
    assert math.isnan(curves.series["train_loss"][1]) and math.isnan(curves.series["val_acc"][0])
    assert curves.best_epoch is None
    fig = plot_curves(curves)
    assert len(fig.axes[0].lines) == 1  # only the train loss line


def test_curves_of_an_empty_run_is_a_clear_error() -> None:
    with pytest.raises(RunError, match="no finished epoch"):
        curves_data([])


def test_confusion_normalisation_and_cells() -> None:
    counts = np.array([[8, 2, 0], [1, 1, 2], [0, 0, 0]])
    np.testing.assert_allclose(normalise_rows(counts), [[0.8, 0.2, 0], [0.25, 0.25, 0.5], [0, 0, 0]])
    fig = plot_confusion(counts, ["cat", "dog", "owl"])
    left, right = fig.axes
    assert sorted(t.get_text() for t in left.texts) == sorted(str(v) for v in counts.ravel())
    assert {t.get_text() for t in right.texts} == {"80%", "20%", "25%", "50%", ""}
    assert [t.get_text() for t in left.get_yticklabels()] == ["cat", "dog", "owl"]


def test_confusion_with_many_classes_skips_cell_text() -> None:
    counts = np.eye(30, dtype=int) * 5
    fig = plot_confusion(counts, [f"class{i}" for i in range(30)])
    assert not fig.axes[0].texts


def test_top_mistakes_are_the_highest_loss_wrong_predictions() -> None:
    rng = np.random.default_rng(3)
    losses = rng.random(200)
    labels = rng.integers(0, 5, 200)
    preds = np.where(rng.random(200) < 0.3, (labels + 1) % 5, labels)
    got = top_mistakes(losses, preds, labels, 10)
    reference = sorted((i for i in range(200) if preds[i] != labels[i]), key=lambda i: -losses[i])[:10]
    assert got.tolist() == reference


def test_mistakes_grid_captions() -> None:
    images = np.zeros((4, 1, 8, 8), np.uint8)
    labels = np.array([0, 1, 2, 0])
    preds = np.array([1, 1, 0, 0])
    probs = np.array([[0.3, 0.7, 0], [0, 1, 0], [0.9, 0, 0.1], [1, 0, 0]], np.float32)
    idx = top_mistakes(np.array([1.2, 0.0, 2.3, 0.0]), preds, labels, 16)
    assert idx.tolist() == [2, 0]
    fig = plot_mistakes(images, labels, preds, probs, idx, ["zero", "one", "two"])
    titles = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert titles == ["true: two (10%)\npred: zero (90%)", "true: zero (30%)\npred: one (70%)"]
