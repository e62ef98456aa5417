"""Shared pytest fixtures. Tests generate their own tiny data; nothing here downloads anything."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is faster than two fighting over a shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


from _browser import browser  # noqa: E402,F401  (the headless-Chromium fixture of the browser tests)
