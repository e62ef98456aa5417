"""evaluate(..., cache=FILE): a cached evaluation equals a fresh one exactly, is really reused, and
is recomputed whenever anything it depends on changes (weights, BatchNorm buffers, images, labels,
normalisation) or the file is damaged or foreign."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _use_helpers import random_set, real_run, reference_input
from cnnlab.inference import eval_cache, evaluation
from cnnlab.inference.evaluation import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ["a", "b", "c"]
MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)


@pytest.fixture
def setup(tmp_path):  # -> (run, data, cache file)
    data = random_set(41, (3, 8, 8), CLASSES, seed=3)
    run = real_run(tmp_path / "run", 3, 8, CLASSES, MEAN, STD)
    return run, data, tmp_path / "run" / "cache" / "eval.npz"


def _same(a, b) -> None:
    assert (a.predictions == b.predictions).all()
    assert np.array_equal(a.probabilities, b.probabilities) and np.array_equal(a.losses, b.losses)
    assert np.array_equal(a.confusion, b.confusion) and a.top_k == b.top_k and a.per_class == b.per_class


def _count_model_runs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = evaluation.log_probabilities

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "log_probabilities", counting)
    return calls


def test_cached_result_equals_fresh_and_pytorch(setup, monkeypatch) -> None:
    run, data, cache = setup
    calls = _count_model_runs(monkeypatch)
    fresh = evaluate(run, data, batch_size=16)  # no cache
    first = evaluate(run, data, batch_size=16, cache=cache)  # computes and stores
    second = evaluate(run, data, batch_size=16, cache=cache)  # loads
    assert cache.exists() and len(calls) == 2  # the third call never ran the model
    _same(fresh, first)
    _same(fresh, second)
    with torch.no_grad():  # and the cached numbers are PyTorch's own
        logits = run.model.eval()(reference_input(data.images, MEAN, STD))
        ref = F.cross_entropy(logits, torch.from_numpy(data.labels), reduction="none").numpy()
    np.testing.assert_allclose(second.losses, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("change", ["weight", "bn_buffer", "image", "label", "mean", "batch"])
def test_any_change_recomputes(setup, monkeypatch, change: str) -> None:
    run, data, cache = setup
    evaluate(run, data, batch_size=16, cache=cache)
    batch = 16
    if change == "weight":
        with torch.no_grad():
            run.model.layers[0].conv.weight[0, 0, 0, 0] += 0.5
    elif change == "bn_buffer":  # a buffer, not a parameter: eval mode reads it
        run.model.layers[1].bn.running_mean[0] += 0.5
    elif change == "image":
        images = data.images.copy()
        images[0, 0, 0, 0] ^= 0xFF
        data = dataclasses.replace(data, images=images)
    elif change == "label":
        labels = data.labels.copy()
        labels[0] = (labels[0] + 1) % len(CLASSES)
        data = dataclasses.replace(data, labels=labels)
    elif change == "mean":
        run.mean = (0.1, 0.5, 0.6)
    else:
        batch = 7
    calls = _count_model_runs(monkeypatch)
    got = evaluate(run, data, batch_size=batch, cache=cache)
    assert len(calls) == 1  # the stale cache was not used
    monkeypatch.undo()
    _same(got, evaluate(run, data, batch_size=batch))


@pytest.mark.parametrize("damage", [b"", b"not an npz at all", b"PK\x03\x04" + b"\x00" * 40])
def test_damaged_cache_is_recomputed_and_replaced(setup, damage: bytes) -> None:
    run, data, cache = setup
    fresh = evaluate(run, data, batch_size=16)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(damage)
    _same(fresh, evaluate(run, data, batch_size=16, cache=cache))
    key = eval_cache.cache_key(run.model, data.images, data.labels, CLASSES, MEAN, STD, 16)
    assert eval_cache.load(cache, key, len(data.labels), len(CLASSES)) is not None


def test_wrong_shape_and_oversized_files_are_ignored(tmp_path) -> None:
    f = tmp_path / "c.npz"
    eval_cache.save(f, "k", np.zeros((4, 3), np.float32))
    assert eval_cache.load(f, "k", 4, 3) is not None
    assert eval_cache.load(f, "k", 5, 3) is None  # another image count
    assert eval_cache.load(f, "k", 4, 2) is None  # another class count
    eval_cache.save(f, "k", np.zeros((4, 3), np.float64))
    assert eval_cache.load(f, "k", 4, 3).dtype == np.float32  # stored as float32 whatever it was given
    eval_cache.save(f, "k", np.zeros((4000, 3), np.float32))
    assert eval_cache.load(f, "k", 4, 3) is None  # larger than 4x3 could be: not even read


def test_unwritable_folder_costs_only_the_saving(setup, tmp_path) -> None:
    run, data, _ = setup
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the cache folder should be
    _same(evaluate(run, data, batch_size=16), evaluate(run, data, batch_size=16, cache=blocker / "c.npz"))


@pytest.mark.slow
def test_report_after_training_reuses_the_evaluation_of_the_trainings_report(tmp_path, monkeypatch) -> None:
    """`cnnlab train` writes the report at the end; a later report of the same run needs no model pass."""
    from _report_helpers import SPEC, squares_bundle
    from cnnlab.report import write_report
    from cnnlab.workflows import train

    bundle = squares_bundle()
    folder = tmp_path / "run"
    train(SPEC, bundle, out=folder, quiet=True, report=True, epochs=1, batch_size=24, lr=0.01, threads=1)
    assert (folder / "cache" / "report-eval-best.npz").is_file()
    calls = _count_model_runs(monkeypatch)
    write_report(folder, data=bundle.val, out=tmp_path / "again.html")
    assert calls == []  # the cache of the training's report was used
    from cnnlab.train import load_run

    run = load_run(folder)
    cached = evaluate(run, bundle.val, cache=folder / "cache" / "report-eval-best.npz",
                      batch_size=int(run.config.eval_batch_size))
    assert calls == []
    monkeypatch.undo()
    _same(cached, evaluate(run, bundle.val, batch_size=int(run.config.eval_batch_size)))
