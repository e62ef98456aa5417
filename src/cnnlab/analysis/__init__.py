"""Understand a network before training: shapes, parameters, MACs, memory, receptive field.

Owns the shape and parameter arithmetic (``shapes``), the per-layer analysis and its rendering.
May import: ``spec``, ``errors``, ``i18n``, ``utils``; never torch.
"""

from __future__ import annotations

from cnnlab.analysis.analyze import analyze, fill_totals
from cnnlab.analysis.types import Analysis, LayerAnalysis, MemoryEstimate

__all__ = ["Analysis", "LayerAnalysis", "MemoryEstimate", "analyze", "fill_totals"]
