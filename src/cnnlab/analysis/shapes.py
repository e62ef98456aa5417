"""The one pure home of shape, parameter, MAC and receptive-field arithmetic (STYLE.md rule 1).

The validator, the analysis, the PyTorch builder and the explanations all call these functions,
so a number shown to the user is the number the built model has. Nothing here imports torch.

>>> conv_out(50, kernel=3, stride=1, pad_before=1, pad_after=1)
50
>>> same_padding(25, kernel=3, stride=2)   # Keras 'same': output = ceil(25 / 2) = 13
(1, 1)
>>> conv_params(32, 64, 3, 3)              # (n·m·l + 1)·k
(18432, 64)
>>> dense_params(1600, 10)                 # (n + 1)·m
(16000, 10)
"""

from __future__ import annotations

from dataclasses import dataclass


def conv_out(
    size: int, kernel: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution (or pooling without ceil) along one axis, as PyTorch computes it.

    ``⌊(size + pad_before + pad_after − dilation·(kernel − 1) − 1) / stride⌋ + 1``; may be ≤ 0
    when the input is too small (the caller turns that into an error).
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    return span // stride + 1


def pool_out(
    size: int, kernel: int, stride: int, pad_before: int = 0, pad_after: int = 0, ceil: bool = False
) -> int:
    """Output length of a pooling window along one axis (PyTorch's ``ceil_mode`` rule included).

    With ``ceil``, the last window must start inside the input or the left padding
    (PyTorch drops a window that would start in the right padding only).
    """
    if not ceil:
        return conv_out(size, kernel, stride, pad_before, pad_after)
    span = size + pad_before + pad_after - kernel
    if span < 0:
        return 0
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def dropped_pixels(
    size: int, kernel: int, stride: int, pad_before: int = 0, pad_after: int = 0, dilation: int = 1
) -> int:
    """How many real input rows/columns the last window never reaches (flooring loss).

    Unread padding does not count: ``dropped_pixels(224, 7, 2, 3, 3)`` is 0 (only padding is skipped).
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    return max(span % stride - pad_after, 0) if span >= 0 else 0


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow ``padding='same'``: (before, after) so that output = ⌈size / stride⌉.

    The total padding is split with the extra pixel after (bottom/right), as TensorFlow does.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_params(
    in_channels: int, out_channels: int, kh: int, kw: int, groups: int = 1, bias: bool = True
) -> tuple[int, int]:
    """(weights, biases) of a 2-D convolution: ``kh·kw·(in/groups)·out`` and ``out``."""
    return kh * kw * (in_channels // groups) * out_channels, out_channels if bias else 0


def table_conv_params(connections: list[int], kh: int, kw: int, bias: bool = True) -> tuple[int, int]:
    """(weights, biases) of a convolution with a connection table (LeNet-5 1998, layer C3).

    ``connections[j]`` is the number of input maps that output map ``j`` reads.
    """
    return kh * kw * sum(connections), len(connections) if bias else 0


def dense_params(n_in: int, n_out: int, bias: bool = True) -> tuple[int, int]:
    """(weights, biases) of a fully connected layer: ``n·m`` and ``m``."""
    return n_in * n_out, n_out if bias else 0


def conv_macs(out_c: int, out_h: int, out_w: int, kh: int, kw: int, in_per_group: int) -> int:
    """Multiply-accumulates of a convolution: one per weight per output position."""
    return out_c * out_h * out_w * kh * kw * in_per_group


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one output unit in input pixels, per axis (height, width).

    ``size``: how many input pixels one unit sees; ``jump``: input pixels between neighbouring
    units (product of the strides so far); ``start``: centre of the first unit's field in input
    coordinates (pixel 0 has centre 0.0; negative means it hangs into the padding).
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]

    @staticmethod
    def identity() -> ReceptiveField:
        return ReceptiveField((1, 1), (1, 1), (0.0, 0.0))


def rf_window(
    rf: ReceptiveField,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad_before: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> ReceptiveField:
    """Receptive field after a sliding window (conv or pool) with the given geometry.

    ``size' = size + (k_eff − 1)·jump``, ``jump' = jump·stride``,
    ``start' = start + ((k_eff − 1)/2 − pad)·jump`` with ``k_eff = dilation·(k − 1) + 1``.
    """
    (sh, sw), (jh, jw), (th, tw) = rf.size, rf.jump, rf.start
    kh = dilation[0] * (kernel[0] - 1) + 1  # effective kernel
    kw = dilation[1] * (kernel[1] - 1) + 1
    return ReceptiveField(
        (sh + (kh - 1) * jh, sw + (kw - 1) * jw),
        (jh * stride[0], jw * stride[1]),
        (th + ((kh - 1) / 2 - pad_before[0]) * jh, tw + ((kw - 1) / 2 - pad_before[1]) * jw),
    )


def rf_merge(a: ReceptiveField, b: ReceptiveField) -> ReceptiveField:
    """Receptive field where two paths are added (residual): the larger field of the two."""
    size = (max(a.size[0], b.size[0]), max(a.size[1], b.size[1]))
    wider = a if a.size[0] * a.size[1] >= b.size[0] * b.size[1] else b
    return ReceptiveField(size, wider.jump, wider.start)
