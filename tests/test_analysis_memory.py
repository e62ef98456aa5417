"""The activation-memory estimate against what autograd really keeps (saved-tensor hooks).

Run: .venv/bin/pytest tests/test_analysis_memory.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from cnnlab.analysis import analyze
from cnnlab.model import build

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def saved_bytes(spec: Any, batch: int) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves in one training forward pass."""
    model = build(spec).train()
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params and t.numel() > 1:
            seen.setdefault(t.data_ptr(), t.numel() * t.element_size())
        return t

    x = torch.randn(batch, *model.spec.input)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(seen.values())


@pytest.mark.parametrize("name", ["keras-mnist", "lenet5", "lenet5-1998", "book-cnn",
                                  str(EXAMPLES / "mnist-cnn.yaml"), str(EXAMPLES / "tiny-resnet.yaml")])
def test_activation_estimate_matches_autograd(name: str) -> None:
    batch = 4
    a = analyze(name, batch=batch)
    assert a.memory is not None
    measured = saved_bytes(name, batch)
    assert a.memory.activations == pytest.approx(measured, rel=0.02)


def test_same_padding_lrn_gelu_dropout_and_projection() -> None:
    spec = {"input": [3, 15, 15], "layers": [
        {"conv": {"filters": 6, "stride": 2, "padding": "same", "activation": "gelu"}},
        {"lrn": 3}, {"pool": {"size": 2, "padding": "same"}}, {"dropout": 0.3},
        {"residual": {"layers": [{"conv": {"filters": 8, "padding": 1, "activation": "none"}}, "batchnorm"]}},
        {"activation": "leaky_relu"}, {"global_pool": "max"}, {"output": 3}]}
    a = analyze(spec, batch=2)
    assert a.memory is not None
    assert a.memory.activations == pytest.approx(saved_bytes(spec, 2), rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "alexnet-2012"])
def test_activation_estimate_on_imagenet_networks(name: str) -> None:
    a = analyze(name, batch=1)
    assert a.memory is not None
    assert a.memory.activations == pytest.approx(saved_bytes(name, 1), rel=0.01)
