"""Issue 10, runs you can trust: one test (or a few) per numbered item of the issue, in its order.

Each trains tiny runs in-process on a generated image folder (2 classes of 12x12 RGB stripes, 80
images) with a net whose convs have several input channels; a run takes about a second.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _trust_data import stripes_folder
from cnnlab.errors import DataError, RunError
from cnnlab.train import checkpoint as ckpt
from cnnlab.train import load_run
from cnnlab.train.api import fit

LOCK_NAME = "train.lock"  # RUN/train.lock: the run folder's writer lock (issue 10)

SPEC = {
    "name": "trust", "input": [3, 12, 12],
    "layers": [{"conv": {"filters": 6, "kernel": 3, "padding": 1}}, "batchnorm",
               {"conv": {"filters": 6, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten",
               {"dropout": 0.3}, {"output": 2}],
}
OPTS = {"epochs": 2, "batch_size": 8, "threads": 1, "seed": 3, "quiet": True}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    """A data folder and one finished 2-epoch run on it (copied by each test that changes it)."""
    root = tmp_path_factory.mktemp("trust")
    data = stripes_folder(root / "data")
    fit(SPEC, str(data), out=root / "run", **OPTS)
    return {"root": root, "data": data, "run": root / "run"}


def _copy(base: dict[str, Path], tmp_path: Path, name: str = "run") -> Path:
    dest = tmp_path / name
    shutil.copytree(base["run"], dest)
    return dest


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (except the lock file, whose content names its last holder)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.read_weights(run / "checkpoints" / "last")[0]


# ---------------------------------------------------------------- 1. exact resume (channels-last + fused AdamW)


def test_1_restore_continues_exactly_with_channels_last_and_fused_adamw(tmp_path):
    """A channels-last net with multi-channel convs and fused AdamW, saved to a resume file (tensors
    stored contiguous) and restored by ``Trainer.restore``, continues exactly like the uninterrupted
    optimizer (plain PyTorch steps as the reference)."""
    from types import SimpleNamespace

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.setup import Parts, build_optimizer
    from cnnlab.train.trainer import Trainer

    cfg = TrainConfig(lr=0.01, epochs=1).resolve((3, 8, 8)).for_device("cpu")
    assert cfg.channels_last, "channels-last is the CPU default"

    def make() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.Conv2d(5, 4, 3)).to(memory_format=torch.channels_last)
        return m, build_optimizer(m, cfg, torch.device("cpu"))

    def step(m: torch.nn.Module, opt: torch.optim.Optimizer, i: int) -> None:
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(i)).contiguous(memory_format=torch.channels_last)
        opt.zero_grad()
        m(x).square().mean().backward()
        opt.step()

    ref, ref_opt = make()
    assert ref_opt.defaults.get("fused"), "torch fuses AdamW on CPU: the case of the issue"
    for i in range(6):
        step(ref, ref_opt, i)
    m, opt = make()
    for i in range(3):
        step(m, opt, i)
    path = tmp_path / "resume.safetensors"
    ckpt.write_state(path, ckpt.TrainingState(ckpt.model_weights(m), opt.state_dict(), {}, {"position": {"step": 3}}))
    m2, opt2 = make()
    dist = SimpleNamespace(distributed=False, is_main=True, rank=0, world_size=1)
    trainer = Trainer(Parts(m2, m2, opt2, None, None, torch.device("cpu")), cfg, None, None, dist, 10)  # type: ignore[arg-type]
    trainer.restore(ckpt.read_state(path))
    for i in range(3, 6):
        step(m2, opt2, i)
    for a, b in zip(ref.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- 2. one writer per run folder


def _hold_lock(run: Path) -> int:
    """Take the run's lock as another process would (a separate open file description)."""
    fd = os.open(run / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": 424242, "host": "elsewhere", "start": "today"}).encode())
    return fd


def test_2_resume_while_another_process_trains_is_refused(base, tmp_path):
    run = _copy(base, tmp_path)
    before = _digest(run)
    fd = _hold_lock(run)
    try:
        with pytest.raises(RunError, match="another process .pid 424242 on elsewhere"):
            fit(run, resume=True, quiet=True)
    finally:
        os.close(fd)
    assert _digest(run) == before


def test_2_two_fresh_trainings_into_one_folder_one_is_refused(base, tmp_path):
    out = tmp_path / "same"
    out.mkdir()
    fd = _hold_lock(out)  # the first training holds it
    try:
        with pytest.raises(RunError, match="another process"):
            fit(SPEC, str(base["data"]), out=out, **OPTS)
    finally:
        os.close(fd)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the refused one wrote nothing


def test_2_readers_do_not_need_the_lock(base):
    fd = _hold_lock(base["run"])
    try:
        assert load_run(base["run"]).classes == ["cols", "rows"]
    finally:
        os.close(fd)


# ---------------------------------------------------------------- 3. a refused resume changes nothing


@pytest.mark.parametrize("damage", ["pickle", "other_spec"])
def test_3_refused_resume_leaves_every_file_byte_identical(base, tmp_path, damage):
    run = _copy(base, tmp_path)
    resume = run / "checkpoints" / "resume.safetensors"
    if damage == "pickle":
        torch.save({"w": torch.ones(2)}, resume)
    else:
        state = ckpt.read_state(resume)
        state.weights = {"other.weight": torch.ones(3)}
        ckpt.write_state(resume, state)
    before = _digest(run)
    with pytest.raises(RunError):
        fit(run, resume=True, quiet=True)
    assert _digest(run) == before
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


# ---------------------------------------------------------------- 4. --resume refuses changes to what the run is


@pytest.mark.parametrize("change", [{"seed": 4}, {"val_split": 0.3}, {"batch_size": 4}, {"epochs": 5},
                                    {"data": "other"}])
def test_4_resume_refuses_options_that_change_the_run(base, tmp_path, change):
    run = _copy(base, tmp_path)
    before = _digest(run)
    if "data" in change:
        other = stripes_folder(tmp_path / "other", seed=9)
        with pytest.raises(RunError, match="the data"):
            fit(run, str(other), resume=True, quiet=True)
    else:
        with pytest.raises(RunError, match="--" + next(iter(change)).replace("_", "-")):
            fit(run, resume=True, quiet=True, **change)
    assert _digest(run) == before


def test_4_resume_accepts_the_same_data_spelled_differently(base, tmp_path):
    run = _copy(base, tmp_path)
    link = tmp_path / "link"
    link.symlink_to(base["data"])
    fitted = fit(run, str(link) + "/", resume=True, quiet=True)
    assert fitted.state == "finished"


# ---------------------------------------------------------------- 5. evaluation never silently scores training images


@pytest.mark.parametrize("spelling", ["relative", "slash", "symlink"])
def test_5_own_data_spelled_differently_is_recognised_and_scored_on_val(base, tmp_path, spelling, monkeypatch):
    from cnnlab.inference.dataset import resolve_split

    run = load_run(base["run"])
    if spelling == "relative":
        monkeypatch.chdir(base["root"])
        source = "data"
    elif spelling == "slash":
        source = str(base["data"]) + "/"
    else:
        (tmp_path / "link").symlink_to(base["data"])
        source = str(tmp_path / "link")
    images, _, split = resolve_split(run, source, "auto")
    assert split == "val"
    _, _, own_val = resolve_split(run, None, "val")
    assert len(images.labels) == json.loads((base["run"] / "identity.json").read_text())["split"]["val_images"]


def test_5_other_data_holding_training_images_is_refused_unless_all_is_explicit(base, tmp_path):
    from cnnlab.inference.dataset import resolve_split

    run = load_run(base["run"])
    mixed = stripes_folder(tmp_path / "mixed", n=5, seed=11)
    train_files = [s for s in resolve_split(run, None, "train")[0].sources][:3]
    for i, src in enumerate(train_files):
        shutil.copy(src, mixed / Path(src).parent.name / f"copy{i}.png")
    with pytest.raises(DataError, match="3 of 13 images"):
        resolve_split(run, str(mixed), "auto")
    from cnnlab.inference.dataset import training_overlap

    images, _, split = resolve_split(run, str(mixed), "all")
    assert split == "all" and training_overlap(run, images) == 3


def test_5_report_checks_the_reloaded_split_against_the_record(base, tmp_path):
    from cnnlab.inference.dataset import validation_split

    data = tmp_path / "data"
    shutil.copytree(base["data"], data)
    run_dir = _copy(base, tmp_path, "run")
    info = json.loads((run_dir / "data.json").read_text())
    info["source"] = str(data)
    (run_dir / "data.json").write_text(json.dumps(info))
    validation_split(load_run(run_dir), "en")  # unchanged data: fine
    img = np.asarray(Image.open(data / "rows" / "0.png")).copy()
    img[0, 0] ^= 255
    for i in range(40, 44):  # new images move others between train and val
        Image.fromarray(img).save(data / "rows" / f"{i}.png")
    with pytest.raises(DataError, match="differs from the one recorded|trained on"):
        validation_split(load_run(run_dir), "en")


# ---------------------------------------------------------------- 6. macro averages over the classes present


def test_6_macro_average_covers_present_classes_and_names_absent_ones():
    from cnnlab.inference.evaluation import averages, confusion_matrix, per_class_metrics

    labels = np.array([0, 0, 1, 1])
    per_class = per_class_metrics(confusion_matrix(labels, labels.copy(), 3), ["a", "b", "c"])
    assert averages(per_class)["macro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    from cnnlab.inference.evaluation import absent_classes

    assert absent_classes(per_class) == ["c"]
    # a mistake into the absent class still counts against the present ones: recall of b = 1/2
    per_class = per_class_metrics(confusion_matrix(labels, np.array([0, 0, 1, 2]), 3), ["a", "b", "c"])
    assert averages(per_class)["macro"]["recall"] == pytest.approx((1 + 0.5) / 2)


# ---------------------------------------------------------------- 7. an early kill can be recovered


def test_7_run_killed_before_its_first_checkpoint_restarts_with_one_command(base, tmp_path):
    run = _copy(base, tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").mkdir()
    (run / "metrics.jsonl").write_text("")
    (run / "status.json").write_text(json.dumps({"state": "running", "epoch": 0, "pid": 1}))
    with pytest.raises(RunError, match=f"cnnlab train {run} --resume"):
        fit(SPEC, str(base["data"]), out=run, **OPTS)
    assert fit(run, resume=True, quiet=True).state == "finished"
    ref = _weights(base["run"])
    got = _weights(run)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


# ---------------------------------------------------------------- 8. damaged or edited run files


def _edit(run: Path, name: str, change) -> None:
    path = run / name
    value = json.loads(path.read_text())
    path.write_text(json.dumps(change(value)))


@pytest.mark.parametrize("name,change,match", [
    ("classes.json", lambda v: v[:1], "1 class names but the network has 2"),
    ("classes.json", lambda v: v + ["bird"], "3 class names but the network has 2"),
    ("data.json", lambda v: {k: x for k, x in v.items() if k != "mean"}, "mean must be"),
    ("data.json", lambda v: dict(v, input_shape=[1, 12, 12]), "input_shape"),
    ("data.json", lambda v: dict(v, std=[0.0, 0.1, 0.1]), "std"),
])
def test_8_edited_json_files_name_the_file_and_the_problem(base, tmp_path, name, change, match):
    run = _copy(base, tmp_path)
    _edit(run, name, change)
    with pytest.raises(RunError, match=match) as info:
        load_run(run)
    assert name in str(info.value)


def test_8_empty_config_and_missing_spec(base, tmp_path):
    run = _copy(base, tmp_path)
    (run / "config.yaml").write_text("")
    with pytest.raises(RunError, match="config.yaml is empty"):
        load_run(run)
    with pytest.raises(RunError, match="config.yaml is empty"):
        fit(run, resume=True, quiet=True)
    run2 = _copy(base, tmp_path, "run2")
    (run2 / "spec.yaml").unlink()
    with pytest.raises(RunError, match="spec.yaml"):
        fit(run2, resume=True, quiet=True)


def test_8_nan_weights_are_reported(base, tmp_path):
    run = _copy(base, tmp_path)
    stem = run / "checkpoints" / "best"
    weights, meta = ckpt.read_weights(stem)
    weights[next(k for k in weights if k.endswith("weight"))][0] = float("nan")
    ckpt.write_weights(stem, weights, meta)
    with pytest.raises(RunError, match="NaN or infinite"):
        load_run(run)


def test_8_overwritten_cache_entry_is_rebuilt(tmp_path):
    from cnnlab.data.cache import cached_decode
    from cnnlab.data.ingest import Decoded

    calls = []
    good = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)

    def decode() -> Decoded:
        calls.append(1)
        return Decoded(good.copy(), np.array([0, 1]), [], ["a", "b"])

    files = [str(tmp_path / "x.png")]
    Path(files[0]).write_bytes(b"x")
    cached_decode(files, (3, 4, 4), "crop", cache_dir=tmp_path / "cache", decode=decode)
    npy = next((tmp_path / "cache").glob("*.npy"))
    raw = bytearray(npy.read_bytes())
    raw[-5:] = bytes([255] * 5)  # same size, other bytes
    npy.write_bytes(bytes(raw))
    again = cached_decode(files, (3, 4, 4), "crop", cache_dir=tmp_path / "cache", decode=decode)
    assert len(calls) == 2 and np.array_equal(np.asarray(again.images), good)


# ---------------------------------------------------------------- 9. DDP: one downloader, a dropout stream per rank


def test_9_concurrent_downloads_of_a_named_dataset_run_one_at_a_time(tmp_path, monkeypatch):
    from cnnlab.data import datasets, download, named

    ds = named.lookup("mnist")
    active, peak, fetched = [0], [0], []
    lock = threading.Lock()

    def fake_fetch(urls, dest, remote, progress=None):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        dest.write_bytes(b"x")
        fetched.append(dest.name)
        with lock:
            active[0] -= 1

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "fetch_any", fake_fetch)
    monkeypatch.setattr(download, "dataset_present",
                        lambda d, f: all((f / r.name).exists() for r in datasets.FILES[d.name]))
    threads = [threading.Thread(target=download.ensure_files, args=(ds, tmp_path),
                                kwargs={"download": True, "progress": False}) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1
    assert sorted(fetched) == sorted(r.name for r in datasets.FILES[ds.name])  # each file once


def test_9_each_rank_draws_its_own_dropout_masks_and_the_same_ones_again_at_resume():
    from cnnlab.train.trainer import dropout_seed

    def mask(rank: int, step: int) -> torch.Tensor:
        torch.manual_seed(dropout_seed(7, rank, step))
        return torch.nn.functional.dropout(torch.ones(64), 0.5, training=True)

    assert not torch.equal(mask(0, 5), mask(1, 5))
    assert torch.equal(mask(1, 5), mask(1, 5))
    assert not torch.equal(mask(1, 5), mask(1, 6))


def test_1_resume_on_another_thread_count_says_it_is_not_bit_identical(base, tmp_path, capsys):
    run = _copy(base, tmp_path)
    fit(run, resume=True, quiet=True)
    assert "not be bit-identical" not in capsys.readouterr().err
    fit(run, resume=True, quiet=True, threads=2)
    assert "threads 1 -> 2" in capsys.readouterr().err


def test_content_fingerprint_ignores_order_and_paths_but_sees_pixels_and_labels():
    from cnnlab.train.identity import fingerprint, image_hashes

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 3, 4, 4), dtype=np.uint8)
    labels = np.arange(20) % 2
    perm = rng.permutation(20)
    base = fingerprint(image_hashes(images), labels, ["a", "b"])
    assert fingerprint(image_hashes(images[perm]), labels[perm], ["a", "b"]) == base
    other = images.copy()
    other[3, 0, 0, 0] ^= 1  # one bit of one pixel
    assert fingerprint(image_hashes(other), labels, ["a", "b"]) != base
    assert fingerprint(image_hashes(images), 1 - labels, ["a", "b"]) != base


def test_4_dry_run_of_a_resume_refuses_what_the_resume_would(base, capsys):
    from cnnlab.cli import main

    assert main(["train", str(base["run"]), "--resume", "--batch-size", "16", "--dry-run"]) == 2
    assert "--batch-size (8 -> 16)" in capsys.readouterr().err
