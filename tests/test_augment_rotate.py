"""The ``rotate`` and ``scale`` augmentations (#14), checked against independent references:
``np.rot90`` for quarter turns, PIL's ``Image.rotate(resample=NEAREST)`` for small angles, a pixel
worked out by hand, zoom-then-rotate applied as two separate gathers, and the numpy (CPU) path
against the torch (GPU) path. Also: ``rotate=0`` and ``scale=0`` draw nothing, so older runs keep
their batches bit for bit, and the options reach the training config, the CLI and the run folder.

Run: ``PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_augment_rotate.py``
(add ``-m slow`` for the end-to-end ``cnnlab train --rotate`` run).
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import Augment, BatchLoader, ImageSet
from cnnlab.data.augment import Draw
from cnnlab.errors import CnnlabError, DataError
from cnnlab.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _turn(x: np.ndarray, angles: list[float], scales: list[float] | None = None) -> np.ndarray:
    """``x`` (B, C, H, W) turned by ``angles`` (degrees, one per image), nothing else."""
    b = len(x)
    d = Draw(np.zeros((2, b), np.int64), np.zeros(b, bool), None, np.array(angles, float),
             None if scales is None else np.array(scales, float))
    return Augment(rotate=180, scale=0.5).apply_numpy(x, d)


# ------------------------------------------------------------------ exact references


# odd and even sides (the centre on a pixel, and between four); 28: several images per chunk of the
# warp (augment._CHUNK_PIXELS), 130: one image per chunk
@pytest.mark.parametrize("size", [7, 8, 28, 130])
def test_quarter_turns_equal_np_rot90(size: int) -> None:
    """Positive angles turn counter-clockwise as displayed, like ``np.rot90`` (rows grow downwards)."""
    x = np.random.default_rng(size).integers(0, 256, (4, 3, size, size), dtype=np.uint8)
    for k, angle in [(1, 90.0), (2, 180.0), (3, 270.0), (3, -90.0), (1, -270.0), (0, 0.0)]:
        turned = _turn(x, [angle] * 4)
        assert np.array_equal(turned, np.rot90(x, k, axes=(2, 3))), angle


def test_half_turn_of_a_non_square_image_equals_flipping_both_axes() -> None:
    x = np.random.default_rng(1).integers(0, 256, (2, 3, 9, 14), dtype=np.uint8)
    assert np.array_equal(_turn(x, [180.0, -180.0]), x[:, :, ::-1, ::-1])


@pytest.mark.parametrize("angle", [3.0, -7.3, 10.0, -12.5, 15.0, 33.0])
def test_small_angles_match_pil_nearest_rotate(angle: float) -> None:
    """PIL samples the nearest pixel about the same centre and fills with 0; only ties may differ."""
    img = np.random.default_rng(2).integers(1, 256, (28, 28), dtype=np.uint8)  # no zeros: fill is visible
    ref = np.asarray(Image.fromarray(img).rotate(angle, resample=Image.Resampling.NEAREST))
    ours = _turn(img[None, None], [angle])[0, 0]
    assert (ours == 0).sum() > 0  # the corners really fall outside and are filled
    assert not np.array_equal(ours, img)
    assert (ours != ref).mean() < 0.02, (ours != ref).mean()


def test_one_pixel_worked_out_by_hand() -> None:
    """28x28, 30 degrees counter-clockwise, centre (13.5, 13.5). Output pixel (row 2, col 20): offset
    x = 20 - 13.5 = 6.5, y = 2 - 13.5 = -11.5; source column 13.5 + 6.5 cos30 + 11.5 sin30 = 13.5 + 5.629
    + 5.75 = 24.879 -> 25; source row 13.5 + 6.5 sin30 - 11.5 cos30 = 13.5 + 3.25 - 9.959 = 6.791 -> 7.
    Output (row 0, col 0): source column 13.5 - 13.5 cos30 - 13.5 sin30 = -4.94: outside, so 0."""
    img = (np.arange(28 * 28) % 251 + 1).astype(np.uint8).reshape(1, 1, 28, 28)
    out = _turn(img, [30.0])
    assert out[0, 0, 2, 20] == img[0, 0, 7, 25]
    assert out[0, 0, 0, 0] == 0


def test_scale_enlarges_about_the_centre() -> None:
    """Scale 2 about the centre of an 8x8 image: output row i reads source row floor(3.5 + (i - 3.5)/2 + 0.5),
    i.e. rows 2,2,3,3,4,4,5,5 -- the middle 4x4 block, each pixel doubled. Scale 0.5: source 2i - 3, so
    output rows 2..5 read rows 1, 3, 5, 7 and the rest (sources -3, -1, 9, 11) is zero fill."""
    x = np.random.default_rng(3).integers(1, 256, (1, 1, 8, 8), dtype=np.uint8)
    src = np.array([2, 2, 3, 3, 4, 4, 5, 5])
    assert np.array_equal(_turn(x, [0.0], [2.0])[0, 0], x[0, 0][np.ix_(src, src)])
    expected = np.zeros((8, 8), np.uint8)
    expected[2:6, 2:6] = x[0, 0, 1::2, 1::2]
    assert np.array_equal(_turn(x, [0.0], [0.5])[0, 0], expected)


def test_zoom_then_rotate_is_one_gather_equal_to_two() -> None:
    """Zoom, rotation and scale composed into one index map equal the zoom crop applied first, then the turn."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (32, 2, 21, 30), dtype=np.uint8)
    aug = Augment(zoom=0.4, rotate=40, scale=0.3)
    d = aug.draw(32, rng, (21, 30))
    assert d.crops is not None and d.angles is not None and d.scales is not None
    zoomed = Augment(zoom=0.4).apply_numpy(x, replace(d, angles=None, scales=None))
    two_steps = aug.apply_numpy(zoomed, replace(d, crops=None))
    assert np.array_equal(aug.apply_numpy(x, d), two_steps)


def test_numpy_and_torch_paths_give_identical_pixels() -> None:
    """CPU batches use numpy, CUDA batches torch: the same draw must give the same bytes (3-channel, non-square)."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (64, 3, 23, 31), dtype=np.uint8)
    for aug in (Augment(rotate=30), Augment(translate=3, hflip=True, zoom=0.3, rotate=25, scale=0.2)):
        d = aug.draw(64, rng, (23, 31))  # 64 images: several chunks of the warp, the last one partial
        ours = aug.apply_numpy(x, d)
        assert not np.array_equal(ours, x)
        assert np.array_equal(ours, aug.apply_torch(torch.from_numpy(x), d).numpy())
        if torch.cuda.is_available():
            assert np.array_equal(ours, aug.apply_torch(torch.from_numpy(x).cuda(), d).cpu().numpy())


def test_angles_and_scales_are_uniform_in_their_ranges() -> None:
    d = Augment(rotate=12, scale=0.1).draw(20000, np.random.default_rng(6))
    assert d.angles is not None and d.scales is not None
    assert -12 <= d.angles.min() < -11.9 and 11.9 < d.angles.max() <= 12
    assert 0.9 <= d.scales.min() < 0.901 and 1.099 < d.scales.max() <= 1.1
    assert abs(d.angles.mean()) < 0.2 and abs(np.median(np.abs(d.angles)) - 6) < 0.2  # uniform, not clustered


# ------------------------------------------------------------------ old runs stay bit-identical


def test_rotate_and_scale_off_draw_nothing_and_come_last() -> None:
    """The pre-rotate draw order, written out: shift, flip, zoom. rotate=0 takes nothing from the stream,
    and rotate > 0 takes its angles after all of those, so the earlier draws are unchanged."""
    ref = np.random.default_rng(7)
    offsets = ref.integers(0, 5, size=(2, 16))
    flips = ref.random(16) < 0.5
    ref.random((3, 16))  # zoom: factor, top, left
    after = ref.random(16)  # what the stream gives next
    for aug in (Augment(translate=2, hflip=True, zoom=0.3), Augment(translate=2, hflip=True, zoom=0.3, rotate=0)):
        rng = np.random.default_rng(7)
        d = aug.draw(16, rng, (10, 10))
        assert np.array_equal(d.offsets, offsets) and np.array_equal(d.flips, flips)
        assert d.angles is None and d.scales is None
        assert np.array_equal(rng.random(16), after)  # rotate=0 consumed nothing
    turned = Augment(translate=2, hflip=True, zoom=0.3, rotate=10).draw(16, np.random.default_rng(7), (10, 10))
    plain = Augment(translate=2, hflip=True, zoom=0.3).draw(16, np.random.default_rng(7), (10, 10))
    assert np.array_equal(turned.offsets, plain.offsets) and np.array_equal(turned.flips, plain.flips)
    assert np.array_equal(turned.crops, plain.crops)  # type: ignore[arg-type]
    assert turned.angles is not None and np.allclose(turned.angles, (2 * after - 1) * 10)


def test_the_loader_without_rotate_gives_the_batches_it_gave_before() -> None:
    """Same seed, rotate=0: the same batches as the augmentation before rotate existed (translate + flip
    from the same stream, written out with the pre-rotate gathers); with rotate the batch changes."""
    rng = np.random.default_rng(8)
    images = ImageSet(rng.integers(0, 256, (24, 1, 12, 12), dtype=np.uint8), np.arange(24) % 2, ["a", "b"],
                      [f"i{k}" for k in range(24)])
    common = {"shuffle": True, "seed": 3, "mean": (0.0,), "std": (1.0,)}
    base = Augment(translate=2, hflip=True)
    off = BatchLoader(images, 8, augment=Augment(translate=2, hflip=True, rotate=0.0, scale=0.0), **common)  # type: ignore[arg-type]
    plain = BatchLoader(images, 8, augment=base, **common)  # type: ignore[arg-type]
    turned = BatchLoader(images, 8, augment=Augment(translate=2, hflip=True, rotate=20), **common)  # type: ignore[arg-type]
    order = plain.indices()
    for k, ((xo, yo), (xp, yp), (xt, yt)) in enumerate(zip(off, plain, turned, strict=True)):
        assert torch.equal(xo, xp) and torch.equal(yo, yp) and torch.equal(yt, yp)
        idx = order[k * 8:(k + 1) * 8]
        d = base.draw(len(idx), plain._rng(0, k))  # the per-batch stream the loader documents
        assert np.array_equal(np.rint(xp.numpy() * 255), _shift_flip(images.images[idx], d, 2))  # x/255 batches
        assert not torch.equal(xt, xp)


def _shift_flip(x: np.ndarray, d: Draw, t: int) -> np.ndarray:
    """Translate and flip written out with plain slicing, one image at a time (independent of augment.py)."""
    b, c, h, w = x.shape
    out = np.zeros_like(x)
    for i in range(b):
        padded = np.zeros((c, h + 2 * t, w + 2 * t), x.dtype)
        padded[:, t:t + h, t:t + w] = x[i]
        oy, ox = d.offsets[:, i]
        out[i] = padded[:, oy:oy + h, ox:ox + w]
        if d.flips[i]:
            out[i] = out[i][:, :, ::-1]
    return out


# ------------------------------------------------------------------ validation and wiring


@pytest.mark.parametrize("bad", [-1.0, 180.5, math.nan, math.inf])
def test_rotate_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(DataError, match="rotate"):
        Augment(rotate=bad)
    with pytest.raises(CnnlabError, match="rotate"):
        TrainConfig(rotate=bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0, math.nan])
def test_scale_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(DataError, match="scale"):
        Augment(scale=bad)
    with pytest.raises(CnnlabError, match="scale"):
        TrainConfig(scale=bad)


def test_config_round_trips_rotate_and_scale(tmp_path: Path) -> None:
    cfg = TrainConfig(rotate=12.5, scale=0.1)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml(), encoding="utf-8")
    back = TrainConfig.from_yaml(path)
    assert (back.rotate, back.scale) == (12.5, 0.1)
    assert TrainConfig().rotate == 0 and TrainConfig().scale == 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_cli_flag_reaches_the_resolved_config_and_bad_values_exit_2() -> None:
    ok = _cli("train", "lenet5", "--data", "sample", "--rotate", "10", "--scale", "0.05", "--dry-run")
    assert ok.returncode == 0, ok.stderr
    assert "rotate: 10.0" in ok.stdout and "scale: 0.05" in ok.stdout
    bad = _cli("train", "lenet5", "--data", "sample", "--rotate", "200", "--dry-run")
    assert bad.returncode == 2 and "rotate" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_train_with_rotate_records_it_in_the_run(tmp_path: Path) -> None:
    """End to end: ``cnnlab train mnist-modern --rotate 10`` on tiny generated 28x28 digits-like folders."""
    rng = np.random.default_rng(9)
    for split, n in (("train", 6), ("val", 2)):
        for cls in "0123456789":  # mnist-modern has 10 outputs
            folder = tmp_path / "data" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    done = _cli("train", "mnist-modern", "--data", str(tmp_path / "data"), "--config", "mnist-modern", "--rotate",
                "10", "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size", "16", "--threads", "1",
                "--out", str(run), "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    saved = TrainConfig.from_yaml(run / "config.yaml")
    assert saved.rotate == 10 and saved.translate == 2  # the flag, on top of the recipe
    import json

    assert json.loads((run / "identity.json").read_text(encoding="utf-8"))["recipe"]["rotate"] == 10
