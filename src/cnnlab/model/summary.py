"""``summary(module, input_size)``: the cnnlab table for ANY PyTorch module, computed on the meta device.

No real memory or compute is used: parameters are swapped for meta tensors through
``torch.func.functional_call``, so a 138M-parameter VGG is summarised in milliseconds.
Shared (tied) parameters are counted once, at the first layer that uses them.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
>>> a = summary(net, (3, 32, 32), verbose=False)
>>> a.total_params, a.layers[0].output_shape
(72234, (8, 30, 30))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnlab.analysis import fill_totals
from cnnlab.analysis.shapes import conv_macs
from cnnlab.analysis.types import Analysis, LayerAnalysis
from cnnlab.analysis.window import resolve_window, shape_formula
from cnnlab.errors import CnnlabError
from cnnlab.i18n import integer, tr


def summary(
    module: nn.Module, input_size: tuple[int, ...] | list[int], *, batch: int = 1, lang: str = "en",
    verbose: bool = True,
) -> Analysis:
    """Analyse ``module`` for inputs of ``input_size`` = (C, H, W) (or (B, C, H, W)); print the table.

    Returns the ``Analysis`` (the same object ``analyze(spec)`` returns); ``verbose=False`` skips printing.
    """
    size = tuple(int(d) for d in input_size)
    if len(size) == 4:
        batch, size = size[0], size[1:]
    if not size or any(d <= 0 for d in size):
        raise CnnlabError(f"input_size must be positive (C, H, W); received {tuple(input_size)}")
    calls = _trace(module, size)
    rows = _rows(module, calls, lang)
    a = Analysis(name=type(module).__name__, input_shape=size, layers=rows, batch=batch, lang=lang)
    fill_totals(a)
    counted = _counted_ids(rows)
    unused = [p for p in {id(p): p for p in module.parameters()}.values() if id(p) not in counted]
    if unused:
        missing = sum(p.numel() for p in unused)
        a.warnings.append(tr("analysis.warn.unused", lang, n=integer(missing, lang)))
        a.total_params += missing
        a.trainable_params += sum(p.numel() for p in unused if p.requires_grad)
    if verbose:
        from cnnlab.analysis.render import print_summary

        print_summary(a)
    return a


def _counted_ids(rows: list[LayerAnalysis]) -> set[int]:
    return {i for r in rows for i in r.resolved.get("param_ids", ())}


Call = tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]


def _shape(value: Any) -> tuple[int, ...]:
    """Per-sample shape of a hook's input/output (the first tensor when it is a tuple)."""
    tensor = value[0] if isinstance(value, (tuple, list)) and value else value
    return tuple(tensor.shape[1:]) if isinstance(tensor, torch.Tensor) else ()


def _trace(module: nn.Module, size: tuple[int, ...]) -> list[Call]:
    """Run the module on meta tensors; return (name, module, output shape) for each call of a leaf."""
    names = {id(m): n for n, m in module.named_modules()}
    calls: list[Call] = []

    def hook(mod: nn.Module, inp: Any, out: Any) -> None:
        calls.append((names.get(id(mod), "?"), mod, _shape(inp), _shape(out)))

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if not list(m.children()) or list(m.parameters(recurse=False))
    ]
    meta: dict[int, torch.Tensor] = {}
    state: dict[str, torch.Tensor] = {}
    for name, t in [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]:
        state[name] = meta.setdefault(id(t), torch.empty_like(t, device="meta"))
    x = torch.empty((1, *size), device="meta")  # (1, C, H, W)
    try:
        with torch.no_grad():
            torch.func.functional_call(module, state, (x,), tie_weights=True, strict=False)
    except Exception as exc:  # noqa: BLE001 - any failure of a user's module becomes one clear message
        raise CnnlabError(
            f"summary: {type(module).__name__} could not run on a meta tensor of shape (1, {', '.join(map(str, size))}): "
            f"{type(exc).__name__}: {exc}. Check input_size (C, H, W) matches what the model expects."
        ) from None
    finally:
        for h in handles:
            h.remove()
    return calls


def _rows(module: nn.Module, calls: list[Call], lang: str) -> list[LayerAnalysis]:
    seen: set[int] = set()
    rows: list[LayerAnalysis] = []
    for i, (name, mod, in_shape, shape) in enumerate(calls):
        kind = type(mod).__name__
        row = LayerAnalysis(index=i, path=name, kind=kind.lower(), title=f"{name} ({kind})", input_shape=in_shape,
                            output_shape=shape)
        fresh = [p for p in mod.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in fresh)
        row.resolved["param_ids"] = [id(p) for p in fresh]
        bias = getattr(mod, "bias", None)
        row.biases = bias.numel() if isinstance(bias, torch.Tensor) and any(bias is p for p in fresh) else 0
        row.weights = sum(p.numel() for p in fresh) - row.biases
        row.trainable = all(p.requires_grad for p in fresh) if fresh else True
        row.buffers = sum(b.numel() for b in mod.buffers(recurse=False))
        _explain(mod, row, lang, fresh_count=len(fresh))
        row.saves_input = bool(list(mod.parameters(recurse=False))) or not isinstance(mod, (nn.Flatten, nn.Identity))
        row.view = isinstance(mod, (nn.Flatten, nn.Identity))
        rows.append(row)
    return rows


def _explain(mod: nn.Module, row: LayerAnalysis, lang: str, fresh_count: int) -> None:
    out = row.output_shape
    if isinstance(mod, nn.Conv2d) and len(out) == 3:
        kh, kw = mod.kernel_size
        g, k, c = mod.groups, mod.out_channels, mod.in_channels
        row.macs = conv_macs(out[0], out[1], out[2], kh, kw, c // g)
        if fresh_count:
            key = "analysis.conv.params" + ("_groups" if g > 1 else "") + ("" if mod.bias is not None else "_nobias")
            row.formula = tr(key, lang, kh=kh, kw=kw, l=c, k=k, g=g, total=integer(row.params, lang))
        if len(row.input_shape) == 3 and isinstance(mod.padding, tuple):
            ph, pw = mod.padding
            win = resolve_window(row.input_shape[1:], (kh, kw), mod.stride, (ph, pw), mod.dilation)  # type: ignore[arg-type]
            row.shape_formula = shape_formula(row.input_shape[1:], win)
    elif isinstance(mod, nn.Linear):
        positions = 1
        for d in out[:-1]:
            positions *= d
        row.macs = positions * mod.in_features * mod.out_features
        if fresh_count:
            key = "analysis.dense" + ("" if mod.bias is not None else "_nobias")
            row.formula = tr(key, lang, n=integer(mod.in_features, lang), m=mod.out_features, total=integer(row.params, lang))
    elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and fresh_count:
        c = mod.num_features
        row.formula = tr("analysis.batchnorm", lang, c=c, total=integer(2 * c, lang), buf=integer(2 * c, lang))
