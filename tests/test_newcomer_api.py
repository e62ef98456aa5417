"""Issue 16: the Python API takes what the CLI takes (run folder paths, data source names).

Run: ``PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_newcomer_api.py`` (a few seconds:
one tiny run of one epoch on 40 images of 12×12).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab

SPEC = {"name": "tiny", "input": [3, 12, 12],
        "layers": [{"conv": {"filters": 4, "kernel": 3}}, {"pool": 2}, "flatten", {"output": 2}]}


def folder(root: Path, mode: str = "RGB", per_class: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for c, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            base = 60 + 120 * c  # the classes differ in brightness: learnable in one epoch
            pixels = np.clip(base + rng.integers(-40, 40, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("api")
    data = folder(base / "pets")
    run = cnnlab.train(SPEC, str(data), out=base / "run", epochs=1, batch_size=8, quiet=True, report=False,
                       threads=1, device="cpu")
    assert run is not None
    return Path(run.path), data


def reference_accuracy(run_path: Path, files: list[str], labels: list[int]) -> float:
    """Plain PyTorch: the run's weights on the images, normalised by hand with the stored mean/std."""
    run = cnnlab.load_run(run_path)
    x = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])  # (N, 3, 12, 12)
    t = (torch.tensor(x).float() / 255 - torch.tensor(run.mean).view(1, -1, 1, 1)) / torch.tensor(run.std).view(1, -1, 1, 1)
    with torch.no_grad():
        pred = run.model(t).argmax(1).numpy()
    return float((pred == np.array(labels)).mean())


def test_evaluate_takes_a_run_path_and_a_folder_path(trained: tuple[Path, Path]) -> None:
    run_path, data = trained
    res = cnnlab.evaluate(str(run_path), str(data), split="all")  # as `cnnlab evaluate RUN --data DIR --split all`
    files = [str(p) for cls in ("cats", "dogs") for p in sorted((data / cls).glob("*.png"))]
    labels = [0] * 20 + [1] * 20
    assert len(res.labels) == 40
    assert res.accuracy == pytest.approx(reference_accuracy(run_path, files, labels))


def test_evaluate_defaults_to_the_runs_held_out_split(trained: tuple[Path, Path]) -> None:
    run_path, _ = trained
    res = cnnlab.evaluate(run_path)  # a Path, no data: the run's own validation split
    assert len(res.labels) == 4  # 40 images, val_split 0.1, stratified: 2 + 2 (hand-computed)
    assert sorted(Path(s).parent.name for s in res.sources) == ["cats", "cats", "dogs", "dogs"]


def test_evaluate_takes_a_bundle(trained: tuple[Path, Path]) -> None:
    run_path, data = trained
    bundle = cnnlab.load_data(data, (3, 12, 12), cache_dir=False, progress=False)
    assert len(cnnlab.evaluate(str(run_path), bundle).labels) == len(bundle.val)


def test_predict_takes_a_run_path_and_one_file(trained: tuple[Path, Path]) -> None:
    run_path, data = trained
    preds = cnnlab.predict(str(run_path), str(data / "dogs" / "3.png"))
    assert len(preds) == 1 and preds[0].ok and preds[0].source.endswith("3.png")


def test_evaluate_on_an_unusable_object_is_a_clear_error(trained: tuple[Path, Path]) -> None:
    with pytest.raises(cnnlab.CnnlabError, match="ImageSet, a DataBundle, or a data source"):
        cnnlab.evaluate(str(trained[0]), 42)


def test_load_data_without_an_input_shape(tmp_path: Path) -> None:
    assert cnnlab.load_data("sample", progress=False).input_shape == (1, 28, 28)  # MNIST as stored
    rgb = cnnlab.load_data(folder(tmp_path / "rgb", per_class=6), cache_dir=False, progress=False)
    assert rgb.input_shape == (3, 12, 12) and rgb.train.images.shape[1:] == (3, 12, 12)
    grey = cnnlab.load_data(folder(tmp_path / "grey", "L", per_class=6), cache_dir=False, progress=False)
    assert grey.input_shape == (1, 12, 12)


def test_report_headline_names_the_split_it_measured(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """The demo reports on held-out test digits: that card must not read "validation accuracy"."""
    from cnnlab.i18n import percent
    from cnnlab.report import write_report

    run_path, data = trained
    run = cnnlab.load_run(run_path)
    bundle = cnnlab.load_data(data, (3, 12, 12), cache_dir=False, progress=False)
    page = write_report(run, data=bundle.train, split="test", out=tmp_path / "r.html").read_text()
    assert "test accuracy (held out)" in page and ">validation accuracy<" not in page
    best_val = max(m["val_acc"] for m in run.metrics)
    assert "best validation accuracy" in page and percent(best_val) in page
    page = write_report(run, out=tmp_path / "v.html").read_text()  # the run's own validation split
    assert ">validation accuracy<" in page and "test accuracy" not in page


def test_notices_say_what_happens_to_the_images() -> None:
    from cnnlab.data.notices import shape_notices

    photos = shape_notices((3, 375, 500), (1, 28, 28), "crop")
    assert len(photos) == 2 and "converted to grey" in photos[0] and "375×500" in photos[1]
    assert all(line.startswith("notice: ") and "\n" not in line for line in photos)
    assert shape_notices((1, 28, 28), (1, 28, 28), "crop") == []  # nothing surprising: nothing said
    assert shape_notices((1, 28, 28), (1, 32, 32), "crop") == []  # a slight resize of the same shape
    assert "copiada para os 3 canais" in shape_notices((1, 12, 12), (3, 12, 12), "crop", "pt")[0]


def test_training_colour_photos_on_a_grey_network_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = folder(tmp_path / "pets", per_class=6)
    grey = dict(SPEC, input=[1, 12, 12])
    cnnlab.train(grey, str(data), out=tmp_path / "run", epochs=1, batch_size=8, report=False, threads=1,
                 device="cpu", max_steps_per_epoch=1)
    out = capsys.readouterr().out
    assert "notice: the images are colour, the network takes grey 1×12×12 input" in out


def test_predict_says_when_an_image_is_shrunk_and_made_colour(trained: tuple[Path, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main

    Image.new("L", (120, 90), 128).save(tmp_path / "grey.png")
    assert main(["predict", str(trained[0]), str(tmp_path / "grey.png")]) == 0
    err = capsys.readouterr().err
    assert "copied to the 3 channels" in err and "about 90×120 pixels, the network takes 12×12" in err
