"""``cnnlab summary / check / models`` end to end (in-process), the golden tables, and the torch-free path.

Regenerate the golden files after an intended change of the table:
    CNNLAB_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_analysis_cli.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.analysis import analyze
from cnnlab.analysis.render import render
from cnnlab.cli import main

GOLDEN = Path(__file__).parent / "golden"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "summary", "vgg16", "--format", "json", "--batch", "32")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == 138_357_544 and data["memory"]["batch"] == 32
    assert data["total_macs"] == 15_470_264_320  # VGG-16 at 224: 15.47 GMACs (published)
    layer = data["layers"][0]
    assert {"index", "kind", "output_shape", "params", "macs", "formula", "receptive_field"} <= set(layer)
    assert layer["output_shape"] == [64, 224, 224] and layer["params"] == 1_792


def test_summary_csv_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "summary", "keras-mnist", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [int(r["params"]) for r in rows] == [320, 0, 18_496, 0, 0, 0, 16_010]
    code, out, _ = run_cli(capsys, "summary", "keras-mnist", "--format", "markdown")
    assert code == 0 and "| 2 | conv 3×3, 32→64 + relu | 64×11×11 | 18,496 |" in out


def test_summary_table_in_portuguese(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "summary", "book-cnn", "--lang", "pt")
    assert code == 0
    assert "como é calculado" in out and "(3·3·32+1)·64 = 18.496" in out and "treináveis" in out


def test_check_exit_codes_and_all_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {filters: 4, kernel: 9}\n  - pool: {kind: mx}\n"
                   "  - output: 2\n")
    code, out, err = run_cli(capsys, "check", "keras-mnist", str(bad))
    assert code == 2
    assert "ok: keras-mnist" in out
    assert "line 4" in err and "did you mean 'max'" in err
    code, _, err = run_cli(capsys, "summary", "no-such-net")
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_models_lists_every_bundled_network(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "--format", "json")
    counts = {m["name"]: m["params"] for m in json.loads(out)}
    assert code == 0 and counts["resnet18"] == 11_689_512 and counts["alexnet-2012"] == 60_965_224
    assert {m["name"]: m["trainable_params"] for m in json.loads(out)}["lenet5-1998"] == 60_000


@pytest.mark.parametrize(("name", "fmt", "suffix"), [("book-cnn", "table", "txt"), ("book-cnn", "markdown", "md"),
                                                     ("lenet5-1998", "table", "txt")])
def test_golden_tables(name: str, fmt: str, suffix: str) -> None:
    text = render(analyze(name), fmt)
    path = GOLDEN / f"analysis_{name}.{suffix}"
    if os.environ.get("CNNLAB_REGEN_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"rendering changed; regenerate with CNNLAB_REGEN_GOLDEN=1 ({path})"


def test_summary_command_never_imports_torch() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from cnnlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['summary', 'resnet18']) == 0\n"
        "    assert main(['check', 'alexnet-2012']) == 0\n"
        "    assert main(['models']) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_summary_for_another_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "summary", "lenet5", "--input", "1,20,20", "--format", "json")
    data = json.loads(out)
    # 20 -> conv5 16 -> pool 8 -> conv5 4 -> pool 2: the first dense layer reads 16·2·2 = 64 values
    assert code == 0 and data["layers"][5]["params"] == (16 * 2 * 2 + 1) * 120
    code, _, err = run_cli(capsys, "summary", "lenet5", "--input", "1,a,20")
    assert code == 2 and "C,H,W" in err


def test_portuguese_from_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CNNLAB_LANG", "LC_ALL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    code, out, _ = run_cli(capsys, "summary", "keras-mnist")
    assert code == 0 and "parâmetros" in out and "34.826" in out
