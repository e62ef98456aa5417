"""Data objects returned by the analysis (compute and render are separate, STYLE.md rule 8).

``render.py`` and the report only read these; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnlab.analysis.shapes import ReceptiveField

Shape = tuple[int, ...]
BYTES_PER_VALUE = 4  # float32


@dataclass
class LayerAnalysis:
    """What one layer computes, for one sample.

    ``formula`` is the parameter formula with symbols and numbers; ``shape_formula`` the output-size
    formula; ``notes`` explain derived values (implicit flatten, in_features) and flooring.
    ``resolved`` holds the exact numbers the builder needs (e.g. ``padding`` as (top, bottom, left,
    right)), so the model is built from the same arithmetic the user reads.
    """

    index: int
    path: str
    kind: str
    title: str
    input_shape: Shape
    output_shape: Shape
    weights: int = 0
    biases: int = 0
    trainable: bool = True
    buffers: int = 0
    macs: int = 0
    formula: str = ""
    shape_formula: str = ""
    notes: list[str] = field(default_factory=list)
    receptive_field: ReceptiveField | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    children: list[LayerAnalysis] = field(default_factory=list)
    depth: int = 0
    saved_bytes: int = 0  # per sample, tensors made inside the layer that autograd keeps
    saves_input: bool = False  # the layer's first op keeps its input for backward
    saves_output: bool = False  # the layer's last op keeps its output for backward
    view: bool = False  # output shares the input's storage (flatten, identity)

    @property
    def params(self) -> int:
        """weights + biases (for a residual block: its branch and shortcut together)."""
        return self.weights + self.biases

    @property
    def activations(self) -> int:
        """Number of values in this layer's output, per sample."""
        n = 1
        for d in self.output_shape:
            n *= d
        return n

    def to_dict(self) -> dict[str, Any]:
        rf = self.receptive_field
        return {
            "index": self.index,
            "path": self.path,
            "kind": self.kind,
            "title": self.title,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "weights": self.weights,
            "biases": self.biases,
            "trainable": self.trainable,
            "buffers": self.buffers,
            "macs": self.macs,
            "activations": self.activations,
            "formula": self.formula,
            "shape_formula": self.shape_formula,
            "notes": list(self.notes),
            "receptive_field": None
            if rf is None
            else {"size": list(rf.size), "jump": list(rf.jump), "start": list(rf.start)},
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(frozen=True)
class MemoryEstimate:
    """Training memory for one step with batch ``batch`` (float32, Adam-like optimizer: 2 states)."""

    batch: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    buffers: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.buffers

    def to_dict(self) -> dict[str, int]:
        return {
            "batch": self.batch,
            "weights_bytes": self.weights,
            "gradients_bytes": self.gradients,
            "optimizer_bytes": self.optimizer,
            "activations_bytes": self.activations,
            "buffers_bytes": self.buffers,
            "total_bytes": self.total,
        }


@dataclass
class Analysis:
    """The whole network: per-layer rows plus totals (``analyze(spec)`` or ``summary(module)``)."""

    name: str
    input_shape: Shape
    layers: list[LayerAnalysis]
    batch: int = 1
    lang: str = "en"
    warnings: list[str] = field(default_factory=list)
    num_classes: int | None = None
    total_params: int = 0
    trainable_params: int = 0
    total_buffers: int = 0
    total_macs: int = 0
    memory: MemoryEstimate | None = None
    source: str | None = None

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def flops(self) -> int:
        """FLOPs = 2 × MACs (one multiply and one add each), per sample."""
        return 2 * self.total_macs

    @property
    def weight_bytes(self) -> int:
        """Bytes of the parameters in float32."""
        return self.total_params * BYTES_PER_VALUE

    @property
    def conv_layers(self) -> list[int]:
        """Indices of the top-level conv layers (for feature maps and Grad-CAM)."""
        return [la.index for la in self.layers if la.kind == "conv"]

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def walk(self) -> list[LayerAnalysis]:
        """Every row, depth first (residual children after their block)."""
        out: list[LayerAnalysis] = []

        def visit(rows: list[LayerAnalysis]) -> None:
            for row in rows:
                out.append(row)
                visit(row.children)

        visit(self.layers)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "batch": self.batch,
            "layers": [la.to_dict() for la in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_buffers": self.total_buffers,
            "weight_bytes": self.weight_bytes,
            "total_macs": self.total_macs,
            "total_flops": self.flops,
            "memory": None if self.memory is None else self.memory.to_dict(),
            "num_classes": self.num_classes,
            "warnings": list(self.warnings),
        }
