"""Data objects of the report: ``collect`` fills them, ``render`` turns them into HTML.

Nothing here computes or renders; it is the contract between the two halves (STYLE.md habit 8).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Picture:
    """A PNG with its caption; ``width``/``height`` in pixels (written into ``<img>`` to avoid reflow)."""

    key: str
    title: str
    caption: str
    png: bytes
    width: int
    height: int

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class LayerRow:
    """One row of the explained layer table (a residual block carries its inner rows in ``children``)."""

    index: int
    kind: str
    title: str
    output: str
    params: int
    macs: int
    receptive_field: str
    explanation: list[str]
    children: list[LayerRow] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """A labelled value (a summary card, a configuration line)."""

    label: str
    value: str
    hint: str = ""


@dataclass
class Evaluation:
    """What the model does on the report's image set (numbers only; the pictures live in ``ReportData``)."""

    description: str
    n: int
    accuracy: float
    loss: float
    top_k: dict[int, float]
    per_class: list[dict[str, Any]]
    most_confused: list[tuple[str, str, int]]


@dataclass
class ReportData:
    """Everything one report shows, already computed and translated."""

    lang: str
    title: str
    subtitle: str
    run_path: str
    generated: str
    version: str
    headline: list[Item]
    layers: list[LayerRow]
    totals: list[Item]
    total_params: int
    input_shape: str
    config: list[Item]
    data: list[Item]
    epochs: list[dict[str, Any]]
    curves: Picture | None = None
    evaluation: Evaluation | None = None
    confusion: Picture | None = None
    filters: list[Picture] = field(default_factory=list)
    maps: Picture | None = None
    cams: Picture | None = None
    mistakes: Picture | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def pictures(self) -> list[Picture]:
        """Every picture in page order."""
        found = [self.curves, self.confusion, *self.filters, self.maps, self.cams, self.mistakes]
        return [p for p in found if p is not None]
