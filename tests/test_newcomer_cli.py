"""Issue 16, a newcomer's first hour: shared defaults, help text, did-you-mean, run-folder hint, plurals.

Run: ``PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_newcomer_cli.py`` (a few seconds).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli import build_parser, main


def flat_folder(root: Path, per_class: int = 20) -> Path:
    """Two class folders and no split folders: cnnlab draws the validation split itself."""
    for c, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 12), (c * 120, i * 10, 5)).save(root / cls / f"{i}.png")
    return root


def test_data_previews_the_split_train_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """40 images, stratified, training's default val_split 0.1: 2 of each 20 are validation (hand-computed)."""
    root = flat_folder(tmp_path / "pets")
    assert main(["data", str(root), "--format", "json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts["val"] == {"cats": 2, "dogs": 2}
    assert counts["train"] == {"cats": 18, "dogs": 18}
    from cnnlab.data import load_data
    from cnnlab.train import TrainConfig

    # and training's own loader, with TrainConfig's defaults, makes the same split
    cfg = TrainConfig()
    bundle = load_data(root, (1, 12, 12), val_split=cfg.val_split, seed=cfg.seed, cache_dir=False, progress=False)
    assert (len(bundle.train), len(bundle.val)) == (36, 4)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _subparsers(sub)
    return out


def test_help_shows_each_default_once_and_never_none() -> None:
    parsers = _subparsers(build_parser())
    assert len(parsers) > 15  # every command and `show` kind is here
    for p in parsers:
        text = " ".join(p.format_help().split())  # argparse wraps lines: undo it
        assert "(default: None)" not in text, p.prog
        for chunk in re.split(r"\n\s*-", p.format_help()):
            assert chunk.count("(default:") <= 1, (p.prog, chunk)


def test_the_lang_option_help_reads_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: from LANG) (default: None)" not in out
    assert "default: 0.1" in out  # the val split training uses


def test_mistyped_command_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evalute", "runs/x"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'evaluate'" in err and "Traceback" not in err


def test_missing_paths_get_a_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    flat_folder(tmp_path / "cats_vs_dogs", per_class=2)
    (tmp_path / "runs" / "lenet").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["data", "cats_vs_dgos"]) == 2
    assert "did you mean 'cats_vs_dogs'?" in capsys.readouterr().err
    assert main(["evaluate", "runs/lenett"]) == 2
    assert "did you mean 'runs/lenet'?" in capsys.readouterr().err
    assert main(["summary", "exmples/x.yaml"]) == 2  # nothing close: no suggestion, still one line
    err = capsys.readouterr().err
    assert err.startswith("error:") and "did you mean 'exm" not in err


def test_run_folder_without_resume_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "cats"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("epochs: 1\n")
    (run / "spec.yaml").write_text("name: x\n")
    assert main(["train", str(run), "--data", "sample"]) == 2
    err = capsys.readouterr().err
    assert "is a run folder" in err and f"cnnlab train {run} --resume" in err


@pytest.mark.parametrize("lang", ["en", "pt"])
def test_counts_are_plural_correct(lang: str) -> None:
    from cnnlab.i18n import count, tr

    one = tr("train.recipe", lang, optimizer="adamw", schedule="onecycle", epochs=count(1, "epoch", lang),
             steps=count(62, "step", lang), batch="")
    assert ("1 epoch x 62 steps" if lang == "en" else "1 época x 62 passos") in one
    assert count(1, "step", lang) in ("1 step", "1 passo")
    assert count(10000, "image", lang) == ("10,000 images" if lang == "en" else "10.000 imagens")


def test_the_sample_says_it_ignores_split_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`sample` always splits 80/10/10 with seed 0: asking for another split gets a notice, not silence."""
    assert main(["data", "sample", "--val-split", "0.2", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("notice: the bundled sample always keeps val 0.1")
    assert json.loads(captured.out)["counts"]["val"]["0"] == 98  # unchanged: 10 % of the 980 zeros
    assert main(["data", "sample", "--format", "json"]) == 0
    assert capsys.readouterr().err == ""  # the defaults: nothing to say
