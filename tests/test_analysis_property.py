"""Property test: for hundreds of random specs, the analysis equals what PyTorch actually builds.

Shapes come from a real forward pass through ``model.layers[i]``; counts from ``p.numel()``.
Specs PyTorch cannot run must be rejected by the analysis (and vice versa): any spec the analysis
accepts must build and run. Run: .venv/bin/pytest tests/test_analysis_property.py
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnlab.analysis import analyze
from cnnlab.errors import SpecError
from cnnlab.model import build

pytestmark = pytest.mark.usefixtures("one_thread")


ACTS = ["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "none"]


@st.composite
def paddings(draw: st.DrawFn) -> Any:
    return draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                          st.lists(st.integers(0, 2), min_size=2, max_size=2)))


@st.composite
def conv_layer(draw: st.DrawFn, channels: int, force_same: bool = False) -> tuple[dict[str, Any], int]:
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
    filters = groups * draw(st.integers(1, 4))
    kernel = draw(st.one_of(st.integers(1, 5), st.lists(st.integers(1, 4), min_size=2, max_size=2)))
    body = {
        "filters": filters, "kernel": kernel, "stride": draw(st.integers(1, 3)),
        "padding": "same" if force_same else draw(paddings()), "dilation": draw(st.integers(1, 2)),
        "groups": groups, "bias": draw(st.booleans()), "activation": draw(st.sampled_from(ACTS)),
    }
    return {"conv": body}, filters


@st.composite
def pool_layer(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 3))
    same = draw(st.booleans())
    body: dict[str, Any] = {"kind": draw(st.sampled_from(["max", "avg"])), "size": size,
                            "stride": draw(st.integers(1, 3))}
    if same:
        body["padding"] = "same"
    else:
        body["padding"] = draw(st.integers(0, size // 2))
        body["ceil"] = draw(st.booleans())
    if body["kind"] == "avg" and draw(st.booleans()):
        body["trainable"] = True  # LeNet-1998 subsampling: 2 parameters per map
    return {"pool": body}


@st.composite
def residual_layer(draw: st.DrawFn, channels: int) -> tuple[dict[str, Any], int]:
    filters = draw(st.integers(1, 6))
    stride = draw(st.sampled_from([1, 1, 2]))
    first = {"conv": {"filters": filters, "kernel": draw(st.sampled_from([1, 3])), "stride": stride,
                      "padding": "same", "activation": "none"}}
    branch = [first, "batchnorm", {"activation": "relu"},
              {"conv": {"filters": filters, "padding": "same", "activation": "none"}}]
    shortcut = "conv" if draw(st.booleans()) else "auto"
    return {"residual": {"layers": branch, "shortcut": shortcut}}, filters


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    channels = draw(st.integers(1, 4))
    shape = [channels, draw(st.integers(8, 28)), draw(st.integers(8, 28))]
    layers: list[Any] = []
    for _ in range(draw(st.integers(0, 5))):
        choice = draw(st.sampled_from(["conv", "conv", "pool", "batchnorm", "dropout", "activation", "lrn",
                                       "residual"]))
        if choice == "conv":
            layer, channels = draw(conv_layer(channels))
        elif choice == "residual":
            layer, channels = draw(residual_layer(channels))
        elif choice == "pool":
            layer = draw(pool_layer())
        elif choice == "batchnorm":
            layer = {"batchnorm": draw(st.sampled_from(ACTS))}
        elif choice == "dropout":
            layer = {"dropout": draw(st.floats(0, 0.9))}
        elif choice == "activation":
            layer = {"activation": draw(st.sampled_from(ACTS))}
        else:
            layer = {"lrn": draw(st.integers(1, 5))}
        layers.append(layer)
    head = draw(st.sampled_from(["flatten", "global_pool", "implicit"]))
    if head == "flatten":
        layers.append("flatten")
    elif head == "global_pool":
        layers.append({"global_pool": draw(st.sampled_from(["avg", "max"]))})
    for _ in range(draw(st.integers(0, 2))):
        layers.append({"dense": {"units": draw(st.integers(1, 12)), "activation": draw(st.sampled_from(ACTS)),
                                 "bias": draw(st.booleans())}})
        if draw(st.booleans()):
            layers.append("batchnorm")
    layers.append({"output": {"classes": draw(st.integers(1, 5)), "bias": draw(st.booleans())}})
    return {"name": "random", "input": shape, "layers": layers}


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(specs())
def test_random_specs_match_pytorch(spec: dict[str, Any]) -> None:
    try:
        a = analyze(spec)
    except SpecError:
        assume(False)
        return
    model = build(spec).eval()
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:]))) for m in model.layers]
    with torch.no_grad():
        out = model(torch.randn(2, *spec["input"]))
    for h in hooks:
        h.remove()
    assert out.shape == (2, a.num_classes)
    assert shapes == [r.output_shape for r in a.layers]
    assert sum(p.numel() for p in model.parameters()) == a.total_params
    for i, row in enumerate(a.layers):
        assert sum(p.numel() for p in model.layers[i].parameters()) == row.params
        assert sum(b.numel() for b in model.layers[i].buffers()) == row.buffers


@settings(max_examples=150, deadline=None, derandomize=True)
@given(size=st.integers(1, 12), kernel=st.integers(1, 6), stride=st.integers(1, 4), pad=st.integers(0, 3),
       dilation=st.integers(1, 3))
def test_conv_size_rejections_agree_with_pytorch(size: int, kernel: int, stride: int, pad: int, dilation: int) -> None:
    """The analysis rejects a conv exactly when PyTorch cannot run it."""
    spec = {"input": [1, size, size], "layers": [{"conv": {"filters": 1, "kernel": kernel, "stride": stride,
                                                            "padding": pad, "dilation": dilation}}, {"output": 2}]}
    conv = torch.nn.Conv2d(1, 1, kernel, stride, pad, dilation)
    try:
        conv(torch.zeros(1, 1, size, size))
        torch_ok = True
    except RuntimeError:
        torch_ok = False
    try:
        analyze(spec)
        ours_ok = True
    except SpecError:
        ours_ok = False
    assert ours_ok == torch_ok


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(specs())
def test_random_specs_memory_estimate_matches_autograd(spec: dict[str, Any]) -> None:
    """The activation part of the memory estimate equals what autograd keeps (within 2%)."""
    try:
        a = analyze(spec, batch=2)
    except SpecError:
        assume(False)
        return
    model = build(spec).train()
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params and t.numel() > 1:
            seen.setdefault(t.data_ptr(), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(2, *spec["input"]))
    assert a.memory is not None
    measured = sum(seen.values())
    assert abs(a.memory.activations - measured) <= 0.02 * measured + 64


KINDS = ["conv", "pool", "global_pool", "batchnorm", "dropout", "flatten", "dense", "output", "activation", "lrn",
         "residual", "cnv"]
KEYS = ["filters", "kernel", "stride", "padding", "dilation", "groups", "bias", "activation", "connections", "kind",
        "size", "ceil", "trainable", "rate", "units", "classes", "slope", "alpha", "layers", "shortcut", "x"]
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(-1, 2), st.just(float("nan")), st.sampled_from(
        ["same", "valid", "max", "avg", "relu", "none", "conv", "auto", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=8,
)
layer_junk = st.one_of(st.sampled_from(KINDS), st.dictionaries(st.sampled_from(KINDS), junk, min_size=1, max_size=2),
                       junk)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.fixed_dictionaries({"input": st.one_of(st.lists(st.integers(-1, 12), max_size=4), junk),
                              "layers": st.one_of(st.lists(layer_junk, max_size=6), junk)}))
def test_any_garbage_gives_a_spec_error_never_a_crash(data: dict[str, Any]) -> None:
    try:
        a = analyze(data)
    except SpecError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert a.total_params >= 0
