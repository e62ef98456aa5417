"""Shared pytest fixtures. Tests generate their own tiny data; nothing here downloads anything."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
