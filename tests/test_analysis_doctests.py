"""The runnable examples in the analysis modules' docstrings stay true.

Run: .venv/bin/pytest tests/test_analysis_doctests.py
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["cnnlab.spec.types", "cnnlab.spec.parse", "cnnlab.spec.convert", "cnnlab.analysis.shapes", "cnnlab.analysis.analyze",
           "cnnlab.analysis.render", "cnnlab.analysis.render_text", "cnnlab.zoo"]  # torch-free ones: fast


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_portuguese_catalog_covers_every_english_message_with_the_same_fields() -> None:
    import json
    import string
    from importlib import resources

    folder = resources.files("cnnlab") / "locales"
    en = json.loads((folder / "analysis.en.json").read_text(encoding="utf-8"))
    pt = json.loads((folder / "analysis.pt.json").read_text(encoding="utf-8"))
    assert set(en) == set(pt)

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    assert {k: fields(v) for k, v in en.items()} == {k: fields(v) for k, v in pt.items()}
