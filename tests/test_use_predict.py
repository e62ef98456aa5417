"""predict: mixed good and bad inputs, the run's preprocessing, batching, top-k, input expansion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from _use_helpers import real_run
from cnnlab.errors import CnnlabError
from cnnlab.inference.prediction import expand_inputs, predict

CLASSES = ["zero", "one", "two", "three", "four"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _save_png(path: Path, array_chw: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array_chw.shape[0] == 1:
        Image.fromarray(array_chw[0], mode="L").save(path)
    else:
        Image.fromarray(array_chw.transpose(1, 2, 0), mode="RGB").save(path)


@pytest.fixture()
def images(tmp_path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """Five lossless PNGs already at the run's input size (so resizing is the identity)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(5):
        arr = rng.integers(0, 256, size=(3, 10, 10), dtype=np.uint8)
        name = f"pics/{'sub/' if i >= 3 else ''}img{i}.png"
        _save_png(tmp_path / name, arr)
        arrays[str(tmp_path / name)] = arr
    run = real_run(tmp_path / "run", 3, 10, CLASSES, (0.5, 0.45, 0.4), (0.25, 0.2, 0.3))
    return run, arrays


def test_mixed_good_and_bad_files(tmp_path: Path, images: tuple[Any, dict[str, np.ndarray]]) -> None:
    run, arrays = images
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = sorted(arrays)
    inputs = [good[0], str(tmp_path / "notes.txt"), str(tmp_path / "broken.png"), good[1],
              str(tmp_path / "missing.png"), str(tmp_path / "empty.jpg"), good[2]]
    results = predict(run, inputs, top_k=2, batch_size=2)
    assert [r.source for r in results] == inputs  # one entry per input, in order
    assert [r.ok for r in results] == [True, False, False, True, False, False, True]
    assert "missing.png" in (results[4].error or "")
    for r in results:
        if not r.ok:
            assert r.top == [] and r.label is None
    # the good files get exactly what the model says on the original pixels, preprocessed by hand
    x = torch.from_numpy(np.stack([arrays[good[i]] for i in range(3)])).float() / 255
    x = (x - torch.tensor(run.mean).view(1, 3, 1, 1)) / torch.tensor(run.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = torch.softmax(run.model(x), 1).numpy()
    for row, r in zip(ref, [results[0], results[3], results[6]], strict=True):
        order = np.argsort(-row)
        assert [c for c, _ in r.top] == [CLASSES[order[0]], CLASSES[order[1]]]
        assert r.top[0][1] == pytest.approx(float(row[order[0]]), rel=1e-5)
        assert r.top[0][1] >= r.top[1][1]


def test_folders_and_globs_expand_to_image_files(tmp_path: Path, images: tuple[Any, dict]) -> None:
    run, arrays = images
    (tmp_path / "pics" / "readme.txt").write_text("skip me in folders")
    (tmp_path / "pics" / ".hidden.png").write_bytes(b"x")
    from_folder = predict(run, [str(tmp_path / "pics")], top_k=10)
    assert sorted(r.source for r in from_folder) == sorted(arrays)  # recursive, images only
    assert all(r.ok and len(r.top) == len(CLASSES) for r in from_folder)  # top_k clipped to K
    assert sum(r.top[0][1] for r in from_folder) > 0
    for r in from_folder:
        assert sum(p for _, p in r.top) == pytest.approx(1.0, abs=1e-5)
    from_glob = predict(run, [str(tmp_path / "pics" / "*.png")])
    assert len(from_glob) == 3 and all(r.ok for r in from_glob)
    deep = predict(run, [str(tmp_path / "pics" / "**" / "*.png")])
    assert len(deep) == 5


def test_inputs_that_match_nothing_say_why(tmp_path: Path) -> None:
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "digit.png").write_bytes(b"")
    entries = dict(expand_inputs([str(tmp_path / "empty_dir"), str(tmp_path / "*.jpeg"), str(tmp_path / "digt.png")]))
    assert "no image files" in entries[str(tmp_path / "empty_dir")]
    assert "no image files match" in entries[str(tmp_path / "*.jpeg")]
    assert "did you mean 'digit.png'" in entries[str(tmp_path / "digt.png")]


def test_duplicates_are_predicted_once(images: tuple[Any, dict]) -> None:
    run, arrays = images
    first = sorted(arrays)[0]
    assert len(predict(run, [first, first])) == 1


def test_grey_run_reads_colour_file_as_grey(tmp_path: Path) -> None:
    run = real_run(tmp_path / "run", 1, 8, CLASSES, (0.5,), (0.25,))
    _save_png(tmp_path / "colour.png", np.full((3, 32, 32), 200, np.uint8))
    (res,) = predict(run, [str(tmp_path / "colour.png")])
    assert res.ok


def test_bad_options_are_errors(images: tuple[Any, dict]) -> None:
    run, _ = images
    with pytest.raises(CnnlabError, match="top-k"):
        predict(run, ["x.png"], top_k=0)


def test_predict_reads_every_extension_training_reads(tmp_path: Path) -> None:
    """A folder of .jfif/.jpe/.pbm/.pnm files: training decodes them, so predict must find them too."""
    from PIL import Image

    from cnnlab.data.decode import IMAGE_EXTENSIONS

    run = real_run(tmp_path / "run", 1, 8, CLASSES, (0.5,), (0.25,))
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.new("L", (8, 8), 128).save(folder / "a.jfif", format="JPEG")
    Image.new("L", (8, 8), 128).save(folder / "b.jpe", format="JPEG")
    Image.new("1", (8, 8), 1).save(folder / "c.pbm", format="PPM")
    Image.new("L", (8, 8), 50).save(folder / "d.pnm", format="PPM")
    assert {".jfif", ".jpe", ".pbm", ".pnm"} <= set(IMAGE_EXTENSIONS)
    results = predict(run, [str(folder)])
    assert sorted(Path(r.source).name for r in results) == ["a.jfif", "b.jpe", "c.pbm", "d.pnm"]
    assert all(r.ok for r in results), [r.error for r in results]
