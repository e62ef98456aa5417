"""Explain a network layer by layer without running it (pure Python, no torch import).

>>> a = analyze({"name": "t", "input": [3, 50, 50],
...              "layers": [{"conv": {"filters": 32, "padding": "same"}},
...                         {"conv": {"filters": 64, "padding": 1}}, "flatten", {"output": 2}]})
>>> a.layers[1].formula
'conv 3×3, l=32 → k=64:  (n·m·l+1)·k = (3·3·32+1)·64 = 18,496'
>>> a.layers[1].shape_formula
'H = W = ⌊(50 + 2·1 − 1·(3−1) − 1)/1⌋ + 1 = 50'
>>> a.layers[1].output_shape, a.total_params
((64, 50, 50), 339394)

Run ``cnnlab summary NET`` for the rendered table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cnnlab.analysis import layers as al
from cnnlab.analysis.layers import Ctx, In
from cnnlab.analysis.memory import activation_bytes, add_activation, chain
from cnnlab.analysis.shapes import ReceptiveField, conv_out, rf_merge, rf_window
from cnnlab.analysis.types import BYTES_PER_VALUE, Analysis, LayerAnalysis, MemoryEstimate, Shape
from cnnlab.errors import SpecError
from cnnlab.i18n import integer, tr
from cnnlab.spec import (
    Activation,
    BatchNorm,
    Conv,
    Dropout,
    Layer,
    Output,
    Pool,
    Residual,
    Shortcut,
    Spec,
    load_spec,
)

__all__ = ["Analysis", "LayerAnalysis", "MemoryEstimate", "analyze"]

_ANALYSERS: dict[str, Callable[[Any, In, Ctx], LayerAnalysis]] = {
    "conv": al.conv,
    "pool": al.pool,
    "global_pool": al.global_pool,
    "flatten": al.flatten,
    "dense": al.dense,
    "output": al.output,
    "batchnorm": al.batchnorm,
    "dropout": al.dropout,
    "activation": al.activation,
    "lrn": al.lrn,
}
OPTIMIZER_STATES = 2  # Adam/AdamW keep two values per trainable parameter (SGD+momentum: 1)


def analyze(spec: Spec | dict[str, Any] | str, batch: int = 1, lang: str = "en") -> Analysis:
    """Analyse a spec (or a dict, a path, a bundled name). Raises ``SpecError`` listing every problem.

    ``batch`` only scales the training-memory estimate; every other figure is per sample.
    """
    spec = load_spec(spec, lang)
    if batch < 1:
        raise SpecError(f"batch must be a positive integer; received {batch}")
    cx = Ctx(lang=lang)
    rows = _run(spec.layers, spec.input, ReceptiveField.identity(), cx, prefix="", top=True)
    if cx.problems:
        n = len(cx.problems)
        raise SpecError(
            tr("analysis.err.header", lang, name=spec.name, n=n, s="s" if n > 1 else "")
            + "\n  - " + "\n  - ".join(cx.problems),
            list(cx.problems),
        )
    last = spec.layers[-1]
    a = Analysis(
        name=spec.name, input_shape=spec.input, layers=rows, batch=batch, lang=lang, warnings=cx.warnings,
        num_classes=last.classes if isinstance(last, Output) else None, source=spec.source,
    )
    fill_totals(a)
    return a


def fill_totals(a: Analysis) -> None:
    """Totals and the training-memory estimate from the rows (also used by ``summary(module)``)."""
    a.total_params = sum(r.params for r in a.layers)
    a.trainable_params = sum(r.params for r in a.layers if r.trainable)
    a.total_buffers = sum(r.buffers for r in a.layers)
    a.total_macs = sum(r.macs for r in a.layers)
    input_values = 1
    for d in a.input_shape:
        input_values *= d
    a.memory = MemoryEstimate(
        batch=a.batch,
        weights=a.total_params * BYTES_PER_VALUE,
        gradients=a.trainable_params * BYTES_PER_VALUE,
        optimizer=OPTIMIZER_STATES * a.trainable_params * BYTES_PER_VALUE,
        activations=a.batch * activation_bytes(a.layers, input_values),
        buffers=a.total_buffers * BYTES_PER_VALUE,
    )


def _run(
    layers: Sequence[Layer], shape: Shape, rf: ReceptiveField | None, cx: Ctx, prefix: str, top: bool,
    parent: int = 0,
) -> list[LayerAnalysis]:
    rows: list[LayerAnalysis] = []
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}"
        x = In(index=i if top else parent, path=path, shape=shape, rf=rf, kind=layer.KIND.value, line=layer.line,
               lang=cx.lang)
        if isinstance(layer, Residual):
            row = _residual(layer, x, cx)
        else:
            row = _analyse_layer(layer, x, cx)
        rows.append(row)
        shape, rf = row.output_shape, row.receptive_field
    return rows


_REPEATABLE = (Conv, BatchNorm, Pool, Activation, Dropout)


def _analyse_layer(layer: Layer, x: In, cx: Ctx) -> LayerAnalysis:
    """Analyse one layer; an identical layer on an identical input (ResNet stages repeat their
    blocks) reuses the first one's arithmetic and text, with its own position and receptive field."""
    if not isinstance(layer, _REPEATABLE) or cx.broken:
        return _ANALYSERS[layer.KIND.value](layer, x, cx)
    key = (layer, x.shape, x.rf is None)
    first = cx.seen.get(key)
    if first is None:
        before = (len(cx.problems), len(cx.warnings))
        row = _ANALYSERS[layer.KIND.value](layer, x, cx)
        if before == (len(cx.problems), len(cx.warnings)):
            cx.seen[key] = row
        return row
    row = _clone(first)
    row.index, row.path, row.depth = x.index, x.path, x.path.count(".")
    row.notes, row.resolved = list(first.notes), dict(first.resolved)
    row.receptive_field = _window_rf(layer, row, x.rf)
    if row.output_shape[1:] != x.shape[1:]:
        cx.last_shrink = x
    return row


def _clone(row: LayerAnalysis) -> LayerAnalysis:
    """A shallow copy of ``row`` (what ``copy.copy`` gives, at a quarter of its cost: no ``__reduce_ex__``)."""
    twin = object.__new__(LayerAnalysis)
    twin.__dict__.update(row.__dict__)
    return twin


def _window_rf(layer: Layer, row: LayerAnalysis, rf: ReceptiveField | None) -> ReceptiveField | None:
    if rf is None or not isinstance(layer, (Conv, Pool)):
        return rf
    kernel, dilation = (layer.kernel, layer.dilation) if isinstance(layer, Conv) else (layer.size, (1, 1))
    pads = row.resolved["padding"]
    return rf_window(rf, kernel, row.resolved["stride"], (pads[0], pads[2]), dilation)


def _residual(layer: Residual, x: In, cx: Ctx) -> LayerAnalysis:
    if len(x.shape) != 3:
        cx.problems.append(tr("analysis.err.needs_maps", cx.lang, where=x.where, kind="residual", shape=x.shape))
        return LayerAnalysis(x.index, x.path, "residual", "residual", x.shape, x.shape)
    children = _run(layer.layers, x.shape, x.rf, cx, prefix=f"{x.path}.", top=False, parent=x.index)
    out = children[-1].output_shape
    stride = _branch_stride(children)
    shortcut = _shortcut(layer, x, out, stride, cx)
    row = LayerAnalysis(
        index=x.index, path=x.path, kind="residual", title=tr("analysis.title.residual", cx.lang, n=len(children)),
        input_shape=x.shape, output_shape=out, depth=x.path.count("."), children=children,
    )
    parts = [*children, shortcut] if shortcut is not None else children
    row.weights = sum(c.weights for c in parts)
    row.biases = sum(c.biases for c in parts)
    row.buffers = sum(c.buffers for c in parts)
    row.macs = sum(c.macs for c in parts)
    _residual_memory(row, children, shortcut, layer)
    branch = sum(c.params for c in children)
    short = shortcut.params if shortcut is not None else 0
    row.formula = tr("analysis.residual", cx.lang, branch=integer(branch, cx.lang), short=integer(short, cx.lang),
                     total=integer(row.params, cx.lang), act=layer.activation.value)
    branch_rf = children[-1].receptive_field
    short_rf = shortcut.receptive_field if shortcut is not None else x.rf
    row.receptive_field = rf_merge(branch_rf, short_rf) if branch_rf and short_rf else branch_rf
    row.resolved = {"stride": stride, "shortcut": "identity" if shortcut is None else "conv"}
    if shortcut is not None:
        row.children.append(shortcut)
    return row


def _residual_memory(row: LayerAnalysis, children: list[LayerAnalysis], shortcut: LayerAnalysis | None,
                     layer: Residual) -> None:
    in_values = 1
    for d in row.input_shape:
        in_values *= d
    inner, input_saved, _ = chain(children, in_values * BYTES_PER_VALUE)
    row.saved_bytes = inner + (shortcut.saved_bytes if shortcut is not None else 0)
    row.saves_input = input_saved or shortcut is not None
    add_activation(row, layer.activation)  # the sum itself keeps nothing


def _branch_stride(children: list[LayerAnalysis]) -> tuple[int, int]:
    sh, sw = 1, 1
    for c in children:
        s = c.resolved.get("stride", (1, 1))
        sh, sw = sh * s[0], sw * s[1]
    return sh, sw


def _shortcut(layer: Residual, x: In, out: Shape, stride: tuple[int, int], cx: Ctx) -> LayerAnalysis | None:
    """None for an identity shortcut; else the 1×1 conv + batchnorm projection row."""
    same = tuple(out) == tuple(x.shape)
    if layer.shortcut == Shortcut.IDENTITY or (layer.shortcut == Shortcut.AUTO and same):
        if not same:
            cx.problems.append(tr("analysis.err.identity", cx.lang, where=x.where, a=x.shape, b=out))
        return None
    c, h, w = x.shape
    k = out[0]
    oh, ow = conv_out(h, 1, stride[0]), conv_out(w, 1, stride[1])
    if (k, oh, ow) != tuple(out):
        cx.problems.append(tr("analysis.err.shortcut", cx.lang, where=x.where, a=x.shape, b=out, s=stride[0]))
    row = LayerAnalysis(
        index=x.index, path=f"{x.path}.s", kind="shortcut",
        title=f"shortcut 1×1 conv+bn, stride {stride[0]}, {c}→{k}", input_shape=x.shape,
        output_shape=(k, oh, ow), depth=x.path.count(".") + 1,
    )
    row.weights, row.biases = c * k + k, k
    row.buffers = 2 * k + 1
    row.macs = c * k * oh * ow
    row.formula = tr("analysis.shortcut", cx.lang, l=c, k=k, total=integer(row.params, cx.lang))
    row.shape_formula = f"H = ⌊({h} − 1)/{stride[0]}⌋ + 1 = {oh}"
    row.saves_input = True  # the 1×1 conv keeps x; its batchnorm keeps the conv output and 2·k statistics
    row.saved_bytes = row.activations * BYTES_PER_VALUE + 2 * k * BYTES_PER_VALUE
    if x.rf is not None:
        row.receptive_field = rf_window(x.rf, (1, 1), stride, (0, 0))
    row.resolved = {"stride": stride, "in_channels": c}
    return row
