"""``Run.preprocess`` on the arrays users pass: read-only ones (a cached memmap) give no torch warning,
and the result is ``(x/255 - mean)/std`` computed independently in numpy."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from cnnlab.train.config import TrainConfig
from cnnlab.train.run import Run


def _run(mean: tuple[float, ...], std: tuple[float, ...]) -> Run:
    return Run(Path("."), None, ["a"], TrainConfig(), mean, std, (1, 4, 4), "crop", {}, [], {},  # type: ignore[arg-type]
               model=torch.nn.Conv2d(1, 1, 1))


def test_read_only_memmap_gives_no_warning_and_the_right_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 1, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    images = np.load(tmp_path / "x.npy", mmap_mode="r")  # how the data cache hands out pixels
    assert not images.flags.writeable
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _run((0.25,), (0.5,)).preprocess(images)
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
    expected = (pixels.astype(np.float64) / 255 - 0.25) / 0.5
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert out.dtype == torch.float32 and tuple(out.shape) == (3, 1, 4, 4)


def test_a_writable_contiguous_array_is_not_changed() -> None:
    pixels = np.full((2, 1, 4, 4), 200, dtype=np.uint8)
    _run((0.0,), (1.0,)).preprocess(pixels)
    assert (pixels == 200).all()
