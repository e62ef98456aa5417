"""``cnnlab data``: text and JSON reports, exit codes.

Run: ``.venv/bin/pytest tests/test_data_cli.py`` (the subprocess test is ``-m slow``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli import main


def dataset(root: Path) -> Path:
    for cls, n, size in (("cats", 5, (30, 20)), ("dogs", 4, (10, 40))):
        (root / "train" / cls).mkdir(parents=True)
        (root / "validation" / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (i * 40, 10, 10)).save(root / "train" / cls / f"{i}.jpg")
        Image.new("L", size, 99).save(root / "validation" / cls / "v.png")
    (root / "train" / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    (root / "train" / "cats" / ".DS_Store").write_bytes(b"x")
    (root / "validation" / "dogs" / "dup.jpg").write_bytes((root / "train" / "dogs" / "1.jpg").read_bytes())
    return root


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = dataset(tmp_path / "d")
    assert main(["data", str(root), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["classes"] == ["cats", "dogs"]
    assert out["counts"] == {"train": {"cats": 5, "dogs": 4}, "val": {"cats": 1, "dogs": 2}}
    assert out["sizes"]["width"] == {"min": 10, "median": 20, "max": 30}  # six at 10, six at 30
    assert out["modes"] == {"RGB": 10, "L": 2}  # 9 train JPEGs + the duplicate; 2 grey PNGs
    assert [Path(s["path"]).name for s in out["skipped"]] == ["broken.jpg"]
    assert [Path(s["path"]).name for s in out["ignored"]] == [".DS_Store"]
    names = {(d["split"], Path(d["path"]).name) for g in out["duplicates"] for d in g}
    assert names == {("train", "1.jpg"), ("val", "dup.jpg")}
    assert out["total"] == 12


def test_text_report_and_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = dataset(tmp_path / "d")
    assert main(["data", str(root)]) == 0
    text = capsys.readouterr().out
    assert "skipped: 1" in text and "broken.jpg" in text and "corrupt header" in text
    assert "identical images in two splits: 1" in text
    assert main(["data", str(root), "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err


def test_structural_problems_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "one" / "cats").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "one" / "cats" / "a.png")
    assert main(["data", str(tmp_path / "one")]) == 2
    assert "only one class" in capsys.readouterr().err


def test_sample_in_portuguese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "sample", "--lang", "pt"]) == 0
    text = capsys.readouterr().out
    assert "imagens: 10.000" in text and "classe" in text and "modos: L 10.000" in text
    assert "8.000" in text.split("total")[1].split()[0]  # the table's total row: 8.000 training images


@pytest.mark.slow
def test_cli_subprocess_never_prints_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "data", str(tmp_path / "f.txt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "is a file" in proc.stderr


def test_locales_have_the_same_keys() -> None:
    import cnnlab

    folder = Path(cnnlab.__file__).parent / "locales"
    en = json.loads((folder / "data.en.json").read_text(encoding="utf-8"))
    pt = json.loads((folder / "data.pt.json").read_text(encoding="utf-8"))
    assert set(en) == set(pt) and all(k.startswith("data.") for k in en)


@pytest.mark.slow
def test_cnnlab_data_does_not_import_torch() -> None:
    code = "import sys; from cnnlab.cli import main; main(['data', 'sample', '--format', 'json']); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("False")


def test_clear_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.data import load_data

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    root = dataset(tmp_path / "d")
    load_data(root, (3, 8, 8), progress=False)
    assert any((tmp_path / "cache").glob("*.npy"))
    assert main(["data", "--clear-cache"]) == 0
    assert "removed" in capsys.readouterr().out and not any((tmp_path / "cache").glob("*.npy"))
    assert main(["data"]) == 2
