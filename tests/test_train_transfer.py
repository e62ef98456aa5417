"""--init-from: torchvision's ResNet layout loads into the zoo networks and computes the same function;
the head is swapped; shape mismatches are named; frozen layers really do not move; discriminative
learning rates reach the optimizer; pickles are refused; the run records the weights' normalisation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from _tv_resnet import randomise_bn, resnet18, resnet50
from cnnlab.data import DataBundle, ImageSet
from cnnlab.errors import CnnlabError
from cnnlab.model import build
from cnnlab.spec import load_spec
from cnnlab.train import checkpoint as ckpt
from cnnlab.train import load_run
from cnnlab.train.finetune import FreezeSchedule, lr_scales, param_groups
from cnnlab.train.init_from import adapt_head, apply, match, resolve
from cnnlab.workflows import train
from cnnlab.zoo import pretrained

TINY = {
    "name": "tinybn", "input": [1, 8, 8],
    "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1, "activation": "none"}}, {"batchnorm": "relu"},
               {"pool": 2}, {"dense": 8}, {"output": 2}],
}  # layers: 0 conv (2 tensors), 1 batchnorm (5), 2 pool, 3 dense (2), 4 output = head (2)


@pytest.fixture()
def one_thread():
    """Tiny models run fastest on one thread, and the shared machine is often busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_resnet(name: str, classes: int, size: int = 32):
    spec = dataclasses.replace(load_spec(name), input=(3, size, size))
    return adapt_head(spec, classes)[0]


def test_torchvision_resnet18_state_dict_gives_the_same_outputs(tmp_path: Path, one_thread: None) -> None:
    torch.manual_seed(0)
    reference = resnet18(num_classes=10)
    randomise_bn(reference)
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / "r18.pth")  # a plain state dict, weights_only-loadable
    model = build(small_resnet("resnet18", 10)).eval()
    report = apply(model, resolve(str(tmp_path / "r18.pth")))
    assert report.counts() == {"loaded": 122, "replaced": 0, "fresh": 0}  # 20 convs+fc: 21 + 2, 20 BN x 5
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)


def test_resnet50_key_map_covers_every_tensor_with_equal_shapes() -> None:
    with torch.device("meta"):
        reference = resnet50(num_classes=1000)
        model = build("resnet50")
    names = pretrained.torchvision_resnet_map(reference.state_dict())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(names.values()) == sorted(ours)
    assert all(tuple(t.shape) == ours[names[k]] for k, t in reference.state_dict().items())


def test_head_is_replaced_when_the_class_count_differs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = resnet18(num_classes=1000)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "r.safetensors"))
    torch.manual_seed(2)
    model = build(small_resnet("resnet18", 5))
    fresh_head = model.layers[-1].linear.weight.detach().clone()
    report = apply(model, resolve(str(tmp_path / "r.safetensors")))
    assert report.counts() == {"loaded": 120, "replaced": 2, "fresh": 0}
    assert {r.name for r in report.rows if r.status == "replaced"} == {"layers.12.linear.weight", "layers.12.linear.bias"}
    assert torch.equal(model.layers[-1].linear.weight, fresh_head)  # the head keeps its fresh init
    assert torch.equal(model.layers[0].conv.weight, reference.conv1.weight)
    assert torch.equal(model.layers[9].shortcut[1].running_var, reference.layer4[0].downsample[1].running_var)


def test_a_shape_mismatch_below_the_head_names_the_layer_and_both_shapes() -> None:
    from cnnlab.train.init_from import SourceWeights

    model = build(TINY)
    tensors = dict(model.state_dict())
    tensors["layers.3.linear.weight"] = torch.zeros(8, 99)
    with pytest.raises(CnnlabError) as err:
        match(model, SourceWeights("x.safetensors", "safetensors", Path("x"), tensors))
    text = str(err.value)
    assert "layer 3 (dense)" in text and "(8, 99)" in text and "(8, 64)" in text


def test_pickle_needing_file_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # unpickling would create the marker file
            return (open, (str(marker), "w"))

    torch.save({"w": torch.ones(2), "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CnnlabError) as err:
        resolve(str(tmp_path / "evil.pt"))
    assert not marker.exists()
    assert "save_file" in str(err.value) and "evil.safetensors" in str(err.value)


def test_lr_scales_are_geometric_from_ratio_to_one() -> None:
    groups = param_groups(build(TINY), 0.01, 0.01)
    by_layer = {g["layer"]: g["lr_scale"] for g in groups}
    assert sorted(by_layer) == [0, 1, 3, 4]  # the pool holds no parameters
    assert by_layer == pytest.approx({0: 0.01, 1: 0.01 ** (2 / 3), 3: 0.01 ** (1 / 3), 4: 1.0})
    assert lr_scales(1, 0.1) == [1.0]
    # decay only on matrices/kernels: conv weight, dense weight, output weight
    assert sum(p.numel() for g in groups if g["weight_decay"] for p in g["params"]) == 36 + 512 + 16  # conv 4x1x3x3, dense 64x8 (4 maps of 4x4 after the pool), output 8x2


def test_frozen_parameters_and_batchnorm_statistics_do_not_change(one_thread: None) -> None:
    torch.manual_seed(0)
    model = build(TINY)
    schedule = FreezeSchedule(model, freeze_epochs=1)
    opt = torch.optim.AdamW(param_groups(model, 0.1, 0.1), lr=0.05)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 1, 8, 8) * 3 + 1, torch.arange(16) % 2

    def steps(epoch: int) -> None:
        model.train()
        schedule.start_epoch(epoch)
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    steps(0)
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"layers.4.linear.weight", "layers.4.linear.bias"}  # only the head (AdamW decay included)
    assert schedule.counts(0) == (16 + 2, 36 + 4 + 8 + 512 + 8)
    steps(1)
    moved = {k for k in before if not torch.equal(before[k], model.state_dict()[k])}
    assert moved == set(before)  # every tensor, running statistics included


# ----------------------------------------------------------------------------- end to end (tiny)
def three_classes(n: int, seed: int) -> ImageSet:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 90, size=(n, 1, 8, 8))
    images[labels == 0, :, ::2, :] += 150
    images[labels == 1, :, :, ::2] += 150
    images[labels == 2, :, 2:6, 2:6] += 150
    return ImageSet(images.astype(np.uint8), labels, ["rows", "cols", "box"], [f"gen:{seed}:{i}" for i in range(n)])


def bundle() -> DataBundle:
    tr, va = three_classes(96, 1), three_classes(30, 2)
    return DataBundle(tr, va, None, ["rows", "cols", "box"], (0.3,), (0.2,), (1, 8, 8), source="gen")


FAST = {"batch_size": 32, "device": "cpu", "threads": 1, "augment": False, "quiet": True, "report": False}


def source_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(7)
    src = build(TINY)
    with torch.no_grad():
        src.layers[1].bn.running_mean.fill_(0.25)
        src.layers[1].bn.running_var.fill_(2.0)
    weights = {k: v.clone().contiguous() for k, v in src.state_dict().items()}
    save_file(weights, str(tmp_path / "src.safetensors"))
    return tmp_path / "src.safetensors", weights


def test_frozen_epoch_keeps_the_body_bit_for_bit_and_swaps_the_head(tmp_path: Path) -> None:
    path, src = source_file(tmp_path)
    run = train(TINY, bundle(), out=tmp_path / "run", epochs=1, init_from=str(path), freeze_epochs=1, **FAST)
    assert run is not None
    weights, _ = ckpt.read_weights(tmp_path / "run" / "checkpoints" / "last")
    for name, tensor in src.items():
        if not name.startswith("layers.4."):
            assert torch.equal(weights[name], tensor), name
    assert weights["layers.4.linear.weight"].shape == (3, 8)  # 3 classes in the data, 2 in the source
    record = json.loads((tmp_path / "run" / "init_from.json").read_text())
    assert record["counts"] == {"loaded": 9, "replaced": 2, "fresh": 0}
    assert run.spec.layers[-1].classes == 3


def test_fine_tune_from_a_run_folder_uses_its_normalisation_and_layer_rates(tmp_path: Path) -> None:
    path, src = source_file(tmp_path)
    first = train(TINY, bundle(), out=tmp_path / "a", epochs=1, init_from=str(path), **FAST)
    assert first is not None
    other = bundle()
    other = dataclasses.replace(other, mean=(0.6,), std=(0.1,))  # the new data's own statistics
    second = train(TINY, other, out=tmp_path / "b", epochs=2, init_from=str(tmp_path / "a"), freeze_epochs=1,
                   lr_ratio=0.01, **FAST)
    assert second is not None
    assert second.mean == first.mean == (0.3,) and second.data["pretrained"]["source"] == str(tmp_path / "a")
    moved, _ = ckpt.read_weights(tmp_path / "b" / "checkpoints" / "last")
    assert not torch.equal(moved["layers.0.conv.weight"], src["layers.0.conv.weight"])  # unfrozen in epoch 2
    state = ckpt.read_state(tmp_path / "b" / "checkpoints" / "resume.safetensors")
    lrs = {g["layer"]: g["lr"] for g in state.optimizer["param_groups"]}
    assert lrs[0] / lrs[4] == pytest.approx(0.01) and lrs[3] / lrs[4] == pytest.approx(0.01 ** (1 / 3))


def test_named_set_from_the_cache_records_its_normalisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, src = source_file(tmp_path)
    (tmp_path / "data" / "weights").mkdir(parents=True)
    file = tmp_path / "data" / "weights" / "tiny-test.pth"
    torch.save(src, file)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "data"))
    prefix = hashlib.sha256(file.read_bytes()).hexdigest()[:8]
    entry = pretrained.PretrainedSet("tinybn:test", "tinybn", "http://127.0.0.1:9/tiny-test.pth", "tiny-test.pth",
                                     prefix, (0.5,), (0.25,), (1, 8, 8), 2, "cnnlab", "test set")
    monkeypatch.setitem(pretrained.SETS, "tinybn:test", entry)
    run = train(TINY, bundle(), out=tmp_path / "run", epochs=1, init_from="tinybn:test", **FAST)
    assert run is not None
    loaded = load_run(tmp_path / "run")
    assert loaded.mean == (0.5,) and loaded.std == (0.25,)
    pixels = loaded.preprocess(np.full((1, 1, 8, 8), 255, dtype=np.uint8))
    assert torch.allclose(pixels, torch.full((1, 1, 8, 8), 2.0))  # (1 - 0.5) / 0.25
    assert loaded.data["pretrained"]["input_size"] == [1, 8, 8]


def test_freezing_without_init_from_is_refused() -> None:
    from cnnlab.train import TrainConfig

    with pytest.raises(CnnlabError, match="freeze_epochs"):
        TrainConfig(freeze_epochs=2)
    assert TrainConfig(init_from="x").resolve((1, 8, 8)).freeze_epochs == 1
    assert TrainConfig().resolve((1, 8, 8)).lr_ratio == 1.0


def test_schedule_restarts_when_the_body_unfreezes() -> None:
    from cnnlab.train.schedule import LRSchedule

    model = build(TINY)
    two = FreezeSchedule(model, freeze_epochs=2).lr_schedule(LRSchedule("onecycle", 0.01, 100, 0.25), 10)
    assert two.lr_at(0) == pytest.approx(0.01 / 25)  # one-cycle starts at peak / 25 ...
    assert two.lr_at(19) == pytest.approx(0.01 / 25 / 1e4)  # ... ends the frozen phase at start / 1e4
    assert two.lr_at(20) == pytest.approx(0.01 / 25)  # and starts again when everything trains
    assert two.lr_at(99) == pytest.approx(0.01 / 25 / 1e4)
    base = LRSchedule("onecycle", 0.01, 100, 0.25)
    assert FreezeSchedule(model, freeze_epochs=0).lr_schedule(base, 10) is base


def test_a_run_with_other_classes_gets_a_new_head_even_with_the_same_count(tmp_path: Path) -> None:
    path, _ = source_file(tmp_path)
    first = train(TINY, bundle(), out=tmp_path / "a", epochs=1, init_from=str(path), **FAST)
    assert first is not None
    other = bundle()
    names = ["x", "y", "z"]
    other = dataclasses.replace(other, classes=names, train=dataclasses.replace(other.train, classes=names),
                                val=dataclasses.replace(other.val, classes=names))
    train(TINY, other, out=tmp_path / "b", epochs=1, init_from=str(tmp_path / "a"), **FAST)
    record = json.loads((tmp_path / "b" / "init_from.json").read_text())
    assert record["counts"] == {"loaded": 9, "replaced": 2, "fresh": 0}
    train(TINY, bundle(), out=tmp_path / "c", epochs=1, init_from=str(tmp_path / "a"), **FAST)
    assert json.loads((tmp_path / "c" / "init_from.json").read_text())["counts"]["loaded"] == 11


def test_resume_keeps_the_pretrained_normalisation_and_the_freeze_schedule(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A fine-tuning run interrupted (Ctrl-C) during its frozen phase resumes with the weights'
    normalisation and the same freeze schedule: its third epoch unfreezes the body."""
    import os
    import signal

    from cnnlab.train import TrainingInterrupted

    data = dataclasses.replace(bundle(), mean=(0.6,), std=(0.1,))
    three = dict(TINY, layers=[*TINY["layers"][:-1], {"output": 3}])
    first = train(three, bundle(), out=tmp_path / "a", epochs=1, **FAST)  # normalisation (0.3,), (0.2,)
    assert first is not None

    def ctrl_c_in_epoch_two(name: str, **where: object) -> None:
        if name == "step" and where.get("epoch") == 1 and where.get("batch") == 0:
            os.kill(os.getpid(), signal.SIGINT)  # the trainer saves its state and stops

    import importlib

    monkeypatch.setattr(importlib.import_module("cnnlab.train.trainer"), "point", ctrl_c_in_epoch_two)
    with pytest.raises(TrainingInterrupted):
        train(TINY, data, out=tmp_path / "b", epochs=3, init_from=str(tmp_path / "a"), freeze_epochs=2, **FAST)
    monkeypatch.undo()
    frozen, _ = ckpt.read_weights(tmp_path / "b" / "checkpoints" / "last")
    run = train(tmp_path / "b", data, resume=True)
    assert run is not None and run.mean == (0.3,) and run.std == (0.2,)
    after, _ = ckpt.read_weights(tmp_path / "b" / "checkpoints" / "last")
    assert len(run.metrics) == 3
    assert not torch.equal(after["layers.0.conv.weight"], frozen["layers.0.conv.weight"])  # epoch 3 unfrozen


def test_an_official_file_given_by_path_brings_its_normalisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, src = source_file(tmp_path)
    file = tmp_path / "tiny-test.pth"
    torch.save(src, file)
    prefix = hashlib.sha256(file.read_bytes()).hexdigest()[:8]
    entry = pretrained.PretrainedSet("tinybn:test", "tinybn", "http://127.0.0.1:9/tiny-test.pth", "tiny-test.pth",
                                     prefix, (0.5,), (0.25,), (1, 8, 8), 2, "cnnlab", "test set")
    monkeypatch.setitem(pretrained.SETS, "tinybn:test", entry)
    assert resolve(str(file)).mean == (0.5,)
    (tmp_path / "other").mkdir()
    torch.save({**src, "extra": torch.zeros(1)}, tmp_path / "other" / "tiny-test.pth")  # same name, other bytes
    assert resolve(str(tmp_path / "other" / "tiny-test.pth")).mean is None


@pytest.mark.slow
def test_torchvision_resnet50_state_dict_gives_the_same_outputs(one_thread: None) -> None:
    from cnnlab.train.init_from import SourceWeights, _named_source

    torch.manual_seed(0)
    reference = resnet50(num_classes=7)
    randomise_bn(reference)
    reference.eval()
    weights: SourceWeights = _named_source("r50", "state_dict", Path("r50"), dict(reference.state_dict()))
    model = build(small_resnet("resnet50", 7)).eval()
    assert apply(model, weights).counts() == {"loaded": 320, "replaced": 0, "fresh": 0}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-4)
