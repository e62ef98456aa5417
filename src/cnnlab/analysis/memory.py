"""What autograd keeps for the backward pass: the activation part of the training-memory estimate.

Each row says what its PyTorch ops save (``saves_input``, ``saves_output``, ``saved_bytes`` for
tensors made and saved inside the layer, per sample); a tensor saved by two ops (a ReLU's output
that the next conv also saves as its input) is counted once, as PyTorch stores it once.
``tests/test_analysis_memory.py`` checks the figure against autograd's saved-tensor hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.analysis.types import BYTES_PER_VALUE, LayerAnalysis
from cnnlab.spec import Act

SAVES_OUTPUT = (Act.RELU, Act.TANH, Act.SIGMOID)  # backward uses the result
SAVES_INPUT = (Act.GELU, Act.LEAKY_RELU)  # backward uses the argument
INDEX_BYTES = 8  # max pooling keeps int64 argmax indices
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


def activation_bytes(rows: Sequence[LayerAnalysis], input_values: int) -> int:
    """Per-sample bytes autograd keeps for a whole network (the input counted when an op saves it)."""
    total, input_saved, _ = chain(rows, input_values * BYTES_PER_VALUE, grad=False)
    return total + (input_values * BYTES_PER_VALUE if input_saved else 0)
