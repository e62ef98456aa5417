"""Issue 16: paths as the user typed them, shortened in the middle; Portuguese messages and numbers.

Run: ``PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_newcomer_text.py`` (a few seconds).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnlab.cli.use_render import render_evaluation, render_predictions
from cnnlab.inference.evaluation import EvalResult, confusion_matrix, per_class_metrics
from cnnlab.inference.messages import localize
from cnnlab.inference.prediction import Prediction, expand_inputs
from cnnlab.utils.paths import shorten_middle

DEEP = "a_rather_long_folder_name/another_long_folder_name/yet_another_level_of_folders/pets"


def result(sources: list[str], n_per: int = 1) -> EvalResult:
    """A hand-made evaluation: every sample wrong with loss 2.3 (so each is in the worst table)."""
    k = 2
    labels = np.array([0, 1] * (len(sources) // 2), np.int64)
    preds = 1 - labels
    probs = np.where(np.eye(k)[preds] > 0, 0.9, 0.1).astype(np.float32)
    conf = confusion_matrix(labels, preds, k) * n_per
    return EvalResult(classes=["cat", "dog"], labels=labels, predictions=preds, probabilities=probs,
                      losses=np.full(len(labels), 2.3, np.float32), sources=sources, confusion=conf,
                      per_class=per_class_metrics(conf, ["cat", "dog"]))


def test_worst_table_keeps_every_file_name_at_80_columns(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    names = [f"{DEEP}/{c}/photo_of_a_{c}_{i:04d}.jpg" for i in range(3) for c in ("cats", "dogs")]
    render_evaluation(result(names), {"run": "runs/x", "checkpoint": "best", "data": "d", "split": "all"}, "table")
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    for name in names:  # the file name is whole; the middle of the folder path gave way
        assert Path(name).name in out
    assert "…" in out and "│ a_rath" in out  # the start of the path as typed, then the gap


def test_paths_are_shown_as_typed_not_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlinked folder stays the user's path, in predict's table as in the data a run remembers."""
    real = tmp_path / "storage" / "photos"
    real.mkdir(parents=True)
    (real / "a.png").write_bytes(b"")
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    [(source, _)] = expand_inputs(["link"])
    assert source == os.path.join("link", "a.png")
    from cnnlab.train.setup import _source_text

    remembered = _source_text("link", None)  # what data.json keeps for --resume: absolute, not resolved
    assert remembered == str(tmp_path / "link") and "storage" not in remembered


def test_shorten_middle_keeps_both_ends() -> None:
    text = "runs/cats/" + "x" * 50 + "/cat.1234.jpg"
    short = shorten_middle(text, 30)
    assert len(short) == 30 and short.startswith("runs/") and short.endswith("/cat.1234.jpg") and "…" in short
    assert shorten_middle("abc", 30) == "abc"


def test_predict_errors_in_portuguese(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cat.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("hello there")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    from cnnlab.data import load_image

    entries = expand_inputs(["cta.png", "empty", "*.gif"])
    errors = [err for _, err in entries]
    for path in ("cat.png", "notes.jpg"):
        try:
            load_image(path, (1, 8, 8))
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            errors.append(str(exc))
    pt = [localize(e, "pt") for e in errors]
    assert pt[0] == "arquivo ou pasta inexistente: cta.png; você quis dizer 'cat.png'?"
    assert pt[1].startswith("nenhum arquivo de imagem") and pt[2].startswith("nenhum arquivo de imagem corresponde")
    assert pt[3] == "não foi possível ler a imagem 'cat.png': arquivo vazio (0 bytes)"
    assert pt[4].startswith("não foi possível ler a imagem 'notes.jpg': não é uma imagem: o arquivo contém texto")
    render_predictions([Prediction(source=s, error=e) for (s, e) in entries], "table", top_k=1, lang="pt")
    out = capsys.readouterr().out
    assert "inexistente" in out and "no such file" not in out


def test_english_templates_reproduce_the_messages_the_code_writes(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog's English renders back the very sentence the code wrote, so pt states the same facts."""
    from cnnlab.data import load_image
    from cnnlab.i18n import tr

    (tmp_path / "cat.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("hello there")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    samples = [err for _, err in expand_inputs(["cta.png", "empty", "*.gif"])]
    for path in ("cat.png", "notes.jpg", "missing.png"):
        try:
            load_image(path, (1, 8, 8))
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            samples.append(str(exc))
    assert len(samples) == 6
    for text in samples:
        assert text is not None
        assert localize_with(text, lambda key, **v: tr(key, "en", **v)) == text


def localize_with(text: str, render: Any) -> str:
    """``messages.localize`` with the catalog lookup swapped (here: the English templates)."""
    from cnnlab.inference import messages

    hint = ""
    found = messages._HINT.search(text)
    if found:
        hint = render("use.err.did_you_mean", name=found.group("name"))
        text = text[: found.start()]
    for pattern, key in messages._SENTENCES:
        match = pattern.match(text)
        if match:
            values = match.groupdict()
            if "reason" in values:
                values["reason"] = localize_with(values["reason"], render)
            return str(render(key, **values)) + hint
    raise AssertionError(f"no catalog sentence for {text!r}")


def test_every_catalog_key_exists_in_both_languages() -> None:
    folder = resources.files("cnnlab") / "locales"
    for entry in folder.iterdir():
        if entry.name.endswith(".en.json"):
            en = json.loads(entry.read_text(encoding="utf-8"))
            pt = json.loads((folder / entry.name.replace(".en.", ".pt.")).read_text(encoding="utf-8"))
            assert set(en) == set(pt), entry.name


def test_evaluate_numbers_in_portuguese(capsys: pytest.CaptureFixture[str]) -> None:
    res = EvalResult(classes=["cat", "dog"], labels=np.zeros(10000, np.int64), predictions=np.zeros(10000, np.int64),
                     probabilities=np.tile([[0.9, 0.1]], (10000, 1)).astype(np.float32),
                     losses=np.full(10000, 0.1, np.float32), sources=[f"i{i}" for i in range(10000)],
                     confusion=np.array([[10000, 0], [0, 0]]),
                     per_class=per_class_metrics(np.array([[10000, 0], [0, 0]]), ["cat", "dog"]))
    render_evaluation(res, {"run": "r", "checkpoint": "best", "data": "d", "split": "all"}, "table", lang="pt",
                      worst=0)
    out = capsys.readouterr().out
    assert "10.000" in out and "10,000" not in out
    assert "100,00 %" in out  # accuracy with the Portuguese decimal comma


@pytest.mark.parametrize("name", ["cnnlab.utils.paths", "cnnlab.data.notices", "cnnlab.inference.messages",
                                  "cnnlab.i18n"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_portuguese_messages_have_the_english_fields() -> None:
    import string

    folder = resources.files("cnnlab") / "locales"
    en = json.loads((folder / "newcomer.en.json").read_text(encoding="utf-8"))
    pt = json.loads((folder / "newcomer.pt.json").read_text(encoding="utf-8"))

    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    assert {k: fields(v) for k, v in en.items()} == {k: fields(v) for k, v in pt.items()}
