"""What autograd keeps for the backward pass: the activation part of the training-memory estimate.

Each row says what its PyTorch ops save (``saves_input``, ``saves_output``, ``saved_bytes`` for
tensors made and saved inside the layer, per sample); a tensor saved by two ops (a ReLU's output
that the next conv also saves as its input) is counted once, as PyTorch stores it once. A conv + ReLU
followed by a plain max-pool is counted as the model runs it in training: pool first, then ReLU
(``pool_first``).
``tests/test_analysis_memory.py`` checks the figure against autograd's saved-tensor hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cnnlab.analysis.types import BYTES_PER_VALUE, LayerAnalysis
from cnnlab.spec import Act

SAVES_OUTPUT = (Act.RELU, Act.TANH, Act.SIGMOID)  # backward uses the result
SAVES_INPUT = (Act.GELU, Act.LEAKY_RELU)  # backward uses the argument
INDEX_BYTES = 8  # max pooling keeps int64 argmax indices
RELU_OUT = "relu_out"  # resolved key: a conv row whose activation is ReLU
PLAIN_MAX = "plain_max"  # resolved key: a max-pool row that builds to a lone nn.MaxPool2d
MASK_BYTES = 4  # dropout keeps its scaled float32 mask on the CPU (fused CUDA dropout: a 1-byte bool mask)


def add_activation(row: LayerAnalysis, act: Act) -> None:
    """Account for an activation applied to the row's output (in place)."""
    if act in SAVES_OUTPUT:
        row.saves_output = True
    elif act in SAVES_INPUT:
        row.saved_bytes += row.activations * BYTES_PER_VALUE


def chain(rows: Sequence[LayerAnalysis], input_bytes: int, grad: bool = True) -> tuple[int, bool, bool]:
    """Bytes saved by a sequence of rows, per sample.

    ``grad``: whether the chain's input already carries a gradient. Before the first layer with
    trainable parameters nothing needs a gradient, so autograd records (and keeps) nothing there.
    Returns ``(bytes excluding the chain's input, input is saved, last output is saved)``.
    """
    total, input_saved = 0, False
    prev_bytes, prev_saved, prev_is_input = input_bytes, False, True
    for row in rows:
        if row.view:
            continue  # shares the storage of its input
        learns = row.params > 0 and row.trainable
        if not grad and not learns:
            prev_bytes, prev_saved, prev_is_input = row.activations * BYTES_PER_VALUE, False, False
            continue
        if not grad and "no_grad_bytes" in row.resolved:  # a·pool(x) + b first: only a·(…) and after keep
            total += row.resolved["no_grad_bytes"]
        else:
            if row.saves_input and not prev_saved:
                if prev_is_input:
                    input_saved = True
                else:
                    total += prev_bytes
            total += row.saved_bytes
        prev_bytes, prev_saved, prev_is_input = row.activations * BYTES_PER_VALUE, row.saves_output, False
        if row.saves_output:
            total += prev_bytes
        grad = True
    return total, input_saved, prev_saved


def pool_first(rows: Sequence[LayerAnalysis]) -> list[LayerAnalysis]:
    """``rows`` as the model runs them in training: a conv + ReLU followed by a plain max-pool runs as
    conv -> pool -> ReLU (``cnnlab.model.pool_first``, same pairing rule), so the ReLU keeps the
    pooled output instead of the conv's; the pool keeps the conv's output. Changed rows are copies."""
    out, i = list(rows), 0
    while i + 1 < len(out):
        first, second = out[i], out[i + 1]
        if first.kind == "conv" and first.resolved.get(RELU_OUT) and second.kind == "pool" \
                and second.resolved.get(PLAIN_MAX):
            out[i], out[i + 1] = replace(first, saves_output=False), replace(second, saves_output=True)
            i += 2
        else:
            i += 1
    return out


def activation_bytes(rows: Sequence[LayerAnalysis], input_values: int) -> int:
    """Per-sample bytes autograd keeps for a whole network (the input counted when an op saves it)."""
    total, input_saved, _ = chain(pool_first(rows), input_values * BYTES_PER_VALUE, grad=False)
    return total + (input_values * BYTES_PER_VALUE if input_saved else 0)
