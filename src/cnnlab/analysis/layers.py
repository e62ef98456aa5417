"""One analyser per layer kind: output shape, parameters with their formula, MACs, receptive field.

Each function takes the layer, the input state and the context and returns a ``LayerAnalysis``.
Problems the user can fix go to ``cx.problems`` (all are reported together); analysis goes on
so that ``cnnlab check`` can list every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.analysis.memory import (
    INDEX_BYTES,
    MASK_BYTES,
    PLAIN_MAX,
    RELU_OUT,
    SAVES_INPUT,
    SAVES_OUTPUT,
    add_activation,
)
from cnnlab.analysis.shapes import (
    ReceptiveField,
    conv_macs,
    conv_params,
    dense_params,
    rf_window,
    table_conv_params,
)
from cnnlab.analysis.types import LayerAnalysis, Shape
from cnnlab.analysis.window import resolve_window, same_note, shape_formula, window_desc
from cnnlab.i18n import integer, short, tr
from cnnlab.spec import (
    LRN,
    Act,
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Output,
    OutputKind,
    PadMode,
    Pool,
    PoolKind,
)
from cnnlab.spec.parse import where


@dataclass
class Ctx:
    """Analysis context: language, collected problems and warnings, and what happened so far."""

    lang: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    broken: bool = False  # an earlier spatial problem: skip size checks that would only cascade
    flattened: tuple[int, int, int, str] | None = None  # (C, H, W, path) of the last flatten, until a dense reads it
    last_shrink: In | None = None  # the layer where the size last went down (for "drop the pooling at layer 4")
    seen: dict[tuple[object, ...], LayerAnalysis] = field(default_factory=dict)  # repeated layers (see analysis._run)


@dataclass
class In:
    """The input of a layer: shape, receptive field, and how to name the layer in messages."""

    index: int
    path: str
    shape: Shape
    rf: ReceptiveField | None
    kind: str = ""
    line: int | None = None
    lang: str = "en"

    @property
    def where(self) -> str:
        """``layer 3 (conv, line 9)``, built only when a message needs it."""
        return where(self.path, self.kind, self.line, self.lang)


def _row(x: In, kind: str, title: str, out: Shape, rf: ReceptiveField | None) -> LayerAnalysis:
    return LayerAnalysis(
        index=x.index, path=x.path, kind=kind, title=title, input_shape=x.shape, output_shape=out,
        receptive_field=rf, depth=x.path.count("."),
    )


def _needs_maps(x: In, kind: str, cx: Ctx) -> bool:
    if len(x.shape) == 3:
        return True
    cx.problems.append(tr("analysis.err.needs_maps", cx.lang, where=x.where, kind=kind, shape=_fmt_shape(x.shape)))
    return False


def _fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _act_suffix(act: Act) -> str:
    return "" if act == Act.NONE else f" + {act.value}"


def conv(layer: Conv, x: In, cx: Ctx) -> LayerAnalysis:
    if not _needs_maps(x, "conv", cx):
        return _row(x, "conv", "conv", (layer.filters, 1, 1), None)
    c, h, w = x.shape
    win = resolve_window((h, w), layer.kernel, layer.stride, layer.padding, layer.dilation)
    kh, kw = layer.kernel
    title = f"conv {window_desc(win, layer.padding)}, {c}→{layer.filters}{_act_suffix(layer.activation)}"
    out_hw = _check_window(win, x, title, cx)
    row = _row(x, "conv", title, (layer.filters, *out_hw), _rf(x, win))
    row.resolved = {"padding": win.pads, "in_channels": c, "symmetric": win.symmetric, "stride": layer.stride}
    lang, k = cx.lang, layer.filters
    _conv_key_checks(layer, x, cx)
    if layer.connections is not None:
        bad = sorted({i for conn in layer.connections for i in conn if i >= c})
        if bad:
            cx.problems.append(tr("analysis.err.connections", lang, where=x.where, bad=bad, c=c))
        counts = [len(conn) for conn in layer.connections]
        row.weights, row.biases = table_conv_params(counts, kh, kw, layer.bias)
        links = sum(counts)
        key = "analysis.conv.table" if layer.bias else "analysis.conv.table_nobias"
        row.formula = tr(key, lang, kh=kh, kw=kw, links=links, k=k, total=integer(row.params, lang))
        row.macs = out_hw[0] * out_hw[1] * kh * kw * links
    else:
        g = layer.groups
        if c % g:
            cx.problems.append(tr("analysis.err.groups", lang, where=x.where, g=g, c=c))
            g = 1
        row.weights, row.biases = conv_params(c, k, kh, kw, g, layer.bias)
        key = "analysis.conv.params" + ("_groups" if g > 1 else "") + ("" if layer.bias else "_nobias")
        row.formula = tr(key, lang, kh=kh, kw=kw, l=c, k=k, g=g, total=integer(row.params, lang))
        row.macs = conv_macs(k, out_hw[0], out_hw[1], kh, kw, c // g)
    row.shape_formula = shape_formula((h, w), win)
    if layer.padding == PadMode.SAME:
        row.notes.append(same_note(win, lang) or "")
    _conv_memory(layer, row, win.pads)
    return row


def _conv_memory(layer: Conv, row: LayerAnalysis, pads: tuple[int, int, int, int]) -> None:
    c, h, w = row.input_shape
    if layer.connections is not None:  # each output map's conv keeps its own picked input maps
        row.saved_bytes += sum(len(m) for m in layer.connections) * (h + pads[0] + pads[1]) * (w + pads[2] + pads[3]) * 4
    elif pads[0] != pads[1] or pads[2] != pads[3]:  # the conv keeps the zero-padded copy
        row.saved_bytes += c * (h + pads[0] + pads[1]) * (w + pads[2] + pads[3]) * 4
    else:
        row.saves_input = True
    if layer.activation == Act.RELU:
        row.resolved[RELU_OUT] = True  # the model may apply this ReLU after a following max-pool
    add_activation(row, layer.activation)


def _conv_key_checks(layer: Conv, x: In, cx: Ctx) -> None:
    """Checks between keys of one conv (reported with the shape problems, all at once)."""
    if layer.filters % layer.groups:
        cx.problems.append(tr("analysis.err.groups_filters", cx.lang, where=x.where, g=layer.groups, k=layer.filters))
    if layer.connections is not None:
        if len(layer.connections) != layer.filters:
            cx.problems.append(tr("analysis.err.connections_count", cx.lang, where=x.where, k=layer.filters,
                                  n=len(layer.connections)))
        if layer.groups != 1:
            cx.problems.append(tr("analysis.err.groups_and_table", cx.lang, where=x.where))


def _rf(x: In, win: object) -> ReceptiveField | None:
    if x.rf is None:
        return None
    return rf_window(x.rf, win.kernel, win.stride, win.pad_before, win.dilation)  # type: ignore[attr-defined]


def _check_window(win: object, x: In, title: str, cx: Ctx) -> tuple[int, int]:
    """Report a collapsed output or flooring loss; return a usable (H, W) (≥ 1) to go on with."""
    oh, ow = win.out  # type: ignore[attr-defined]
    _, h, w = x.shape
    if oh < 1 or ow < 1:
        if not cx.broken:
            k = win.kernel  # type: ignore[attr-defined]
            d = win.dilation  # type: ignore[attr-defined]
            fix = tr("analysis.fix.padding", cx.lang, p=max((d[0] * (k[0] - 1)) // 2, (d[1] * (k[1] - 1)) // 2))
            if cx.last_shrink:
                fix += tr("analysis.fix.drop", cx.lang, where=cx.last_shrink.where)
            cx.problems.append(
                tr("analysis.err.collapse", cx.lang, where=x.where, title=title, h=h, w=w, oh=oh, ow=ow, fix=fix)
            )
        cx.broken = True
        return max(oh, 1), max(ow, 1)
    dh, dw = win.dropped  # type: ignore[attr-defined]
    if (dh or dw) and not cx.broken:
        cx.warnings.append(tr("analysis.warn.floor", cx.lang, where=x.where, title=title, h=h, w=w, dh=dh, dw=dw))
    if (oh, ow) != (h, w):
        cx.last_shrink = x
    return oh, ow


def pool(layer: Pool, x: In, cx: Ctx) -> LayerAnalysis:
    if not _needs_maps(x, "pool", cx):
        return _row(x, "pool", "pool", x.shape, None)
    c, h, w = x.shape
    win = resolve_window((h, w), layer.size, layer.resolved_stride, layer.padding, ceil=layer.ceil)
    title = f"{layer.kind.value} pool {window_desc(win, layer.padding)}{_act_suffix(layer.activation)}"
    if layer.padding != PadMode.SAME and not isinstance(layer.padding, PadMode):
        ph, pw = layer.padding
        if ph > layer.size[0] // 2 or pw > layer.size[1] // 2:
            cx.problems.append(tr("analysis.err.pool_pad", cx.lang, where=x.where, p=layer.padding, k=layer.size))
    if layer.padding == PadMode.SAME and layer.ceil:
        cx.problems.append(tr("analysis.err.same_ceil", cx.lang, where=x.where))
    if layer.trainable and layer.kind != PoolKind.AVG:
        cx.problems.append(tr("analysis.err.trainable_max", cx.lang, where=x.where))
    out_hw = _check_window(win, x, title, cx)
    row = _row(x, "pool", title, (c, *out_hw), _rf(x, win))
    row.resolved = {"padding": win.pads, "symmetric": win.symmetric, "stride": win.stride}
    row.shape_formula = shape_formula((h, w), win)
    if layer.trainable:
        row.weights, row.biases = c, c
        row.formula = tr("analysis.pool.trainable", cx.lang, c=c, total=integer(2 * c, cx.lang))
        row.macs = c * out_hw[0] * out_hw[1]
    else:
        row.formula = tr("analysis.pool.params", cx.lang, kind=layer.kind.value)
    if layer.padding == PadMode.SAME:
        row.notes.append(same_note(win, cx.lang) or "")
    _pool_memory(layer, row, win.pads)
    return row


def _pool_memory(layer: Pool, row: LayerAnalysis, pads: tuple[int, int, int, int]) -> None:
    c, h, w = row.input_shape
    if pads[0] != pads[1] or pads[2] != pads[3]:  # pooled from a padded copy
        row.saved_bytes += c * (h + pads[0] + pads[1]) * (w + pads[2] + pads[3]) * 4
    else:
        row.saves_input = True
    if layer.kind == PoolKind.MAX:
        row.saved_bytes += row.activations * INDEX_BYTES
        if pads[0] == pads[1] and pads[2] == pads[3] and not layer.trainable and layer.activation == Act.NONE:
            row.resolved[PLAIN_MAX] = True  # a lone nn.MaxPool2d: a ReLU before it may run after it
    if layer.trainable:  # a·x keeps x
        row.saved_bytes += row.activations * 4
        act_input = row.activations * 4 if layer.activation in SAVES_INPUT else 0
        row.resolved["no_grad_bytes"] = row.activations * 4 + act_input  # when nothing before learns
    add_activation(row, layer.activation)


def global_pool(layer: GlobalPool, x: In, cx: Ctx) -> LayerAnalysis:
    if not _needs_maps(x, "global_pool", cx):
        return _row(x, "global_pool", "global pool", x.shape, None)
    c, h, w = x.shape
    row = _row(x, "global_pool", f"global {layer.kind.value} pool {h}×{w}", (c,), None)
    row.formula = tr("analysis.global_pool", cx.lang, kind=layer.kind.value, c=c, h=h, w=w)
    if layer.kind == PoolKind.MAX:  # keeps the input and the argmax indices
        row.saves_input = True
        row.saved_bytes += c * INDEX_BYTES
    return row  # the average over H×W is a mean: its backward needs only the size


def flatten(layer: Flatten, x: In, cx: Ctx) -> LayerAnalysis:
    n = _numel(x.shape)
    row = _row(x, "flatten", "flatten", (n,), None)
    if len(x.shape) == 3:
        c, h, w = x.shape
        row.formula = tr("analysis.flatten", cx.lang, c=c, h=h, w=w, n=integer(n, cx.lang))
        cx.flattened = (c, h, w, x.path)
    else:
        row.formula = tr("analysis.flatten_vec", cx.lang, n=integer(n, cx.lang))
    row.view = True
    return row


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _dense_like(x: In, cx: Ctx, kind: str, title: str, units: int, bias: bool, key: str) -> LayerAnalysis:
    n = _numel(x.shape)
    row = _row(x, kind, title.format(n=integer(n, cx.lang)), (units,), None)
    row.weights, row.biases = dense_params(n, units, bias)
    row.formula = tr(key + ("" if bias else "_nobias"), cx.lang, n=integer(n, cx.lang), m=units,
                     total=integer(row.params, cx.lang))
    row.macs = n * units
    row.resolved = {"in_features": n, "flatten": len(x.shape) > 1}
    if len(x.shape) == 3:
        c, h, w = x.shape
        row.notes.append(tr("analysis.note.implicit_flatten", cx.lang, c=c, h=h, w=w, n=integer(n, cx.lang)))
    elif cx.flattened is not None:
        c, h, w, path = cx.flattened
        row.notes.append(tr("analysis.note.from_flatten", cx.lang, c=c, h=h, w=w, n=integer(n, cx.lang), path=path))
    cx.flattened = None
    return row


def dense(layer: Dense, x: In, cx: Ctx) -> LayerAnalysis:
    title = f"dense {{n}}→{layer.units}{_act_suffix(layer.activation)}"
    row = _dense_like(x, cx, "dense", title, layer.units, layer.bias, "analysis.dense")
    row.saves_input = True
    add_activation(row, layer.activation)
    return row


def output(layer: Output, x: In, cx: Ctx) -> LayerAnalysis:
    if layer.kind == OutputKind.RBF and layer.bias:
        cx.problems.append(tr("analysis.err.rbf_bias", cx.lang, where=x.where))
    if layer.kind == OutputKind.RBF:
        row = _dense_like(x, cx, "output", f"output rbf {{n}}→{layer.classes}", layer.classes, False,
                          "analysis.output_rbf")
    else:
        row = _dense_like(x, cx, "output", f"output {{n}}→{layer.classes} (logits)", layer.classes,
                          layer.bias, "analysis.output")
    row.trainable = layer.trainable
    if not layer.trainable:
        row.notes.append(tr("analysis.note.frozen", cx.lang))
    if layer.kind == OutputKind.RBF:
        row.saved_bytes += row.resolved["in_features"] * layer.classes * 4  # (x − w) kept for the square
    else:
        row.saves_input = True
    return row


def batchnorm(layer: BatchNorm, x: In, cx: Ctx) -> LayerAnalysis:
    c = x.shape[0]
    dim = "2d" if len(x.shape) == 3 else "1d"
    ghost = f" ghost {layer.ghost}" if layer.ghost else ""
    row = _row(x, "batchnorm", f"batchnorm{dim} C={c}{ghost}{_act_suffix(layer.activation)}", x.shape, x.rf)
    row.weights, row.biases = c, c
    row.buffers = 2 * c + 1
    row.formula = tr("analysis.batchnorm", cx.lang, c=c, total=integer(2 * c, cx.lang), buf=integer(2 * c, cx.lang))
    if layer.ghost:
        row.notes.append(tr("analysis.batchnorm_ghost", cx.lang, n=integer(layer.ghost, cx.lang)))
    row.macs = 0
    row.resolved = {"channels": c, "dim": dim}
    row.saves_input = True
    row.saved_bytes += 2 * c * 4  # batch mean and inverse std
    add_activation(row, layer.activation)
    return row


def dropout(layer: Dropout, x: In, cx: Ctx) -> LayerAnalysis:
    row = _row(x, "dropout", f"dropout {layer.rate:g}", x.shape, x.rf)
    row.formula = tr("analysis.dropout", cx.lang, rate=short(layer.rate, cx.lang))
    row.saved_bytes += row.activations * MASK_BYTES if layer.rate > 0 else 0
    row.view = layer.rate == 0
    return row


def activation(layer: Activation, x: In, cx: Ctx) -> LayerAnalysis:
    row = _row(x, "activation", layer.kind.value, x.shape, x.rf)
    row.formula = tr("analysis.activation", cx.lang, kind=layer.kind.value)
    row.view = layer.kind == Act.NONE
    if layer.kind in SAVES_INPUT:
        row.saves_input = True
    add_activation(row, layer.kind if layer.kind in SAVES_OUTPUT else Act.NONE)
    return row


def lrn(layer: LRN, x: In, cx: Ctx) -> LayerAnalysis:
    if not _needs_maps(x, "lrn", cx):
        return _row(x, "lrn", "lrn", x.shape, None)
    row = _row(x, "lrn", f"lrn size {layer.size}", x.shape, x.rf)
    lang = cx.lang
    row.formula = tr("analysis.lrn", lang, n=layer.size, alpha=short(layer.alpha, lang), beta=short(layer.beta, lang),
                     k=short(layer.k, lang))
    c, h, w = x.shape
    row.saves_input = True  # a·a keeps a; the window average keeps the padded squares; pow and / keep two more
    row.saved_bytes += ((c + layer.size - 1) * h * w + 2 * row.activations) * 4
    return row

