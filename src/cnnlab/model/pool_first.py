"""Max-pool before ReLU: the same numbers as ReLU then max-pool, on a quarter of the elements.

``relu(maxpool(x)) == maxpool(relu(x))`` exactly: ReLU is monotone, so it commutes with taking a
maximum, and both are selections (no rounding). The gradients are equal too: when a window's maximum
is positive, both orders pick the same first-maximal element and pass the gradient to it; when it is
zero or negative, ReLU's gradient is 0 either way. So ``CnnlabNet.forward`` may run a conv layer whose
activation is ReLU, followed by a plain max-pool layer, as conv -> pool -> ReLU: on keras-mnist that
cuts the ReLU forward and backward on the 26×26 maps by 4× (about 30 % less CPU per training step,
``bench/results/profile_train_*.txt``). ``tests/test_model_pool_first.py`` checks outputs and
gradients bit for bit against the layer-by-layer path.

A pair runs the plain way whenever anyone could tell: a forward or backward hook on either layer or
their parts (feature maps, Grad-CAM, ``summary``), or a global module hook.

>>> import torch
>>> from cnnlab.model import build
>>> pool_first_pairs(build("keras-mnist").layers)
[0, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.modules import module as _module


def _parts(seq: nn.Module, allowed: set[str]) -> dict[str, nn.Module] | None:
    if type(seq) is not nn.Sequential:
        return None
    parts = dict(seq.named_children())
    return parts if set(parts) <= allowed else None


def swappable(first: nn.Module, second: nn.Module) -> bool:
    """``first`` is (pad,) conv, ReLU and ``second`` is a plain ``MaxPool2d`` layer (structure only)."""
    a, b = _parts(first, {"pad", "conv", "act"}), _parts(second, {"pool"})
    return (a is not None and b is not None and type(a.get("act")) is nn.ReLU and "conv" in a
            and type(b.get("pool")) is nn.MaxPool2d and not b["pool"].return_indices)


def pool_first_pairs(layers: Sequence[nn.Module]) -> list[int]:
    """Indices ``i`` where layers ``i, i+1`` may run as conv -> pool -> ReLU (non-overlapping pairs)."""
    out, i = [], 0
    while i + 1 < len(layers):
        if swappable(layers[i], layers[i + 1]):
            out.append(i)
            i += 2
        else:
            i += 1
    return out


def _hooked(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)


def unobserved(first: nn.Module, second: nn.Module) -> bool:
    """No hook anywhere could see the intermediate tensors of the pair (checked on every call)."""
    if (_module._global_forward_hooks or _module._global_forward_pre_hooks or _module._global_backward_hooks
            or _module._global_backward_pre_hooks):
        return False
    return not any(_hooked(m) for m in (first, second, *first.children(), *second.children()))


def run_pair(first: nn.Module, second: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv (with its padding) -> max-pool -> ReLU; equals ``second(first(x))``."""
    for name, part in first.named_children():
        if name != "act":
            x = part(x)  # (B, K, H', W') before the activation
    x = second(x)  # (B, K, H'/s, W'/s)
    return first.act(x)  # type: ignore[no-any-return]
