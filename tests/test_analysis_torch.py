"""The analysis against PyTorch itself: every layer kind's shape and parameter count, and the zoo counts.

Run: .venv/bin/pytest tests/test_analysis_torch.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis import analyze
from cnnlab.model import build


def layer_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Per-sample output shape of every ``model.layers[i]`` from a real forward pass."""
    shapes: list[tuple[int, ...]] = []
    handles = [m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:]))) for m in model.layers]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


def check_against_torch(spec: dict[str, Any]) -> None:
    a = analyze(spec)
    model = build(spec)
    x = torch.randn(2, *spec["input"])
    assert layer_shapes(model, x) == [tuple(r.output_shape) for r in a.layers]
    assert sum(p.numel() for p in model.parameters()) == a.total_params
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == a.trainable_params
    assert sum(b.numel() for b in model.buffers() if b.is_floating_point() or b.dtype == torch.long) - _index_buffers(
        model
    ) == a.total_buffers
    for i, row in enumerate(a.layers):
        assert sum(p.numel() for p in model.layers[i].parameters()) == row.params, f"layer {i}"


def _index_buffers(model: nn.Module) -> int:
    """Non-persistent index buffers of TableConv2d are bookkeeping, not state."""
    return sum(b.numel() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1].startswith("index_"))


CASES = {
    "conv_valid": [{"conv": 8}, {"output": 3}],
    "conv_same_stride2_odd": [{"conv": {"filters": 4, "kernel": 3, "stride": 2, "padding": "same"}}, {"output": 2}],
    "conv_same_even_kernel": [{"conv": {"filters": 4, "kernel": [4, 2], "padding": "same"}}, {"output": 2}],
    "conv_dilation_groups_nobias": [
        {"conv": {"filters": 6, "kernel": 3, "dilation": 2, "groups": 3, "bias": False, "padding": [1, 2]}},
        {"output": 2},
    ],
    "pool_max_avg_ceil": [{"pool": {"size": 3, "stride": 2, "ceil": True}}, {"pool": {"kind": "avg", "size": 2}},
                          {"output": 2}],
    "pool_same": [{"pool": {"size": 2, "padding": "same"}}, {"pool": {"kind": "avg", "size": 3, "stride": 2,
                                                                       "padding": "same"}}, {"output": 2}],
    "global_pool_dense": [{"conv": 4}, {"global_pool": "max"}, {"dense": 5}, {"output": 2}],
    "implicit_flatten": [{"conv": 4}, {"dense": {"units": 7, "activation": "tanh", "bias": False}}, {"output": 2}],
    "batchnorm_2d_1d": [{"conv": 4}, {"batchnorm": "relu"}, "flatten", {"dense": 6}, "batchnorm", {"output": 2}],
    "dropout_activation_lrn": [{"conv": 6}, {"dropout": 0.3}, {"activation": "leaky_relu"}, {"lrn": 3},
                               {"activation": "gelu"}, {"output": 2}],
    "residual_identity_and_projection": [
        {"conv": {"filters": 8, "padding": 1}},
        {"residual": [{"conv": {"filters": 8, "padding": "same"}}, {"conv": {"filters": 8, "padding": 1}}]},
        {"residual": {"layers": [{"conv": {"filters": 16, "stride": 2, "padding": 1}}, "batchnorm"],
                      "shortcut": "conv"}},
        {"global_pool": "avg"}, {"output": 2},
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_kind_matches_pytorch(name: str) -> None:
    check_against_torch({"name": name, "input": [3, 13, 11], "layers": CASES[name]})


def test_issue_worked_examples() -> None:
    a = analyze({"input": [32, 50, 50], "layers": [{"conv": {"filters": 64, "padding": 1}}, {"dense": 10},
                                                    {"output": 2}]})
    assert a.layers[0].params == 18_496  # (3·3·32+1)·64, the issue's worked example
    assert a.layers[0].output_shape == (64, 50, 50)  # 50×50, 3×3, padding 1 -> 50×50
    n = 64 * 50 * 50
    assert a.layers[1].params == (n + 1) * 10  # (n+1)·m
    assert "18,496" in a.layers[0].formula and "(3·3·32+1)·64" in a.layers[0].formula
    assert "64·50·50" in a.layers[1].notes[0]  # the derived in_features is explained


# published counts: keras.io, torchvision, the papers (see the YAML files for sources)
ZOO = {
    "keras-mnist": 34_826,
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "alexnet-2012": 60_965_224,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    # counted by hand from the YAML (conv (k·k·Cin+1)·Cout, batchnorm 2·C, output (C+1)·classes):
    # 320 + 64 + 18,496 + 128 + 55,392 + 192 + 83,040 + 192 + 970
    "mnist-modern": 158_794,
    # 896 + 64 + 18,496 + 128 + 73,856 + 256 + 147,584 + 256 + 295,168 + 512 + 514
    "cats-scratch": 537_730,
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_counts_analysis_and_built_model(name: str) -> None:
    a = analyze(name)
    assert a.total_params == ZOO[name]
    with torch.device("meta"):
        model = build(name)
    assert sum(p.numel() for p in model.parameters()) == ZOO[name]


def test_lenet5_1998_layer_counts_from_the_paper() -> None:
    a = analyze("lenet5-1998")
    # C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164, RBF 84·10 = 840 (fixed)
    assert [r.params for r in a.layers] == [156, 12, 1_516, 32, 48_120, 10_164, 840]
    assert a.trainable_params == 60_000  # "only 60,000 trainable parameters" (LeCun et al. 1998)
    model = build("lenet5-1998")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 60_000
    assert layer_shapes(model, torch.randn(2, 1, 32, 32))[2] == (16, 10, 10)


def test_resnet18_matches_torchvision_structure_shapes() -> None:
    a = analyze("resnet18")
    assert [r.output_shape for r in a.layers if r.kind == "residual"][::2] == [
        (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert a.total_buffers == 9_620  # torchvision resnet18: running mean/var + num_batches_tracked


def test_keras_same_padding_agrees_with_pytorch_numerically() -> None:
    """'same' with stride 2 on an even input pads bottom/right only (TensorFlow's rule)."""
    spec = {"input": [1, 6, 6], "layers": [{"conv": {"filters": 1, "kernel": 3, "stride": 2, "padding": "same",
                                                     "activation": "none", "bias": False}}, {"output": 2}]}
    model = build(spec)
    conv = model.layers[0].conv
    x = torch.randn(1, 1, 6, 6)
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.allclose(model.layers[0](x), expected)
    assert analyze(spec).layers[0].resolved["padding"] == (0, 1, 0, 1)


def test_summary_of_any_module_counts_tied_parameters_once() -> None:
    class Tied(nn.Module):
        """An embedding-style tie (same Parameter in two Linear layers) and a module used twice."""

        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(12, 12)
            self.dec = nn.Linear(12, 12, bias=False)
            self.dec.weight = self.enc.weight  # tied: one Parameter, two modules
            self.head = nn.Linear(12, 12)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.head(self.dec(self.enc(x.flatten(1)))))  # head runs twice

    net = Tied()
    a = cnnlab.summary(net, (1, 3, 4), verbose=False)
    assert a.total_params == sum(p.numel() for p in net.parameters()) == 144 + 12 + 144 + 12
    assert [r.params for r in a.layers] == [156, 0, 156, 0]  # counted where first used
    assert [r.output_shape for r in a.layers] == [(12,)] * 4
    assert a.total_macs == 4 * 144  # every call multiplies, shared or not


def test_summary_of_lenet1998_with_connection_table_on_meta() -> None:
    model = build("lenet5-1998")
    s = cnnlab.summary(model, (1, 32, 32), verbose=False)
    assert s.total_params == 60_840 and s.trainable_params == 60_000
    assert next(model.parameters()).device.type == "cpu"  # the user's module is untouched


def test_summary_of_built_model_equals_analysis() -> None:
    model = build("book-cnn")
    s = cnnlab.summary(model, (3, 50, 50), verbose=False)
    a = analyze("book-cnn")
    assert s.total_params == a.total_params
    assert s.total_macs == a.total_macs


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_example_builds_and_matches(path: Path) -> None:
    import yaml

    check_against_torch(yaml.safe_load(path.read_text()))


def test_summary_counts_parameters_of_modules_never_called() -> None:
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 2)
            self.spare = nn.Linear(4, 3)  # defined, never called

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x.flatten(1))

    net = Unused()
    a = cnnlab.summary(net, (1, 2, 2), verbose=False)
    assert a.total_params == sum(p.numel() for p in net.parameters()) == 10 + 15
    assert a.warnings and "15" in a.warnings[0]
