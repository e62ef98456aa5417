"""The arithmetic behind one output value: the window, the weights, the bias, the sum and the activation.

Each ``*_terms`` function recomputes one value of ``model.layers[i]`` from that layer's input with
numpy in float64 and returns the pieces as plain lists, next to the model's own (float32) output,
so the page can show that they agree. Geometry (stride, padding, dilation) is read from the torch
modules themselves, never re-derived.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError

TOP_TERMS = 16  # dense terms shown one by one (the rest are summed)
MAX_WINDOW = 4096  # values of a global-pool window sent
ELEMENTWISE = (nn.Dropout, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.GELU, nn.SiLU)


def neuron(ex: Any, fwd: Any, layer: int, channel: int, y: int, x: int) -> dict[str, Any]:
    """The arithmetic of ``fwd.outs[layer][0][channel, y, x]`` (``[channel]`` for a flat layer)."""
    module = ex.layers[layer]
    inp = ex.layer_input(fwd, layer)[0]  # (C, H, W) or (N,)
    out = fwd.outs[layer][0]  # (C', H', W') or (N',)
    position = _check_position(out, channel, y, x, layer)
    value = float(out[position])
    base: dict[str, Any] = {"layer": layer, "kind": ex.analysis.layers[layer].kind, "channel": channel,
                            "y": y if out.dim() == 3 else None, "x": x if out.dim() == 3 else None,
                            "value": value, "rf": rf_box(ex, layer, y, x, out.dim() == 3)}
    base.update(_terms(module, inp, out, channel, y, x))
    return base


def _check_position(out: torch.Tensor, channel: int, y: int, x: int, layer: int) -> tuple[int, ...]:
    if out.dim() == 3:
        c, h, w = out.shape
        if not (0 <= channel < c and 0 <= y < h and 0 <= x < w):
            raise CnnlabError(f"layer {layer} outputs {c}×{h}×{w}: channel {channel}, row {y}, column {x} "
                              f"is outside it (channels 0..{c - 1}, rows 0..{h - 1}, columns 0..{w - 1})")
        return (channel, y, x)
    n = out.shape[0]
    if not 0 <= channel < n:
        raise CnnlabError(f"layer {layer} outputs {n} values: unit {channel} is outside it (0..{n - 1})")
    return (channel,)


def rf_box(ex: Any, layer: int, y: int, x: int, spatial: bool) -> list[int]:
    """``[top, left, bottom, right]`` (inclusive, clipped to the input) of the unit's receptive field."""
    _, h, w = ex.input_shape
    rf = ex.analysis.layers[layer].receptive_field
    if not spatial or rf is None:
        return [0, 0, h - 1, w - 1]
    box = []
    for pos, size, jump, start, limit in ((y, rf.size[0], rf.jump[0], rf.start[0], h),
                                          (x, rf.size[1], rf.jump[1], rf.start[1], w)):
        lo = start + pos * jump - (size - 1) / 2
        box.append((max(0, int(round(lo))), min(limit - 1, int(round(lo + size - 1)))))
    return [box[0][0], box[1][0], box[0][1], box[1][1]]


def _terms(module: nn.Module, inp: torch.Tensor, out: torch.Tensor, c: int, y: int, x: int) -> dict[str, Any]:
    parts = dict(module.named_children()) if isinstance(module, nn.Sequential) else {}
    if isinstance(parts.get("conv"), nn.Conv2d):
        return conv_terms(parts, inp, c, y, x)
    if "pool" in parts and isinstance(parts["pool"], (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return global_pool_terms(parts["pool"], inp, c)
    if "pool" in parts:
        return pool_terms(parts, inp, c, y, x)
    if isinstance(parts.get("linear"), nn.Linear):
        return dense_terms(parts, inp, c)
    if "bn" in parts:
        return batchnorm_terms(parts, inp, c, y, x)
    if hasattr(module, "branch") and hasattr(module, "shortcut"):
        return residual_terms(module, inp, c, y, x)
    if isinstance(module, nn.Flatten):
        return flatten_terms(inp, c)
    if isinstance(module, ELEMENTWISE):
        pos = (c, y, x) if inp.dim() == 3 else (c,)
        pre = float(inp[pos])
        return {"op": "elementwise", "input": pre, "sum": pre, **_activation(module, pre)}
    return {"op": "other", "module": type(module).__name__}


def _activation(act: nn.Module | None, pre: float) -> dict[str, Any]:
    """``act(pre)`` in float64 with the module itself (no activation: identity)."""
    if act is None or isinstance(act, (nn.Identity, nn.Dropout)):
        return {"act": "none", "activation": pre}
    with torch.no_grad():
        result = act(torch.tensor([pre], dtype=torch.float64))  # (1,)
    return {"act": _act_name(act), "activation": float(result[0])}


def _act_name(act: nn.Module) -> str:
    names = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ELU: "elu",
             nn.GELU: "gelu", nn.SiLU: "swish"}
    for cls, name in names.items():
        if isinstance(act, cls):
            return name + (f"(slope {act.negative_slope:g})" if isinstance(act, nn.LeakyReLU) else "")
    return type(act).__name__.lower()


def _item(t: torch.Tensor | None, i: int) -> float:
    assert t is not None
    return float(t.detach()[i])


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def conv_terms(parts: dict[str, nn.Module], inp: torch.Tensor, c: int, y: int, x: int) -> dict[str, Any]:
    """Conv: ``sum(window · kernel) + bias``, then the activation. The window is ``(l, kh, kw)``."""
    conv = parts["conv"]
    assert isinstance(conv, nn.Conv2d)
    h = parts["pad"](inp[None])[0] if "pad" in parts else inp  # (C, H, W) after asymmetric 'same' padding
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    ph, pw = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
    per_group = conv.out_channels // conv.groups
    l_in = conv.in_channels // conv.groups
    first = (c // per_group) * l_in  # input channels this filter reads: first .. first + l_in - 1
    padded = F.pad(h[first:first + l_in], (pw, pw, ph, ph))  # (l, H+2ph, W+2pw), zeros
    top, left = y * sh, x * sw
    window = padded[:, top:top + dh * (kh - 1) + 1:dh, left:left + dw * (kw - 1) + 1:dw]  # (l, kh, kw)
    win, ker = _f64(window), _f64(conv.weight[c])  # (l, kh, kw) each
    partial = (win * ker).sum(axis=(1, 2))  # (l,) one sum per input channel
    bias = _item(conv.bias, c) if conv.bias is not None else 0.0
    pre = float(partial.sum() + bias)
    return {"op": "conv", "kernel_size": [kh, kw], "stride": [sh, sw], "padding": [ph, pw], "dilation": [dh, dw],
            "in_channels": list(range(first, first + l_in)), "origin": [top - ph, left - pw],
            "window": win.tolist(), "weights": ker.tolist(), "partial": partial.tolist(), "bias": bias,
            "sum": pre, **_activation(parts.get("act"), pre)}


def pool_terms(parts: dict[str, nn.Module], inp: torch.Tensor, c: int, y: int, x: int) -> dict[str, Any]:
    """Max or mean of the window (padding never wins a max; a mean divides as the module does)."""
    pool = parts["pool"]
    kind, (kh, kw), (sh, sw), pads, include_pad = _pool_geometry(pool)
    top, bottom, left, right = pads
    ch = _f64(inp[c])  # (H, W)
    rows, cols = ch.shape
    r0, c0 = y * sh - top, x * sw - left  # window origin in input coordinates (may be negative: padding)
    window = [[float(ch[r, q]) if 0 <= r < rows and 0 <= q < cols else None
               for q in range(c0, c0 + kw)] for r in range(r0, r0 + kh)]
    real = [(i, j, v) for i, row in enumerate(window) for j, v in enumerate(row) if v is not None]
    if kind == "max":
        i, j, pre = max(real, key=lambda t: t[2])
        chosen: dict[str, Any] = {"chosen": [i, j]}
    else:
        total = sum(v for _, _, v in real)
        inside_pad = sum(1 for r in range(r0, r0 + kh) for q in range(c0, c0 + kw)
                         if -top <= r < rows + bottom and -left <= q < cols + right)
        divisor = inside_pad if include_pad else len(real)
        pre = total / divisor
        chosen = {"total": total, "divisor": divisor}
    result = {"op": "pool", "pool": kind, "kernel_size": [kh, kw], "stride": [sh, sw], "origin": [r0, c0],
              "window": window, "pooled": pre, **chosen}
    affine = parts.get("affine")
    if affine is not None:  # LeNet-1998 trainable subsampling: a·pooled + b
        a, b = _item(getattr(affine, "weight"), c), _item(getattr(affine, "bias"), c)  # noqa: B009 (nn.Module typing)
        result.update(affine=[a, b])
        pre = a * pre + b
    return {**result, "sum": pre, **_activation(parts.get("act"), pre)}


def _pool_geometry(pool: nn.Module) -> tuple[str, tuple[int, int], tuple[int, int], tuple[int, int, int, int], bool]:
    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    if isinstance(pool, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(pool, nn.MaxPool2d) else "avg"
        ph, pw = pair(pool.padding)
        include = bool(getattr(pool, "count_include_pad", True))
        return kind, pair(pool.kernel_size), pair(pool.stride or pool.kernel_size), (ph, ph, pw, pw), include
    if hasattr(pool, "pad") and hasattr(pool, "kind"):  # layers.PadPool2d: F.pad order (l, r, t, b)
        left, right, top, bottom = (int(v) for v in getattr(pool, "pad"))  # noqa: B009
        return str(pool.kind), pair(pool.kernel), pair(pool.stride), (top, bottom, left, right), False
    raise CnnlabError(f"cannot explain pooling module {type(pool).__name__}")


def global_pool_terms(pool: nn.Module, inp: torch.Tensor, c: int) -> dict[str, Any]:
    values = _f64(inp[c]).reshape(-1)  # (H*W,)
    kind = "avg" if isinstance(pool, nn.AdaptiveAvgPool2d) else "max"
    pre = float(values.mean() if kind == "avg" else values.max())
    return {"op": "global_pool", "pool": kind, "window": values[:MAX_WINDOW].tolist(), "count": int(values.size),
            "total": float(values.sum()), "shape": list(inp.shape[1:]), "sum": pre, "act": "none", "activation": pre}


def dense_terms(parts: dict[str, nn.Module], inp: torch.Tensor, j: int) -> dict[str, Any]:
    """Dense: ``sum_i x_i · w_ji + b_j``; the largest terms one by one, the rest as one sum."""
    linear = parts["linear"]
    assert isinstance(linear, nn.Linear)
    xs = _f64(inp.reshape(-1))  # (n,) flattened as nn.Flatten does: c·H·W + y·W + x
    ws = _f64(linear.weight[j])  # (n,)
    products = xs * ws  # (n,)
    order = np.argsort(-np.abs(products), kind="stable")[:TOP_TERMS]
    shape = list(inp.shape)
    terms = [{"i": int(i), "where": _where(int(i), shape), "x": float(xs[i]), "w": float(ws[i]),
              "product": float(products[i])} for i in order]
    rest = np.delete(products, order)
    bias = _item(linear.bias, j) if linear.bias is not None else 0.0
    pre = float(products.sum() + bias)
    return {"op": "dense", "n": int(xs.size), "terms": terms, "rest_count": int(rest.size),
            "rest_sum": float(rest.sum()), "bias": bias, "sum": pre, **_activation(parts.get("act"), pre)}


def _where(i: int, shape: list[int]) -> list[int]:
    """Flat index -> (channel, row, column) of the map it came from (``[i]`` for a flat input)."""
    if len(shape) != 3:
        return [i]
    _, h, w = shape
    return [i // (h * w), (i // w) % h, i % w]


def batchnorm_terms(parts: dict[str, nn.Module], inp: torch.Tensor, c: int, y: int, x: int) -> dict[str, Any]:
    bn = parts["bn"]
    assert isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d))
    v = float(inp[c, y, x]) if inp.dim() == 3 else float(inp[c])
    mean = _item(bn.running_mean, c) if bn.running_mean is not None else 0.0
    var = _item(bn.running_var, c) if bn.running_var is not None else 1.0
    gamma = _item(bn.weight, c) if bn.weight is not None else 1.0
    beta = _item(bn.bias, c) if bn.bias is not None else 0.0
    pre = (v - mean) / np.sqrt(var + bn.eps) * gamma + beta
    return {"op": "batchnorm", "input": v, "mean": mean, "var": var, "eps": bn.eps, "gamma": gamma, "beta": beta,
            "sum": float(pre), **_activation(parts.get("act"), float(pre))}


def residual_terms(block: nn.Module, inp: torch.Tensor, c: int, y: int, x: int) -> dict[str, Any]:
    """Residual: ``act(branch(x) + shortcut(x))`` at this position."""
    with torch.no_grad():
        h = inp[None]  # (1, C, H, W)
        for sub in block.branch:  # type: ignore[union-attr]
            h = sub(h)
        shortcut = block.shortcut(inp[None])  # type: ignore[operator]
    b, s = float(h[0, c, y, x]), float(shortcut[0, c, y, x])
    pre = b + s
    return {"op": "residual", "branch": b, "shortcut": s,
            "projection": not isinstance(block.shortcut, nn.Identity), "sum": pre,
            **_activation(block.act, pre)}  # type: ignore[arg-type]


def flatten_terms(inp: torch.Tensor, i: int) -> dict[str, Any]:
    where = _where(i, list(inp.shape))
    v = float(inp[tuple(where)])
    return {"op": "flatten", "where": where, "input": v, "sum": v, "act": "none", "activation": v}
