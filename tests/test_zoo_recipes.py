"""Bundled training recipes (#14): ``--config NAME`` finds them, they load into a valid
``TrainConfig`` for their zoo network, they ship as package data, and they train (slow smoke).
Also the ``zoom`` augmentation they use, checked against PyTorch's own nearest-exact resize.

Run: ``PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_zoo_recipes.py`` (add ``-m slow``
for the training smoke). Accuracy is a benchmark (``bench/train_accuracy.py``), not asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab import zoo
from cnnlab.data import Augment, DataBundle, ImageSet
from cnnlab.errors import CnnlabError, DataError
from cnnlab.spec import load_spec
from cnnlab.train.config import TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ["cats-scratch", "mnist-modern"]


def test_each_recipe_is_bundled_and_named_after_its_zoo_network() -> None:
    assert zoo.recipe_names() == RECIPES
    for name in RECIPES:
        assert name in zoo.names()
        assert zoo.recipe_path(name) == zoo.spec_path(name).parent / "recipes" / f"{name}.yaml"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_into_a_valid_config_equal_to_its_yaml(name: str) -> None:
    import yaml

    raw = yaml.safe_load(zoo.recipe_path(name).read_text(encoding="utf-8"))  # type: ignore[union-attr]
    config = load_config(name)
    assert isinstance(config, TrainConfig)
    for key, value in raw.items():  # every option written in the file arrives, nothing is dropped
        got = getattr(config, key)
        assert (got.value if hasattr(got, "value") else got) == value, key
    resolved = config.resolve(tuple(load_spec(name).input))  # type: ignore[arg-type]
    resolved.validate()
    assert 0 < resolved.val_split < 1  # a validation split (not the test set) picks the checkpoint


def test_a_file_path_still_works_and_wins_over_a_recipe_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mnist-modern").write_text("epochs: 2\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_config("mnist-modern").epochs == 2  # the local file, not the bundled recipe
    assert load_config(tmp_path / "mnist-modern").epochs == 2
    monkeypatch.chdir(ROOT)
    assert load_config("mnist-modern").epochs == load_config(zoo.recipe_path("mnist-modern")).epochs  # type: ignore[arg-type]


def test_unknown_recipe_name_is_a_clear_error() -> None:
    with pytest.raises(CnnlabError, match="did you mean 'mnist-modern'.*bundled recipes: cats-scratch, mnist-modern"):
        load_config("mnist-modrn")
    with pytest.raises(CnnlabError, match="cannot read config file"):
        load_config("missing.yaml")  # a YAML path keeps its old message
    assert zoo.recipe_path("../zoo/mnist-modern") is None


def test_recipes_are_package_data() -> None:
    """``pip install`` ships only the globs in pyproject: every recipe file must match one."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cnnlab"]
    folder = ROOT / "src" / "cnnlab"
    for path in (folder / "zoo").rglob("*.yaml"):
        rel = path.relative_to(folder).as_posix()
        assert any(fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs), rel


def test_cli_dry_run_resolves_the_recipe_by_name() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "mnist-modern", "--data", "mnist", "--config", "mnist-modern",
         "--epochs", "3", "--dry-run"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""}, check=True,
    ).stdout
    assert "label_smoothing: 0.1" in out  # from the recipe
    assert "epochs: 3" in out  # the flag overrides it


def test_every_zoo_description_says_what_the_network_is_for() -> None:
    for entry in zoo.list_models():
        assert entry.description.startswith("for: "), entry.name


# ------------------------------------------------------------------ the zoom augmentation


def test_zoom_equals_torch_nearest_exact_resize_of_the_crop() -> None:
    """Independent reference: ``F.interpolate(crop, size, mode="nearest-exact")`` of each drawn crop."""
    x = np.random.default_rng(0).integers(0, 256, (64, 3, 29, 37), dtype=np.uint8)
    aug = Augment(zoom=0.5)
    d = aug.draw(64, np.random.default_rng(1), (29, 37))
    assert d.crops is not None
    out = aug.apply_numpy(x, d)
    top, left, ch, cw = d.crops
    assert (ch < 29).sum() > 50 and len(set(ch.tolist())) > 5  # real, varied zooms
    assert ch.min() >= round(29 / 1.5) and cw.min() >= round(37 / 1.5)
    assert (top + ch <= 29).all() and (left + cw <= 37).all()
    for b in range(64):
        crop = torch.from_numpy(x[b:b + 1, :, top[b]:top[b] + ch[b], left[b]:left[b] + cw[b]]).float()
        ref = torch.nn.functional.interpolate(crop, size=(29, 37), mode="nearest-exact").to(torch.uint8).numpy()
        assert np.array_equal(out[b:b + 1], ref), b
    assert np.array_equal(out, aug.apply_torch(torch.from_numpy(x), d).numpy())  # CPU and GPU paths agree


def test_zoom_off_leaves_the_translate_and_flip_draws_unchanged() -> None:
    """Existing results stay the same: zoom=0 draws nothing, and zoom's draws come after the others."""
    x = np.random.default_rng(2).integers(0, 256, (16, 1, 10, 10), dtype=np.uint8)
    ref_rng = np.random.default_rng(9)
    offsets = ref_rng.integers(0, 5, size=(2, 16))  # the pre-zoom draw order, written out
    flips = ref_rng.random(16) < 0.5
    plain = Augment(translate=2, hflip=True).draw(16, np.random.default_rng(9), (10, 10))
    zoomed = Augment(translate=2, hflip=True, zoom=0.3).draw(16, np.random.default_rng(9), (10, 10))
    for d in (plain, zoomed):
        assert np.array_equal(d.offsets, offsets) and np.array_equal(d.flips, flips)
    assert plain.crops is None and zoomed.crops is not None
    identity = np.stack([np.zeros(16, int), np.zeros(16, int), np.full(16, 10), np.full(16, 10)])
    aug = Augment(translate=2, hflip=True, zoom=0.3)
    no_zoom = aug.apply_numpy(x, plain)
    assert np.array_equal(aug.apply_numpy(x, zoomed.__class__(offsets, flips, identity)), no_zoom)


def test_zoom_out_of_range_is_refused() -> None:
    with pytest.raises(DataError, match="zoom"):
        Augment(zoom=1.5)
    with pytest.raises(CnnlabError, match="zoom"):
        TrainConfig(zoom=-0.1)


# ------------------------------------------------------------------ slow: the recipes train


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_a_couple_of_steps(name: str, tmp_path: Path) -> None:
    from cnnlab.train.api import fit

    spec = load_spec(name)
    c, h, w = spec.input
    n_classes = spec.layers[-1].classes  # type: ignore[union-attr]
    rng = np.random.default_rng(0)
    classes = [f"c{i}" for i in range(n_classes)]

    def images(n: int, tag: str) -> ImageSet:
        labels = np.arange(n) % n_classes
        pixels = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
        return ImageSet(pixels, labels, classes, [f"{tag}{i}" for i in range(n)])

    data = DataBundle(images(64, "t"), images(16, "v"), None, classes, (0.5,) * c, (0.25,) * c, (c, h, w),
                      source="random")
    fitted = fit(name, data, load_config(name), out=tmp_path / "run", quiet=True, epochs=1,
                 max_steps_per_epoch=2, batch_size=16, threads=1)
    assert fitted.state == "finished"
    saved = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert saved.label_smoothing == load_config(name).label_smoothing and saved.zoom == load_config(name).zoom


def test_the_training_loader_applies_zoom() -> None:
    """BatchLoader passes the image size to the draw; a zoomed batch differs from the plain one."""
    from cnnlab.data import BatchLoader

    rng = np.random.default_rng(3)
    images = ImageSet(rng.integers(0, 256, (24, 1, 12, 12), dtype=np.uint8), np.arange(24) % 2, ["a", "b"],
                      [f"i{k}" for k in range(24)])
    common = {"shuffle": False, "seed": 1, "mean": (0.0,), "std": (1.0,)}
    plain = BatchLoader(images, 8, **common)  # type: ignore[arg-type]
    zoomed = BatchLoader(images, 8, augment=Augment(zoom=0.5), **common)  # type: ignore[arg-type]
    (xp, yp), (xz, yz) = next(iter(plain)), next(iter(zoomed))
    assert xz.shape == xp.shape and torch.equal(yp, yz)
    assert not torch.equal(xp, xz)
