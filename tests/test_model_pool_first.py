"""conv+ReLU then max-pool runs as conv -> pool -> ReLU (model/pool_first.py): same outputs, same gradients.

The reference is the layer-by-layer path (each ``model.layers[i]`` called in turn, ReLU before the
pool). The inputs are built so that the swap could break: integer weights and pixels (so pooling
windows hold exact ties), a negative bias (so many windows are all negative or all zero after ReLU).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.model import build
from cnnlab.model.pool_first import pool_first_pairs

SPEC_PADDED = {  # 'same' convs, an overlapping padded max-pool with ceil mode, then a plain pair
    "name": "pf", "input": [2, 11, 11],
    "layers": [
        {"conv": {"filters": 4, "kernel": 3, "padding": "same"}},
        {"pool": {"size": 3, "stride": 2, "padding": 1, "ceil": True}},
        {"conv": {"filters": 5, "kernel": 2}},
        {"pool": 2},
        {"flatten": None},
        {"output": 3},
    ],
}


def layer_by_layer(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    for layer in model.layers:
        x = layer(x)
    return x


def tie_prone(model: nn.Module, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Integer weights in {-1, 0, 1}, biases -1, integer pixels in 0..2: conv outputs are small integers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.fill_(-1.0)
            else:
                p.copy_(torch.randint(-1, 2, p.shape, generator=gen).float())
    return torch.randint(0, 3, shape, generator=gen).float()


def outputs_and_grads(model: nn.Module, x: torch.Tensor, forward, precision: str) -> tuple[torch.Tensor, ...]:
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(0)  # training mode: both paths draw the same dropout mask
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = forward(model, x)
    (out.float() * torch.arange(1, out.shape[1] + 1)).sum().backward()
    return (out.detach(), x.grad, *(p.grad for p in model.parameters()))


@pytest.mark.parametrize("net", ["keras-mnist", "lenet5", "padded"])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_swapped_forward_and_backward_equal_layer_by_layer_bit_for_bit(net: str, channels_last: bool,
                                                                     precision: str) -> None:
    model = build(SPEC_PADDED if net == "padded" else net)
    assert pool_first_pairs(model.layers) == [0, 2]  # the fast path is really taken
    x = tie_prone(model, (6, *model.spec.input), seed=len(net))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fast = outputs_and_grads(model, x, lambda m, t: m(t), precision)
    ref = outputs_and_grads(model, x, layer_by_layer, precision)
    assert fast[0].abs().sum() > 0 and (fast[2] != 0).any()  # the ties and zeros reach a real gradient
    for a, b in zip(fast, ref, strict=True):
        assert a is not None and b is not None
        assert torch.equal(a, b)


def test_a_hook_sees_the_post_relu_feature_map_of_the_conv_layer() -> None:
    model = build("keras-mnist").eval()
    seen: list[torch.Tensor] = []
    handle = model.layers[0].register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.randn(2, 1, 28, 28)
    try:
        out = model(x)
    finally:
        handle.remove()
    assert seen[0].shape == (2, 32, 26, 26) and seen[0].min() >= 0  # conv output after ReLU, before the pool
    assert torch.equal(out, model(x))


@pytest.mark.parametrize("layers", [
    [{"conv": {"filters": 2, "kernel": 3, "activation": "tanh"}}, {"pool": 2}],  # not ReLU
    [{"conv": {"filters": 2, "kernel": 3}}, {"pool": {"kind": "avg", "size": 2}}],  # average: does not commute
    [{"conv": {"filters": 2, "kernel": 3}}, {"pool": {"size": 2, "activation": "relu"}}],  # pool has its own act
])
def test_pairs_that_do_not_commute_are_left_alone(layers: list[dict]) -> None:
    spec = {"name": "no", "input": [1, 8, 8], "layers": [*layers, {"flatten": None}, {"output": 2}]}
    assert pool_first_pairs(build(spec).layers) == []
