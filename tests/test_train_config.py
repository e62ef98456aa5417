"""TrainConfig: YAML round trip, typed coercion, errors that name the option, resolve(); LR schedules
against torch's own OneCycleLR."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.train.config import Optimizer, Precision, Schedule, TrainConfig
from cnnlab.train.schedule import LRSchedule


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(epochs=3, optimizer="sgd", lr=0.1, schedule="cosine", hflip=True, patience=2)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    back = TrainConfig.from_yaml(path)
    assert back == cfg
    assert back.optimizer is Optimizer.SGD and back.schedule is Schedule.COSINE


def test_strings_from_cli_and_yaml_are_coerced():
    cfg = TrainConfig.from_dict({"epochs": "4", "lr": "1e-3", "augment": "no", "precision": "BF16", "batch-size": 64})
    assert (cfg.epochs, cfg.lr, cfg.augment, cfg.precision, cfg.batch_size) == (4, 0.001, False, Precision.BF16, 64)


@pytest.mark.parametrize(("values", "needle"), [
    ({"epoch": 3}, "did you mean 'epochs'"),
    ({"optimizer": "adamm"}, "did you mean 'adamw'"),
    ({"schedule": "linear"}, "onecycle, cosine, constant"),
    ({"epochs": 0}, "epochs=0"),
    ({"lr": -1}, "lr=-1"),
    ({"epochs": 2.5}, "epochs=2.5 is not a int"),
    ({"val_split": 1.0}, "val_split"),
])
def test_bad_values_name_the_option(values, needle):
    with pytest.raises(CnnlabError) as info:
        TrainConfig.from_dict(values)
    assert needle in str(info.value)


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    with pytest.raises(CnnlabError, match=r"bad\.yaml: unknown option 'epochz'"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(CnnlabError, match="cannot read config file"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_flags_override_file_but_unset_flags_do_not():
    base = TrainConfig(epochs=7, lr=0.01)
    out = base.replace(epochs=2, lr=None)
    assert (out.epochs, out.lr) == (2, 0.01)


def test_resolve_fills_auto_values():
    grey = TrainConfig().resolve((1, 28, 28))
    colour = TrainConfig(optimizer="sgd").resolve((3, 150, 150))
    assert (grey.lr, grey.weight_decay, grey.translate, grey.hflip) == (3e-3, 0.01, 2, False)
    assert (colour.lr, colour.translate, colour.hflip) == (0.05, 12, True)


@pytest.mark.parametrize(("total", "warmup"), [(100, 0.3), (37, 0.25), (5, 0.25), (1000, 0.1)])
def test_onecycle_matches_torch(total, warmup):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=total, pct_start=warmup,
                                              cycle_momentum=False)
    mine = LRSchedule("onecycle", 0.01, total, warmup)
    for step in range(total):
        assert mine.lr_at(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        opt.step()
        if step < total - 1:
            ref.step()


def test_cosine_and_constant_by_hand():
    cos = LRSchedule("cosine", 1.0, total=10, warmup=0.2)  # warm-up steps 0, 1; decay over steps 2..10
    assert [cos.lr_at(s) for s in (0, 1)] == pytest.approx([1 / 3, 2 / 3])
    assert cos.lr_at(2) == pytest.approx(1.0)
    assert cos.lr_at(6) == pytest.approx(0.5)  # halfway through the decay: (1 + cos(pi/2)) / 2
    assert cos.lr_at(10) == pytest.approx(0.0, abs=1e-12)
    assert LRSchedule("constant", 0.3, total=5).lr_at(4) == 0.3
