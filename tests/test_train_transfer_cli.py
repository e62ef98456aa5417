"""``--init-from`` as a user types it: ``cnnlab summary`` marks frozen layers with trainable vs frozen
counts, ``train --dry-run`` shows the fine-tuning defaults, bad sources exit 2 with a message, and
(slow) ``train --init-from`` on an image folder followed by ``predict`` uses the recorded normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from cnnlab.cli import main
from cnnlab.model import build

TINY = {
    "name": "tinybn", "input": [1, 8, 8],
    "layers": [{"conv": {"filters": 4, "kernel": 3, "padding": 1, "activation": "none"}}, {"batchnorm": "relu"},
               {"pool": 2}, {"dense": 8}, {"output": 3}],
}


def files(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    torch.manual_seed(0)
    src = dict(TINY, layers=[*TINY["layers"][:-1], {"output": 5}])  # 5 classes in the source
    save_file({k: v.contiguous() for k, v in build(src).state_dict().items()}, str(tmp_path / "src.safetensors"))
    return spec, tmp_path / "src.safetensors"


def test_summary_marks_frozen_layers_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, src = files(tmp_path)
    assert main(["summary", str(spec), "--init-from", str(src), "--width", "100"]) == 0
    out = capsys.readouterr().out
    assert "9 tensors loaded, 2 replaced, 0 freshly initialised" in out
    # head: 8x3 + 3 = 27 trainable; conv 36 + 4, batchnorm 4 + 4, dense 64x8 + 8 frozen = 568
    assert "27 trainable / 568 frozen of 595 parameters" in out
    rows = {line.split()[0]: line for line in out.splitlines()[-8:] if line.strip()[:1].isdigit()}
    assert "frozen" in rows["0"] and "frozen" in rows["3"] and "frozen" not in rows["4"]
    assert "replaced" in rows["4"]


def test_summary_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, src = files(tmp_path)
    assert main(["summary", str(spec), "--init-from", str(src), "--format", "json", "--freeze-epochs", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["init_from"]["frozen_params"] == 0 and data["init_from"]["trainable_params"] == data["total_params"]


def test_dry_run_shows_fine_tuning_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "resnet18", "--data", "sample", "--init-from", "resnet18:imagenet", "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["init_from"] == "resnet18:imagenet"
    assert resolved["freeze_epochs"] == 1 and resolved["lr_ratio"] == 0.1


@pytest.mark.parametrize(("argv", "needle"), [
    (["summary", "lenet5", "--init-from", "nowhere/weights.safetensors"], "no such run folder or weights file"),
    (["summary", "lenet5", "--init-from", "resnet18:imagenett"], "did you mean 'resnet18:imagenet'"),
    (["train", "lenet5", "--data", "sample", "--freeze-epochs", "2", "--dry-run"], "freeze_epochs=2"),
])
def test_bad_sources_exit_2_with_a_message(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


@pytest.mark.slow
def test_train_init_from_then_predict_uses_the_source_normalisation(tmp_path: Path) -> None:
    from PIL import Image

    from cnnlab.train import load_run

    rng = np.random.default_rng(0)
    for label, name in enumerate(["rows", "cols", "box"]):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(20):
            img = rng.integers(0, 90, size=(8, 8))
            if label == 0:
                img[::2, :] += 150
            elif label == 1:
                img[:, ::2] += 150
            else:
                img[2:6, 2:6] += 150
            Image.fromarray(img.astype(np.uint8)).save(tmp_path / "data" / name / f"{i}.png")
    spec, _ = files(tmp_path)
    common = ["--data", str(tmp_path / "data"), "--epochs", "2", "--batch-size", "16", "--device", "cpu",
              "--threads", "1", "--quiet", "--no-report"]
    assert main(["train", str(spec), *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["train", str(spec), *common, "--out", str(tmp_path / "b"), "--init-from", str(tmp_path / "a"),
                 "--freeze-epochs", "1", "--lr-ratio", "0.1"]) == 0
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    assert b.mean == a.mean and b.std == a.std
    assert json.loads((tmp_path / "b" / "init_from.json").read_text())["counts"]["loaded"] == 11
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["init_from"] == str(tmp_path / "a")
    assert main(["predict", str(tmp_path / "b"), str(tmp_path / "data" / "box" / "0.png")]) == 0
