"""``cnnlab train`` / ``cnnlab demo`` as a user meets them: help shows defaults, --dry-run prints the
resolved options, bad input exits 2 with a message and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cnnlab.cli import main


def test_help_lists_options_with_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for needle in ("--epochs", "(default: 10)", "--optimizer {adamw,sgd}", "--schedule {onecycle,cosine,constant,step}",
                   "--precision {fp32,bf16,fp16}", "--device {auto,cpu,cuda,mps}", "--resume", "--patience",
                   "--label-smoothing", "--no-augment", "--config"):
        assert needle in out, needle


def test_dry_run_resolves_config_file_then_flags(tmp_path, capsys):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("epochs: 7\nlr: 0.01\noptimizer: sgd\n")
    assert main(["train", "lenet5", "--data", "sample", "--config", str(cfg), "--lr", "0.02", "--dry-run"]) == 0
    text = capsys.readouterr().out
    resolved = yaml.safe_load(text)
    assert resolved["epochs"] == 7  # from the file
    assert resolved["lr"] == 0.02  # the flag wins
    assert resolved["optimizer"] == "sgd"
    assert resolved["weight_decay"] == 5e-4  # SGD's default, filled in by resolve()
    assert resolved["translate"] == 3 and resolved["hflip"] is False  # 32x32 grey input


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "lenet5", "--data", "sample", "--epochs", "0", "--dry-run"], "argument --epochs: must be a whole number >= 1"),
    (["train", "lenet5", "--data", "sample", "--config", "missing.yaml"], "cannot read config file"),
    (["train", "nowhere/run", "--resume"], "cannot resume"),
])
def test_bad_input_exits_2_with_a_message(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


def test_cli_module_does_not_import_torch():
    code = "import sys, cnnlab.cli.train_cmds; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_portuguese_messages_cover_every_english_one_with_the_same_placeholders():
    import json
    import string
    from importlib import resources

    folder = resources.files("cnnlab") / "locales"
    en = json.loads((folder / "train.en.json").read_text(encoding="utf-8"))
    pt = json.loads((folder / "train.pt.json").read_text(encoding="utf-8"))
    assert en.keys() == pt.keys()
    for key in en:
        names = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
        assert names == {f for _, f, _, _ in string.Formatter().parse(pt[key]) if f}, key


def test_cnnlab_train_is_callable_even_after_its_submodules_are_imported(tmp_path):
    import cnnlab
    import cnnlab.train.config  # binds the attribute cnnlab.train to the package

    with pytest.raises(Exception, match="no training data given"):
        cnnlab.train("lenet5", None, out=tmp_path / "x")


def test_option_table_matches_train_config():
    """The CLI's literal option table (kept literal so that registration imports no cnnlab.train)."""
    import dataclasses

    from cnnlab.cli.train_cmds import _CHOICES, FIELDS
    from cnnlab.data.types import Resize
    from cnnlab.train.config import Device, LRScaling, Optimizer, Precision, Schedule, TrainConfig

    defaults = TrainConfig()
    expected = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(defaults, f.name)
        base = str(f.type).split(" |")[0]
        kind = {"bool": bool, "int": int, "float": float}.get(base, str)
        expected.append((f.name, kind, value.value if hasattr(value, "value") else value))
    assert list(FIELDS) == expected
    enums = {"optimizer": Optimizer, "schedule": Schedule, "device": Device, "precision": Precision, "resize": Resize,
             "lr_scaling": LRScaling}
    assert {name: [m.value for m in e] for name, e in enums.items()} == _CHOICES


def test_building_the_parser_imports_no_training_code():
    code = "import sys, cnnlab.cli; cnnlab.cli.build_parser(); print(sorted(m for m in sys.modules if m.startswith('cnnlab.train') or m == 'yaml'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
