"""The demo's "most confused" lines are grammatical in both languages: 1 time / 2 times, 1 vez / 2 vezes."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest

from cnnlab.workflows import demo


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", ["most confused: a true 9 read as 4 (2 times)", "most confused: a true 1 read as 7 (1 time)"]),
    ("pt", ["maior confusão: um 9 verdadeiro lido como 4 (2 vezes)",
            "maior confusão: um 1 verdadeiro lido como 7 (1 vez)"]),
])
def test_confusion_counts_are_singular_or_plural(lang, expected, monkeypatch, capsys) -> None:
    result = SimpleNamespace(predictions=np.array([4, 4, 7, 0]), labels=np.array([9, 9, 1, 0]), accuracy=0.25,
                             most_confused=lambda k: [("9", "4", 2), ("1", "7", 1)][:k])
    # the module, not the function `cnnlab.inference.evaluation` that the package exports under the same name
    monkeypatch.setattr(importlib.import_module("cnnlab.inference.evaluation"), "evaluate", lambda run, data: result)
    demo._evaluate(None, [0, 1, 2, 3], lang)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == expected
