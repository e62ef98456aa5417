"""The training loop on a tiny generated data set: it learns, writes the run folder of the contract,
resumes bit for bit after a stop at any step, stops on NaN keeping the last good checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab.data import DataBundle, ImageSet
from cnnlab.errors import CnnlabError, RunError, TrainingDiverged
from cnnlab.train import TrainingInterrupted, load_run
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.trainer import Trainer
from cnnlab.workflows import train

SPEC = {
    "name": "tiny", "input": [1, 8, 8],
    "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten",
               {"dropout": 0.25}, {"output": 2}],
}


def stripes(n: int, seed: int) -> ImageSet:
    """Class 0: bright even rows; class 1: bright even columns; plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 90, size=(n, 1, 8, 8))
    images[labels == 0, :, ::2, :] += 150
    images[labels == 1, :, :, ::2] += 150
    return ImageSet(images.astype(np.uint8), labels, ["rows", "cols"], [f"gen:{seed}:{i}" for i in range(n)])


def bundle() -> DataBundle:
    train_set, val_set = stripes(96, 1), stripes(32, 2)
    mean = float(train_set.images.mean() / 255)
    std = float(train_set.images.std() / 255)
    return DataBundle(train_set, val_set, None, ["rows", "cols"], (mean,), (std,), (1, 8, 8), source="stripes")


OPTS = {"batch_size": 16, "lr": 0.01, "seed": 3, "threads": 1, "report": False, "quiet": True}


def test_a_short_run_learns_and_writes_the_contract_folder(tmp_path):
    run = train(SPEC, bundle(), out=tmp_path / "run", epochs=4, **OPTS)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["val_acc"] > 0.75  # chance is 0.5
    for name in ("config.yaml", "spec.yaml", "classes.json", "data.json", "skipped.txt", "status.json",
                 "checkpoints/last.safetensors", "checkpoints/last.json", "checkpoints/best.safetensors",
                 "checkpoints/best.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "finished"
    assert set(rows[0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s", "images_per_s"}
    # the loaded run reproduces the logged validation accuracy of its best epoch with plain torch
    assert run is not None and run.classes == ["rows", "cols"]
    best = max(r["val_acc"] for r in rows)
    val = bundle().val
    with torch.no_grad():
        pred = run.model(run.preprocess(val.images)).argmax(1).numpy()
    assert (pred == val.labels).mean() == pytest.approx(best)
    assert load_run(tmp_path / "run", "last").checkpoint["epoch"] == 4


def _stop_at(monkeypatch, step: int) -> None:
    """Make the loop see a Ctrl-C right after optimizer step ``step`` (as the SIGINT handler would)."""
    original = Trainer._step

    def step_then_maybe_stop(self, x, y):
        out = original(self, x, y)
        if self.pos.step + 1 == step:
            self.stop.requested = True
        return out

    monkeypatch.setattr(Trainer, "_step", step_then_maybe_stop)


@pytest.mark.parametrize("stop_step", [3, 6, 14])  # mid-epoch 1, end of epoch 1, mid-epoch 3
def test_stop_and_resume_is_bit_identical(tmp_path, monkeypatch, stop_step):
    train(SPEC, bundle(), out=tmp_path / "ref", epochs=3, **OPTS)
    with monkeypatch.context() as m:
        _stop_at(m, stop_step)
        with pytest.raises(TrainingInterrupted) as info:
            train(SPEC, bundle(), out=tmp_path / "cut", epochs=3, **OPTS)
    assert info.value.exit_code == 130 and "--resume" in str(info.value)
    assert json.loads((tmp_path / "cut" / "status.json").read_text())["state"] == "interrupted"
    train(tmp_path / "cut", bundle(), resume=True, **OPTS)
    ref, _ = ckpt.read_weights(tmp_path / "ref" / "checkpoints" / "last")
    got, _ = ckpt.read_weights(tmp_path / "cut" / "checkpoints" / "last")
    for name in ref:
        assert torch.equal(ref[name], got[name]), name
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = Trainer._step

    def poison_in_epoch_two(self, x, y):
        if self.pos.epoch == 1:
            with torch.no_grad():
                next(self.p.raw.parameters()).fill_(float("nan"))
        return original(self, x, y)

    monkeypatch.setattr(Trainer, "_step", poison_in_epoch_two)
    with pytest.raises(TrainingDiverged, match="lower learning rate"):
        train(SPEC, bundle(), out=tmp_path / "run", epochs=3, **OPTS)
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "diverged"
    weights, meta = ckpt.read_weights(tmp_path / "run" / "checkpoints" / "last")
    assert meta["epoch"] == 1
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_early_stopping_with_a_learning_rate_too_small_to_improve(tmp_path):
    train(SPEC, bundle(), out=tmp_path / "run", epochs=6, patience=2, **dict(OPTS, lr=1e-12))
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3  # epoch 1 sets the best, 2 and 3 do not beat it
    assert json.loads((tmp_path / "run" / "status.json").read_text())["stopped_early"] is True


def test_a_pickled_run_is_refused(tmp_path):
    train(SPEC, bundle(), out=tmp_path / "run", epochs=1, **OPTS)
    best = tmp_path / "run" / "checkpoints" / "best.safetensors"
    torch.save({"w": torch.zeros(1)}, best)
    with pytest.raises(RunError, match="pickled"):
        load_run(tmp_path / "run")


def test_user_errors_are_clear(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(CnnlabError, match="ends with 3 outputs but the data has 2 classes"):
        train(dict(SPEC, layers=SPEC["layers"][:-1] + [{"output": 3}]), bundle(), out=tmp_path / "x", **OPTS)
    train(SPEC, bundle(), out=tmp_path / "run", epochs=1, **OPTS)
    with pytest.raises(RunError, match="already holds a run"):
        train(SPEC, bundle(), out=tmp_path / "run", epochs=1, **OPTS)


def test_fp16_on_cpu_is_refused_before_training(tmp_path):
    with pytest.raises(CnnlabError, match="fp16 needs a GPU"):
        train(SPEC, bundle(), out=tmp_path / "run", device="cpu", precision="fp16", **OPTS)


def test_bf16_autocast_on_cpu_learns(tmp_path):
    run = train(SPEC, bundle(), out=tmp_path / "run", epochs=4, precision="bf16", **OPTS)
    assert run is not None and run.metrics[-1]["val_acc"] > 0.75
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # weights stay float32


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_mixed_precision_learns(tmp_path, precision):
    run = train(SPEC, bundle(), out=tmp_path / "run", epochs=4, device="cuda", precision=precision, **OPTS)
    assert run is not None and run.metrics[-1]["val_acc"] > 0.75
