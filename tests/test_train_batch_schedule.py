"""Issue #14's trainer options: ``--batch-schedule`` (Smith et al. 2017), ``--schedule step`` with
``--lr-steps``, ``--lr-scaling linear|sqrt`` (Goyal et al. 2017; Hoffer et al. 2017).

References: the real ``BatchLoader`` (what the loop iterates) for the batch/step arithmetic, torch's
own ``LinearLR`` + ``MultiStepLR`` for the step schedule, hand-computed step tables and learning
rates, a run given the already-scaled lr for ``--lr-scaling``, and an uninterrupted run for exact
resume across a batch-size change (a conv on 3 input channels, CPU defaults: channels-last, fused AdamW).

Run: ``PYTHONPATH=src python -m pytest -q tests/test_train_batch_schedule.py`` (about 30 s on 2 busy cores).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import BatchLoader, DataBundle, ImageSet
from cnnlab.errors import CnnlabError
from cnnlab.train import TrainingInterrupted
from cnnlab.train import checkpoint as ckpt
from cnnlab.train import trainer as trainer_mod
from cnnlab.train.api import fit
from cnnlab.train.batches import BatchPlan
from cnnlab.train.config import TrainConfig
from cnnlab.train.schedule import LRSchedule
from cnnlab.train.trainer import Trainer, peak_lr

SPEC = {
    "name": "rgbtiny", "input": [3, 8, 8],
    "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1}}, "batchnorm",
               {"conv": {"filters": 6, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten",
               {"dropout": 0.25}, {"output": 2}],
}


def stripes(n: int, seed: int) -> ImageSet:
    """RGB 8x8: class 0 bright even rows, class 1 bright even columns, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 90, size=(n, 3, 8, 8))
    images[labels == 0, :, ::2, :] += 150
    images[labels == 1, :, :, ::2] += 150
    return ImageSet(images.astype(np.uint8), labels, ["rows", "cols"], [f"gen:{seed}:{i}" for i in range(n)])


def bundle() -> DataBundle:
    train_set, val_set = stripes(96, 1), stripes(16, 2)
    mean = tuple(float(m) for m in train_set.images.mean(axis=(0, 2, 3)) / 255)
    std = tuple(float(s) for s in train_set.images.std(axis=(0, 2, 3)) / 255)
    return DataBundle(train_set, val_set, None, ["rows", "cols"], mean, std, (3, 8, 8), source="stripes")


# 96 training images, batch 8 -> 16 after 1 epoch -> 24 after 2: each drops its last partial batch
# (96 >= 2 batches), so 96/8 = 12, 96/16 = 6, 96/24 = 4 steps: 22 in all (hand-computed)
OPTS = {"batch_size": 8, "batch_schedule": "1:2,2:1.5", "epochs": 3, "lr": 0.01, "seed": 3, "threads": 1,
        "quiet": True, "checkpoint_steps": 4}
STEPS = [12, 6, 4]
SIZES = [8, 16, 24]


# ---------------------------------------------------------------- the arithmetic against the real loader


@pytest.mark.parametrize(("n", "batch", "schedule", "epochs", "max_steps", "world"), [
    (96, 8, [(1, 2), (2, 1.5)], 3, None, 1),
    (100, 7, [(2, 3)], 4, None, 1),  # 7 -> 21: neither divides 100
    (50, 16, [(1, 2)], 3, None, 1),  # 50 >= 32 drops, then 50 < 64 keeps the partial batch
    (96, 4, [(1, 4), (3, 0.5)], 5, 5, 1),  # --max-steps-per-epoch cuts every epoch; a factor < 1
    (101, 5, [(1, 2)], 3, None, 2),  # DDP: each rank's shard (51), batch per rank
])
def test_plan_gives_each_epoch_the_batches_the_loader_yields(n, batch, schedule, epochs, max_steps, world):
    images = np.random.default_rng(0).integers(0, 255, size=(n, 1, 2, 2)).astype(np.uint8)
    data = ImageSet(images, np.arange(n) % 2, ["a", "b"], ["?"] * n)
    for rank in range(world):
        loader = BatchLoader(data, batch, shuffle=True, seed=4, mean=(0.0,), std=(1.0,), rank=rank, world_size=world)
        plan = BatchPlan.build(batch_size=batch, batch_schedule=schedule, epochs=epochs, samples=len(loader.indices()),
                               n_train=n, world_size=world, max_steps=max_steps)
        done = 0
        expected_size = batch
        for epoch in range(epochs):
            expected_size = round(expected_size * dict(schedule).get(epoch, 1))  # the milestone reached now
            loader.set_epoch(epoch)
            loader.set_batch_size(plan.batch_size(epoch), plan.drop_last(epoch))
            sizes = [len(y) for _, y in loader][:max_steps]
            assert plan.batch_size(epoch) == expected_size == sizes[0]
            assert plan.steps_in(epoch) == len(sizes)
            assert plan.first_step(epoch) == done
            for k in range(len(sizes)):
                assert plan.position(done + k) == (epoch, k)
            done += len(sizes)
        assert plan.total == done


def test_the_hand_computed_table_and_the_order_within_an_epoch():
    plan = BatchPlan.build(batch_size=8, batch_schedule=[(1, 2), (2, 1.5)], epochs=3, samples=96)
    assert [plan.steps_in(e) for e in range(3)] == STEPS and plan.total == 22
    assert plan.step_milestones([(1, 0.1), (2, 0.5)]) == ((12, 0.1), (18, 0.5))
    # exact resume relies on this: an epoch's sample order does not depend on the batch size
    data = stripes(96, 1)
    loader = BatchLoader(data, 8, shuffle=True, seed=4, mean=(0.0,) * 3, std=(1.0,) * 3)
    loader.set_epoch(2)
    small = torch.cat([y for _, y in loader])
    loader.set_batch_size(24)
    assert torch.equal(small, torch.cat([y for _, y in loader]))


# ---------------------------------------------------------------- learning rates


def test_step_schedule_with_warmup_equals_torch_linearlr_then_multisteplr():
    plan = BatchPlan.build(batch_size=10, batch_schedule=[(2, 2)], epochs=6, samples=100)  # 10,10,5,5,5,5 steps
    milestones = plan.step_milestones([(3, 0.1), (5, 0.1)])
    assert milestones == ((25, 0.1), (35, 0.1))  # after 3 epochs: 10 + 10 + 5 steps; after 5: 35
    mine = LRSchedule("step", 0.2, plan.total, warmup=0.1, milestones=milestones)
    warm = round(0.1 * plan.total)  # 4 warm-up steps
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / (warm + 1), end_factor=1.0, total_iters=warm)
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[25, 35], gamma=0.1)
    chained = torch.optim.lr_scheduler.ChainedScheduler([ramp, decay])
    for step in range(plan.total):
        assert mine.lr_at(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), step
        opt.step()
        chained.step()


def _record_steps(monkeypatch) -> list[tuple[int, int, float]]:
    """(epoch, batch size, learning rate of every optimizer group) of each step the loop takes."""
    seen: list[tuple[int, int, float]] = []
    original = Trainer._step

    def recording(self, x, y):
        out = original(self, x, y)
        lrs = {g["lr"] for g in self.p.optimizer.param_groups}
        assert len(lrs) == 1
        seen.append((self.pos.epoch, int(x.shape[0]), lrs.pop()))
        return out

    monkeypatch.setattr(Trainer, "_step", recording)
    return seen


def test_a_batch_schedule_changes_the_batch_and_steps_but_not_the_learning_rate(tmp_path, monkeypatch):
    from cnnlab.train.progress import Progress

    seen = _record_steps(monkeypatch)
    bars: list[int] = []
    monkeypatch.setattr(Progress, "start_epoch", lambda self, epoch, epochs, batches, start=0: bars.append(batches))
    fit(SPEC, bundle(), out=tmp_path / "run", schedule="constant", **OPTS)
    assert bars == STEPS  # the progress bar's totals
    assert [s for _, s, _ in seen] == [8] * 12 + [16] * 6 + [24] * 4
    assert [sum(1 for e, _, _ in seen if e == epoch) for epoch in range(3)] == STEPS
    assert {lr for _, _, lr in seen} == {0.01}
    meta = json.loads((tmp_path / "run" / "checkpoints" / "last.json").read_text())
    assert meta["step"] == 22
    saved = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")  # the run folder records the options
    assert saved.batch_schedule == [(1, 2), (2, 1.5)] and saved.schedule.value == "constant"


def test_onecycle_spans_the_true_total_of_steps(tmp_path, monkeypatch):
    """With the batch schedule the run has 22 steps, not 3 x 12: torch's OneCycleLR over 22 is the reference."""
    seen = _record_steps(monkeypatch)
    fit(SPEC, bundle(), out=tmp_path / "run", **OPTS)  # onecycle, warm-up 0.25 (its default)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=22, pct_start=0.25,
                                              anneal_strategy="cos", cycle_momentum=False)
    expected = []
    for _ in range(22):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert [lr for _, _, lr in seen] == pytest.approx(expected, rel=1e-9)


def test_step_decay_lines_up_with_the_batch_schedule_in_a_run(tmp_path, monkeypatch):
    seen = _record_steps(monkeypatch)
    fit(SPEC, bundle(), out=tmp_path / "run", optimizer="sgd", schedule="step", lr_steps="1:0.5,2:0.2",
        **{**OPTS, "lr": 0.1})
    expected = [0.1] * 12 + [0.1 * 0.5] * 6 + [0.1 * 0.5 * 0.2] * 4  # warm-up 0: step's default
    assert [lr for _, _, lr in seen] == pytest.approx(expected, rel=1e-12)


def test_linear_and_sqrt_scaling_formulas():
    cfg = TrainConfig(lr=0.1, batch_size=1024, lr_scaling="linear", lr_reference_batch=256)
    assert peak_lr(cfg) == pytest.approx(0.4)
    assert peak_lr(TrainConfig(lr=0.1, batch_size=1024, lr_scaling="sqrt")) == pytest.approx(0.2)  # ref 256
    assert peak_lr(TrainConfig(lr=0.1, batch_size=100, lr_scaling="sqrt", lr_reference_batch=400)) == pytest.approx(0.05)
    assert peak_lr(TrainConfig(lr=0.1, batch_size=1024)) == 0.1  # no scaling
    # DDP: the batch is per process, scaling follows the global batch (Goyal et al.: the total minibatch)
    assert peak_lr(TrainConfig(lr=0.1, batch_size=128, lr_scaling="linear"), world_size=4) == pytest.approx(0.2)
    # a batch schedule does not rescale: the peak comes from the initial batch
    with_schedule = TrainConfig(lr=0.1, batch_size=128, lr_scaling="linear", epochs=3, batch_schedule="1:4")
    assert peak_lr(with_schedule) == pytest.approx(0.05)


@pytest.mark.parametrize(("scaling", "given"), [("linear", 0.04), ("sqrt", 0.02)])
def test_a_scaled_run_equals_a_run_given_the_scaled_lr(tmp_path, scaling, given):
    """batch 8, reference 32: linear 0.04 x 8/32 and sqrt 0.02 x sqrt(8/32) are both 0.01 (exact in binary)."""
    opts = {**OPTS, "epochs": 1, "batch_schedule": None}
    fit(SPEC, bundle(), out=tmp_path / "plain", **opts)
    fit(SPEC, bundle(), out=tmp_path / "scaled", **{**opts, "lr": given}, lr_scaling=scaling, lr_reference_batch=32)
    ref, _ = ckpt.read_weights(tmp_path / "plain" / "checkpoints" / "last")
    got, _ = ckpt.read_weights(tmp_path / "scaled" / "checkpoints" / "last")
    for name in ref:
        assert torch.equal(ref[name], got[name]), name


def test_warmup_default_is_the_schedules_own():
    shape = (1, 28, 28)
    assert TrainConfig().resolve(shape).warmup == 0.25  # onecycle, as before
    assert TrainConfig(schedule="cosine").resolve(shape).warmup == 0.25
    assert TrainConfig(epochs=3, schedule="step", lr_steps="1:0.1").resolve(shape).warmup == 0.0
    assert TrainConfig(epochs=3, schedule="step", lr_steps="1:0.1", warmup=0.1).resolve(shape).warmup == 0.1


# ---------------------------------------------------------------- exact resume across the change


class Killed(BaseException):
    """Stands for SIGKILL: raised at a test point, nothing after it runs (no state is saved)."""


def _kill_at(monkeypatch, tag: str) -> None:
    def point(name: str, **where: object) -> None:
        if " ".join([name] + [f"{k}={v}" for k, v in where.items()]) == tag:
            raise Killed(tag)

    monkeypatch.setattr(trainer_mod, "point", point)


def _stop_after(monkeypatch, step: int) -> None:
    """A Ctrl-C right after optimizer step ``step`` (1-based count), as the SIGINT handler would."""
    original = Trainer._step

    def step_then_stop(self, x, y):
        out = original(self, x, y)
        if self.pos.step + 1 == step:
            self.stop.requested = True
        return out

    monkeypatch.setattr(Trainer, "_step", step_then_stop)


@pytest.mark.parametrize("cut", [
    "kill:checkpoint epoch=1 after=resume",  # epoch 1 saved; the resumed run starts epoch 2 with batch 16
    "kill:step epoch=1 batch=5",  # mid-epoch after the change: back to the step-16 checkpoint (epoch 2, batch 4)
    "kill:step epoch=2 batch=1",  # right after the second change: back to the end of epoch 2
    "stop:13",  # Ctrl-C right after the first batch of 16
])
def test_resume_across_a_batch_size_change_is_bit_identical(tmp_path, monkeypatch, cut):
    fit(SPEC, bundle(), out=tmp_path / "ref", **OPTS)
    kind, where = cut.split(":", 1)
    with monkeypatch.context() as m:
        if kind == "kill":
            _kill_at(m, where)
            with pytest.raises(Killed):
                fit(SPEC, bundle(), out=tmp_path / "cut", **OPTS)
        else:
            _stop_after(m, int(where))
            with pytest.raises(TrainingInterrupted):
                fit(SPEC, bundle(), out=tmp_path / "cut", **OPTS)
    resume_opts = {k: v for k, v in OPTS.items() if k in ("threads", "quiet")}
    if cut == "stop:13":  # a resume that would change the batch schedule is refused, nothing written
        with pytest.raises(CnnlabError, match="--batch-schedule"):
            fit(tmp_path / "cut", bundle(), resume=True, batch_schedule="1:2", **resume_opts)
    fit(tmp_path / "cut", bundle(), resume=True, **resume_opts)
    ref, _ = ckpt.read_weights(tmp_path / "ref" / "checkpoints" / "last")
    got, _ = ckpt.read_weights(tmp_path / "cut" / "checkpoints" / "last")
    assert json.loads((tmp_path / "cut" / "checkpoints" / "last.json").read_text())["step"] == 22
    for name in ref:
        assert torch.equal(ref[name], got[name]), name
    rows = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    ref_rows = [json.loads(x) for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in ref_rows]


# ---------------------------------------------------------------- user errors


@pytest.mark.parametrize(("extra", "needle"), [
    (["--schedule", "step"], "schedule=step needs lr_steps"),
    (["--lr-steps", "2:0.1"], "lr_steps is used only by --schedule step"),
    (["--batch-schedule", "2:0.3"], "batch size 128 x 0.3 = 38.4 is not a whole number"),
    (["--batch-schedule", "5:2"], "must increase strictly and lie in 1..4"),
    (["--batch-schedule", "2:2,2:2"], "must increase strictly"),
    (["--batch-schedule", "two:2"], "is not EPOCH:FACTOR"),
    (["--lr-scaling", "cubic"], "invalid choice"),
    (["--lr-reference-batch", "0"], "must be a whole number >= 1"),
])
def test_bad_options_exit_2_with_a_message(extra, needle, capsys):
    code = None
    try:
        code = main(["train", "lenet5", "--data", "sample", "--epochs", "5", *extra, "--dry-run"])
    except SystemExit as exc:  # argparse's own errors (choices, checked numbers)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_dry_run_and_config_file_accept_both_spellings(tmp_path, capsys):
    import yaml

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("epochs: 30\nbatch_schedule: [[10, 5], [20, 5]]\nschedule: step\nlr_steps: '10:0.2,20:0.2'\n")
    assert main(["train", "lenet5", "--data", "sample", "--config", str(recipe), "--lr-scaling", "sqrt",
                 "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["batch_schedule"] == [[10, 5], [20, 5]] and resolved["lr_steps"] == [[10, 0.2], [20, 0.2]]
    assert resolved["lr_scaling"] == "sqrt" and resolved["lr_reference_batch"] == 256 and resolved["warmup"] == 0.0
    cfg = TrainConfig.from_dict(resolved)
    assert cfg.batch_schedule == [(10, 5), (20, 5)] and math.isclose(cfg.lr_steps[1][1], 0.2)  # type: ignore[index]


def test_the_memory_check_uses_the_largest_scheduled_batch(tmp_path, monkeypatch):
    """A run that fits at batch 8 but not at 8 x 1000 = 8000 is refused before anything is written."""
    import importlib

    from cnnlab.analysis import analyze

    limits = importlib.import_module("cnnlab.train.limits")
    memory = analyze(SPEC).memory
    small, large = limits.step_bytes(memory, 8), limits.step_bytes(memory, 8000)
    monkeypatch.setattr(limits, "_address_space_left", lambda: None)
    monkeypatch.setattr(limits, "_mem_available", lambda: int((small + large) / 2 / limits.USABLE_SHARE))
    fit(SPEC, bundle(), out=tmp_path / "fits", **{**OPTS, "epochs": 1, "batch_schedule": None})
    with pytest.raises(CnnlabError, match="at batch size 8000 needs about"):
        fit(SPEC, bundle(), out=tmp_path / "grows", **{**OPTS, "batch_schedule": "1:1000"})
    assert not (tmp_path / "grows").exists()


def test_none_clears_a_config_files_schedule():
    base = TrainConfig(epochs=5, batch_schedule="2:2")
    assert base.replace(batch_schedule="none").batch_schedule is None
    assert TrainConfig.from_dict({"epochs": 5, "batch_schedule": "off"}).batch_schedule is None


def test_lr_find_runs_at_the_initial_batch_size_and_ignores_the_schedules(monkeypatch):
    import importlib

    from cnnlab.model import build

    lr_find_mod = importlib.import_module("cnnlab.train.lr_find")  # `from cnnlab.train import` gives the function

    sizes: list[int] = []
    original = lr_find_mod._batches
    monkeypatch.setattr(lr_find_mod, "_batches", lambda data, batch, *a: sizes.append(batch) or original(data, batch, *a))
    cfg = TrainConfig(epochs=3, batch_size=8, batch_schedule="1:2", schedule="step", lr_steps="2:0.1",
                      lr_scaling="linear")
    data = bundle()
    result = lr_find_mod.lr_find(build(SPEC), data.train, mean=data.mean, std=data.std, config=cfg, num_iter=6,
                                 device="cpu")
    assert sizes == [8] and len(result.lrs) == 6


def test_the_start_summary_shows_the_scaled_lr_and_the_batch_schedule(tmp_path, monkeypatch):
    from cnnlab.train.progress import Progress

    infos: list[tuple[str, dict]] = []
    monkeypatch.setattr(Progress, "info", lambda self, key, **values: infos.append((key, values)))
    fit(SPEC, bundle(), out=tmp_path / "run", lr_scaling="linear", lr_reference_batch=32, **{**OPTS, "epochs": 2,
        "batch_schedule": "1:2"})
    found = dict(infos)
    assert found["train.lr_scaled"]["lr"] == "0.0025" and found["train.lr_scaled"]["given"] == "0.0100"
    assert "learning rate 0.0025" in found["train.recipe"]["batch"]
    assert found["train.batch_schedule"]["total"] == "18"  # 12 steps of 8, then 6 of 16
    assert found["train.batch_schedule"]["stretches"] == "epoch 1: batch 8, 12 steps; epoch 2: batch 16, 6 steps"
