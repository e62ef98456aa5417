"""Orchestration above the layers: "train, then write the report" (``train``) and ``demo``.

May import every library package (spec ... report); only ``cli`` sits above it.
"""

from __future__ import annotations

from cnnlab.workflows.train import train

__all__ = ["train"]
