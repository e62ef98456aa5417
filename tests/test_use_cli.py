"""CLI of the using commands, in process: outputs parse and agree with each other, bad input exits 2
with one ``error:`` line and no traceback. The run folder is written with the trainer's own
writers (no training: the weights are random, which is all these tests need)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = {"name": "tiny", "input": [1, 12, 12],
        "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten", {"output": 2}]}


def _write_images(root: Path, per_class: int = 12) -> None:
    rng = np.random.default_rng(0)
    for cls in ("left", "right"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 60, (12, 12)).astype(np.uint8)
            a[:, :6 if cls == "left" else 12] += 150 if cls == "left" else 0
            if cls == "right":
                a[:, 6:] += 150
            Image.fromarray(a).save(root / cls / f"{cls}{i}.png")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.model import build
    from cnnlab.spec import load_spec
    from cnnlab.train import RunDir, TrainConfig
    from cnnlab.train.checkpoint import model_weights, write_weights

    base = tmp_path_factory.mktemp("use_cli")
    _write_images(base / "images")
    spec = load_spec(SPEC)
    torch.manual_seed(0)
    model = build(spec)
    folder = RunDir(base / "run")
    folder.create()
    config = TrainConfig(epochs=1, val_split=0.25).resolve((1, 12, 12))
    data = {"source": str(base / "images"), "input_shape": [1, 12, 12], "resize": "crop",
            "mean": [0.3], "std": [0.35], "counts": {}, "skipped": 0}
    folder.write_setup(config, spec.to_dict(), ["left", "right"], data)
    for which in ("best", "last"):
        write_weights(folder.checkpoints / which, model_weights(model), {"epoch": 1})
    return folder.path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_json_is_consistent(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "evaluate", str(run_dir), "--format", "json", "--device", "cpu")
    assert code == 0
    res = json.loads(out)
    assert res["split"] == "val"  # a folder has no test split: the held-out validation split
    cm = np.array(res["confusion"])
    assert cm.shape == (2, 2) and cm.sum() == res["n"] == 6  # 25 % of 24 images
    assert res["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert [r["support"] for r in res["per_class"]] == cm.sum(axis=1).tolist()
    assert len(res["highest_loss"]) == min(10, res["n"])
    assert all(Path(s["source"]).suffix == ".png" for s in res["highest_loss"])  # paths, not indices


def test_evaluate_on_another_source_uses_all_of_it(run_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _write_images(tmp_path / "fresh", per_class=5)  # never seen in training: every image is held out
    code, out, _ = _cli(capsys, "evaluate", str(run_dir), "--data", str(tmp_path / "fresh"), "--format", "json",
                        "--device", "cpu")
    res = json.loads(out)
    assert code == 0 and res["split"] == "all" and res["n"] == 10


def test_predict_sees_exactly_what_evaluate_sees(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files decoded by predict and the data layer's cached arrays give the same probabilities."""
    code, out, _ = _cli(capsys, "evaluate", str(run_dir), "--split", "train", "--worst", "1000", "--format", "json",
                        "--device", "cpu")
    samples = {s["source"]: s for s in json.loads(out)["highest_loss"]}
    assert code == 0 and len(samples) == 18
    code, out, _ = _cli(capsys, "predict", str(run_dir), *samples, "--top-k", "1", "--format", "json",
                        "--device", "cpu")
    assert code == 0
    for p in json.loads(out):
        assert p["label"] == samples[p["source"]]["predicted"]
        assert p["probability"] == pytest.approx(samples[p["source"]]["confidence"], abs=1e-5)


def test_evaluate_table_and_csv(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = tmp_path / "samples.csv"
    code, out, _ = _cli(capsys, "evaluate", str(run_dir), "--split", "train", "--device", "cpu", "--samples", str(samples))
    assert code == 0 and "Confusion matrix" in out and "precision" in out
    rows = samples.read_text().strip().splitlines()
    assert rows[0] == "index,source,true,predicted,confidence,loss" and len(rows) == 1 + 18
    correct = sum(r.split(",")[2] == r.split(",")[3] for r in rows[1:])
    assert f"accuracy {100 * correct / 18:.2f} %" in out  # the table's accuracy counts the same rows
    code, out, _ = _cli(capsys, "evaluate", str(run_dir), "--format", "csv", "--device", "cpu", "--lang", "pt")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == "class,precision,recall,f1,support" and len(lines) == 3


def test_predict_mixed_inputs_exit_1_and_csv(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = run_dir.parent / "images"
    (tmp_path / "bad.png").write_text("not a png")
    code, out, _ = _cli(capsys, "predict", str(run_dir), str(images / "left"), str(tmp_path / "bad.png"),
                        "--format", "csv", "--top-k", "2", "--device", "cpu")
    rows = out.strip().splitlines()
    assert code == 1  # some inputs failed
    assert rows[0] == "source,class_1,probability_1,class_2,probability_2,error"
    assert len(rows) == 1 + 12 + 1
    assert rows[-1].startswith(str(tmp_path / "bad.png")) and "cannot read" in rows[-1]
    code, out, _ = _cli(capsys, "predict", str(run_dir), str(images / "right" / "right0.png"), "--device", "cpu")
    assert code == 0 and "1 predicted, 0 failed" in out


def test_export_legacy(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cnnlab[onnx]')")
    target = tmp_path / "tiny.onnx"
    code, out, _ = _cli(capsys, "export", str(run_dir), "--exporter", "legacy", "--out", str(target), "--json")
    assert code == 0 and target.is_file()
    assert json.loads(out)["max_abs_diff"] <= 1e-4


def test_lr_find_on_a_run_leaves_it_untouched(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def digest() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}

    before = digest()
    plot = tmp_path / "curve.png"
    code, out, _ = _cli(capsys, "lr-find", str(run_dir), "--iters", "12", "--batch-size", "6", "--plot", str(plot),
                        "--format", "json", "--device", "cpu")
    assert code == 0
    res = json.loads(out)
    assert res["steps"] <= 12 and res["plot"] == str(plot) and plot.is_file()
    assert digest() == before


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["evaluate", "{missing}"], "does not exist"),
        (["predict", "{missing}", "x.png"], "does not exist"),
        (["export", "{missing}"], "does not exist"),
        (["evaluate", "{pickled_file}"], "pickled"),
        (["predict", "{pickled_run}", "x.png"], "pickled"),
        (["evaluate", "{run}", "--split", "test"], "no test split"),
        (["predict", "{run}", "x.png", "--top-k", "0"], "top-k"),
        (["lr-find", "tiny-net-that-does-not-exist", "--data", "sample"], "tiny-net"),
        (["lr-find", "lenet5"], "--data"),
        (["lr-find", "{run}", "--start-lr", "1", "--end-lr", "0.1"], "start_lr < end_lr"),
    ],
)
def test_bad_input_exits_2_without_traceback(argv: list[str], needle: str, run_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    pickled_file = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1)}, pickled_file)
    pickled_run = tmp_path / "oldrun"
    (pickled_run / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "spec.yaml", "classes.json", "data.json"):
        (pickled_run / name).write_bytes((run_dir / name).read_bytes())
    torch.save({"w": torch.zeros(1)}, pickled_run / "checkpoints" / "best.pt")
    names = {"missing": str(tmp_path / "nope"), "pickled_file": str(pickled_file), "pickled_run": str(pickled_run),
             "run": str(run_dir)}
    code, out, err = _cli(capsys, *[a.format(**names) for a in argv])
    assert code == 2, (out, err)
    assert err.startswith("error: ") and needle in err
    assert "Traceback" not in err + out


def test_registration_does_not_import_torch() -> None:
    code = "import sys, argparse; import cnnlab.cli.use_cmds as m; m.register(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_message_key_exists_in_both_languages() -> None:
    import re

    import cnnlab

    root = Path(cnnlab.__file__).parent
    en = json.loads((root / "locales" / "use.en.json").read_text(encoding="utf-8"))
    pt = json.loads((root / "locales" / "use.pt.json").read_text(encoding="utf-8"))
    assert set(en) == set(pt)
    used = set()
    for name in ("cli/use_cmds.py", "cli/use_render.py", "visualize/lr_find.py"):
        used |= set(re.findall(r'tr\(\s*"(use\.[^"{]+)"', (root / name).read_text(encoding="utf-8")))
    dynamic = {f"use.col.{c}" for c in ("class", "precision", "recall", "f1", "support", "index", "source", "true",
                                         "predicted", "confidence", "loss")}
    dynamic |= {"use.eval.macro", "use.eval.weighted", "use.lr.stopped.completed", "use.lr.stopped.diverged",
                "use.lr.method.steepest", "use.lr.method.min/10", "use.lr.method.none"}
    assert used and not (used | dynamic) - set(en)
    for key, text in en.items():  # the same placeholders in both languages
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", pt[key])), key
