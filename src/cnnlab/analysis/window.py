"""Sliding-window geometry (conv and pool) and its explanation text, shared by both kinds.

All arithmetic comes from ``cnnlab.analysis.shapes``; this module only resolves the spec's padding
options and writes the substituted formula (``H = ⌊(50 + 2·1 − 1·(3−1) − 1)/1⌋ + 1 = 50``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.analysis.shapes import conv_out, dropped_pixels, pool_out, same_padding
from cnnlab.i18n import tr
from cnnlab.spec import Padding, PadMode, Pair


@dataclass(frozen=True)
class Window:
    """A resolved window: paddings (top, bottom, left, right), output (H, W), dropped rows/cols."""

    kernel: Pair
    stride: Pair
    dilation: Pair
    pads: tuple[int, int, int, int]
    out: Pair
    dropped: Pair
    ceil: bool

    @property
    def symmetric(self) -> bool:
        return self.pads[0] == self.pads[1] and self.pads[2] == self.pads[3]

    @property
    def pad_before(self) -> Pair:
        return (self.pads[0], self.pads[2])


def resolve_window(
    size: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair = (1, 1), ceil: bool = False
) -> Window:
    """Paddings and output size for a conv/pool window on an input of ``size`` = (H, W)."""
    pads: list[int] = []
    for a in range(2):
        if padding == PadMode.SAME:
            pads.extend(same_padding(size[a], kernel[a], stride[a], dilation[a]))
        elif padding == PadMode.VALID:
            pads.extend((0, 0))
        else:
            p = padding[a]
            pads.extend((p, p))
    outs, dropped = [], []
    for a in range(2):
        pb, pa = pads[2 * a], pads[2 * a + 1]
        if ceil:
            outs.append(pool_out(size[a], kernel[a], stride[a], pb, pa, ceil=True))
            dropped.append(0)
        else:
            outs.append(conv_out(size[a], kernel[a], stride[a], pb, pa, dilation[a]))
            dropped.append(dropped_pixels(size[a], kernel[a], stride[a], pb, pa, dilation[a]))
    return Window(
        kernel, stride, dilation, (pads[0], pads[1], pads[2], pads[3]), (outs[0], outs[1]), (dropped[0], dropped[1]), ceil
    )


def axis_formula(size: int, w: Window, axis: int) -> str:
    """``⌊(50 + 2·1 − 1·(3−1) − 1)/1⌋ + 1 = 50`` for one axis."""
    pb, pa = w.pads[2 * axis], w.pads[2 * axis + 1]
    pad = f"2·{pb}" if pb == pa else f"{pb}+{pa}"
    k, s, d = w.kernel[axis], w.stride[axis], w.dilation[axis]
    lo, hi = ("⌈", "⌉") if w.ceil else ("⌊", "⌋")
    return f"{lo}({size} + {pad} − {d}·({k}−1) − 1)/{s}{hi} + 1 = {w.out[axis]}"


def shape_formula(size: Pair, w: Window) -> str:
    """``H = W = ...`` when both axes read the same, else ``H = ...;  W = ...``."""
    fh, fw = axis_formula(size[0], w, 0), axis_formula(size[1], w, 1)
    if fh == fw:
        return f"H = W = {fh}"
    return f"H = {fh};  W = {fw}"


def same_note(w: Window, lang: str) -> str | None:
    """Explain the padding that ``same`` chose (asymmetric when the total is odd)."""
    if w.symmetric:
        return tr("analysis.note.same_sym", lang, ph=w.pads[0], pw=w.pads[2])
    return tr("analysis.note.same_asym", lang, t=w.pads[0], b=w.pads[1], l=w.pads[2], r=w.pads[3])


def window_desc(w: Window, padding: Padding) -> str:
    """``3×3, stride 2, same`` — the short geometry text used in titles and messages."""
    parts = [f"{w.kernel[0]}×{w.kernel[1]}"]
    if w.stride != (1, 1):
        parts.append(f"stride {w.stride[0]}" if w.stride[0] == w.stride[1] else f"stride {w.stride[0]}×{w.stride[1]}")
    if w.dilation != (1, 1):
        parts.append(f"dilation {w.dilation[0]}")
    if isinstance(padding, PadMode):
        if padding == PadMode.SAME:
            parts.append("same")
    elif padding != (0, 0):
        parts.append(f"pad {padding[0]}" if padding[0] == padding[1] else f"pad {padding[0]}×{padding[1]}")
    return ", ".join(parts)
