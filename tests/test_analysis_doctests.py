"""The runnable examples in the analysis modules' docstrings stay true.

Run: .venv/bin/pytest tests/test_analysis_doctests.py
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["cnnlab.spec", "cnnlab.spec_parse", "cnnlab.spec_convert", "cnnlab.shapes", "cnnlab.analysis",
           "cnnlab.render", "cnnlab.render_text", "cnnlab.zoo"]  # torch-free ones: fast


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
