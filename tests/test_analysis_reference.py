"""The analysis against references that never go through its own numbers.

The shape tests in ``test_analysis_torch.py`` run the model that ``build`` makes, and ``build`` takes
its padding from the analysis: for ``padding: same`` that compares the analysis with itself. Here
the reference is PyTorch's own rules (layers made directly from the spec's numbers, torch's
``padding="same"``), the TensorFlow/Keras definition of ``same`` (``ceil(n / stride)``), hand-worked
cases, and ``torch.utils.flop_counter.FlopCounterMode`` for the MAC totals.

Run: .venv/bin/pytest tests/test_analysis_reference.py
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.analysis import analyze
from cnnlab.errors import SpecError
from cnnlab.model import build


def _conv_spec(c: int, size: int, k: int, kernel: int, stride: int, padding: object, dilation: int) -> dict:
    return {"input": [c, size, size], "layers": [
        {"conv": {"filters": k, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                  "activation": "none"}}, {"output": 2}]}


@settings(max_examples=50, deadline=None, derandomize=True)
@given(c=st.integers(1, 3), size=st.integers(1, 20), kernel=st.integers(1, 5), stride=st.integers(1, 3),
       pad=st.integers(0, 3), dilation=st.integers(1, 2))
def test_conv_shape_equals_a_torch_conv_made_from_the_spec_numbers(c: int, size: int, kernel: int, stride: int,
                                                                     pad: int, dilation: int) -> None:
    conv = torch.nn.Conv2d(c, 4, kernel, stride, pad, dilation)  # torch's rule, not ours
    try:
        expected = tuple(conv(torch.zeros(1, c, size, size)).shape[1:])
    except RuntimeError:
        assume(False)
        return
    a = analyze(_conv_spec(c, size, 4, kernel, stride, pad, dilation))
    assert a.layers[0].output_shape == expected
    assert a.layers[0].params == sum(p.numel() for p in conv.parameters())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(size=st.integers(2, 20), kernel=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2),
       kind=st.sampled_from(["max", "avg"]))
def test_pool_shape_equals_torch_pooling(size: int, kernel: int, stride: int, pad: int, kind: str) -> None:
    assume(pad <= kernel // 2)  # torch's own limit on pooling padding
    pool = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(kernel, stride, pad)
    try:
        expected = tuple(pool(torch.zeros(1, 2, size, size)).shape[1:])
    except RuntimeError:
        assume(False)
        return
    try:
        a = analyze({"input": [2, size, size], "layers": [
            {"pool": {"kind": kind, "size": kernel, "stride": stride, "padding": pad}}, "flatten", {"output": 2}]})
    except SpecError:
        assume(False)
        return
    assert a.layers[0].output_shape == expected


@settings(max_examples=50, deadline=None, derandomize=True)
@given(size=st.integers(1, 17), kernel=st.integers(1, 6), stride=st.integers(1, 4))
def test_same_padding_follows_the_tensorflow_definition(size: int, kernel: int, stride: int) -> None:
    """Keras/TF: with ``same``, the output is ceil(input / stride), whatever the kernel."""
    a = analyze(_conv_spec(1, size, 2, kernel, stride, "same", 1))
    assert a.layers[0].output_shape == (2, math.ceil(size / stride), math.ceil(size / stride))


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@settings(max_examples=30, deadline=None, derandomize=True)
@given(size=st.integers(3, 12), kernel=st.integers(1, 6), dilation=st.integers(1, 2), seed=st.integers(0, 9))
def test_same_padding_values_equal_torch_padding_same(size: int, kernel: int, dilation: int, seed: int) -> None:
    """Stride 1: the built conv computes exactly what torch's own ``padding="same"`` computes (torch puts
    the odd pixel of an even kernel at the right/bottom, as TF does)."""
    spec = _conv_spec(2, size, 3, kernel, 1, "same", dilation)
    torch.manual_seed(seed)
    model = build(spec).eval()
    conv = model.layers[0].conv
    x = torch.randn(2, 2, size, size)
    with torch.no_grad():
        ours = model.layers[0](x)
        ref = F.conv2d(x, conv.weight, conv.bias, padding="same", dilation=dilation)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_hand_worked_same_stride_two() -> None:
    """5x5 input, 3x3 kernel, stride 2, same: TF pads 1 on each side (total 2) -> 3x3;
    6x6: total padding 1, all of it at the right/bottom -> 3x3."""
    assert analyze(_conv_spec(1, 5, 1, 3, 2, "same", 1)).layers[0].output_shape == (1, 3, 3)
    assert analyze(_conv_spec(1, 6, 1, 3, 2, "same", 1)).layers[0].output_shape == (1, 3, 3)
    assert analyze(_conv_spec(1, 6, 1, 3, 2, "same", 1)).layers[0].resolved["padding"] == (0, 1, 0, 1)
    # the seed's worked example: 50x50, 3x3, padding 1, stride 1 -> 50x50; (3·3·32+1)·64 = 18,496
    a = analyze({"input": [32, 50, 50], "layers": [{"conv": {"filters": 64, "padding": 1}}, "flatten", {"output": 2}]})
    assert a.layers[0].output_shape == (64, 50, 50) and a.layers[0].params == 18_496


def _flop_counter_macs(name: str) -> int:
    with torch.device("meta"):
        model = build(name).eval()
        x = torch.empty(1, *model.spec.input)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2  # FlopCounterMode counts a multiply-add as 2 FLOPs


@pytest.mark.parametrize("name", ["keras-mnist", "lenet5", "alexnet", "vgg16", "resnet18", "resnet50",
                                  "mnist-modern", "cats-scratch"])
def test_total_macs_equal_torch_flop_counter(name: str) -> None:
    assert analyze(name).total_macs == _flop_counter_macs(name)


def test_lenet5_1998_macs_beyond_what_the_flop_counter_sees() -> None:
    """FlopCounterMode counts convolutions and matmuls only. LeNet-5 (1998) also has trainable
    subsampling (one multiply per output: S2 6·14·14 = 1,176, S4 16·5·5 = 400) and the RBF output
    (84·10 = 840 squared differences), which the analysis counts as MACs."""
    assert analyze("lenet5-1998").total_macs == _flop_counter_macs("lenet5-1998") + 1_176 + 400 + 840
