"""Issue 11, case by case: each hostile or broken input ends in a message (exit 2), not a traceback,
a hang, a silently wrong result, a disclosed file or an exhausted machine.

The default run calls ``cnnlab.cli.main`` in this process under an address-space cap (``capped``:
1 GiB above what the process already maps). The slow tests run the memory cases in a child process
under RLIMIT_AS and check its peak RSS (``os.wait4``) stays under 1 GB.

    PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_hostile_named.py            # quick part
    PYTHONPATH=src .venv/bin/python -m pytest -q -m slow tests/test_hostile_named.py    # memory cases
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

import _hostile_cases as cases
from cnnlab.cli import main
from cnnlab.errors import CnnlabError, DataError, SpecError

GB = 1 << 30


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture
def capped() -> Iterator[int]:
    """RLIMIT_AS set to 1 GiB above the current mapping for the test, then restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_size() + GB
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([str(a) for a in args])
    _, err = capsys.readouterr()
    return code, err


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, err = _cli(capsys, *args)
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


# ------------------------------------------------------------------ memory (quick, in-process, capped)

def test_billion_laughs_spec_is_refused_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str], capped: int) -> None:
    err = _refused(capsys, *cases.laughs_spec(tmp_path))
    assert "aliases" in err and "laughs.yaml" in err


def test_billion_laughs_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], capped: int) -> None:
    err = _refused(capsys, *cases.laughs_config(tmp_path))
    assert "aliases" in err and "laughs-config.yaml" in err


def test_recursive_alias_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], capped: int) -> None:
    spec = tmp_path / "loop.yaml"
    spec.write_text("name: x\ninput: [1, 8, 8]\nlayers: &l [*l]\n")
    assert "recursive" in _refused(capsys, "summary", spec)


def test_an_ordinary_alias_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text("name: ok\ninput: [1, 8, 8]\nlayers:\n  - &c {conv: {filters: 2, kernel: 3}}\n  - *c\n"
                    "  - flatten\n  - output: 2\n")
    code = main(["summary", str(spec), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    kinds = [row["kind"] for row in json.loads(out)["layers"]]
    assert kinds[:2] == ["conv", "conv"]  # the alias repeats the anchored layer


def test_cifar_batch_declaring_a_huge_array_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       capped: int) -> None:
    err = _refused(capsys, *cases.cifar_declared(tmp_path))
    assert "1500000, 3072" in err and "data_batch_1" in err


def test_sparse_20_gb_jpg_is_refused_without_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     capped: int) -> None:
    err = _refused(capsys, *cases.sparse_jpg(tmp_path))
    assert "huge.jpg" in err and "21,474,836,480 bytes" in err and "CNNLAB_MAX_IMAGE_BYTES" in err


def test_image_size_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.data import load_image

    path = cases.tiny_images(tmp_path) / "a" / "0.png"
    assert load_image(path, (3, 8, 8)).shape == (3, 8, 8)
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_BYTES", str(path.stat().st_size - 1))
    with pytest.raises(DataError, match="over the image size limit"):
        load_image(path, (3, 8, 8))


def test_a_fifo_named_jpg_is_refused_without_blocking(tmp_path: Path) -> None:
    from cnnlab.data import load_image

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="named pipe"):
        load_image(fifo, (3, 8, 8))


@pytest.mark.parametrize("builder", [cases.huge_dense, cases.huge_input], ids=["dense-784M", "input-3x20000x20000"])
def test_network_too_big_is_refused_before_loading_data(builder: object, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str], capped: int) -> None:
    args = builder(tmp_path)  # type: ignore[operator]
    err = _refused(capsys, *args)
    assert "needs about" in err and "--force" in err and "ulimit -v" in err
    assert not Path(args[args.index("--out") + 1]).exists()  # no run folder, so none left "running"


def test_lr_find_checks_memory_before_building(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               capped: int) -> None:
    args = cases.huge_dense(tmp_path)
    err = _refused(capsys, "lr-find", args[1], "--data", args[3], "--device", "cpu")
    assert "needs about" in err and "--force" in err


def test_memory_check_against_available_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimate (hand-computed here) against MemAvailable: refused at 8 GiB, allowed with force."""
    import torch

    from cnnlab.analysis import analyze
    from cnnlab.train import limits

    spec = {"name": "huge", "input": [1, 28, 28], "layers": ["flatten", {"dense": 1_000_000}, {"output": 2}]}
    a = analyze(spec)
    params = 784 * 1_000_000 + 1_000_000 + 1_000_000 * 2 + 2
    assert a.total_params == params
    # weights + gradients + 2 AdamW moments + 2x weights of step temporaries = 6x the weights, at least
    assert limits.step_bytes(a.memory, 1) >= 6 * 4 * params
    monkeypatch.setattr(limits, "_address_space_left", lambda: None)
    monkeypatch.setattr(limits, "_mem_available", lambda: 8 * GB)
    with pytest.raises(CnnlabError, match=r"needs about .* free \(RAM\)"):
        limits.check_fits(a, 128, torch.device("cpu"))
    limits.check_fits(a, 128, torch.device("cpu"), force=True)
    limits.check_fits(analyze("lenet5"), 128, torch.device("cpu"))  # a small network fits


def test_out_of_memory_marks_the_run_failed(tmp_path: Path) -> None:
    from cnnlab.train import limits

    (tmp_path / "status.json").write_text(json.dumps({"state": "running", "epoch": 3, "pid": 1}))
    with pytest.raises(CnnlabError, match="marked failed"), limits.out_of_memory(tmp_path):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 3136000000 bytes")
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "failed" and status["epoch"] == 3
    with pytest.raises(RuntimeError, match="shape mismatch"), limits.out_of_memory(tmp_path):
        raise RuntimeError("shape mismatch")  # other errors pass through untouched


# ------------------------------------------------------------------ hang

def test_glob_with_symlink_loops_returns(tmp_path: Path) -> None:
    from cnnlab.inference.prediction import expand_inputs

    root = tmp_path / "dir"
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    for name in ("x.png", "a/y.png", "a/b/z.png", "c/w.png"):
        (root / name).write_bytes(b"\x89PNG")
    (root / "a" / "b" / "up").symlink_to("..")
    (root / "c" / "loop").symlink_to("../..")
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("glob hangs")))
    signal.alarm(20)
    try:
        found = expand_inputs([f"{root}/**/*.png"])
    finally:
        signal.alarm(0)
    paths = sorted(os.path.relpath(p, root) for p, _ in found)
    assert paths == ["a/b/z.png", "a/y.png", "c/w.png", "x.png"]  # each file once, no path through a link


def test_glob_matches_the_standard_glob_without_links(tmp_path: Path) -> None:
    import glob

    from cnnlab.inference.prediction import glob_no_links

    for name in ("p/1.png", "p/q/2.png", "p/q/r/3.jpg", "p/.h/4.png", "p/s/5.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    for pattern in ("p/**/*.png", "p/*/*.png", "p/**", "p/[qs]/*.png", "p/**/r/*.jpg", "p/?/*.png"):
        full = f"{tmp_path}/{pattern}"
        want = sorted(p.rstrip("/") for p in glob.glob(full, recursive=True) if p.rstrip("/") != f"{tmp_path}/p")
        assert glob_no_links(full) == want, pattern


# ------------------------------------------------------------------ tracebacks before

def test_out_naming_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    assert "is a file" in _refused(capsys, "train", "lenet5", "--data", "sample", "--out", target)


def test_out_with_a_300_character_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, "train", "lenet5", "--data", "sample", "--out", tmp_path / ("r" * 300))
    assert "300 bytes" in err and "shorter name" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert "not writable" in _refused(capsys, "train", "lenet5", "--data", "sample", "--out", ro / "run")
    finally:
        ro.chmod(0o755)


def test_output_file_checks(tmp_path: Path) -> None:
    from cnnlab.utils.paths import check_output_file, check_output_folder

    check_output_file(tmp_path / "new" / "fig.png")
    check_output_folder(tmp_path / "new" / "run")
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(CnnlabError, match="is a file, so no folder"):
        check_output_file(blocker / "fig.png")
    with pytest.raises(CnnlabError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(CnnlabError, match="path has"):
        check_output_folder(tmp_path / "/".join(["d" * 200] * 25))


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "lenet5", "--data", "sample", "--seed", "-5"], "argument --seed: must be a whole number from 0"),
    (["train", "lenet5", "--data", "sample", "--devices", "0"], "argument --devices"),
    (["lr-find", "lenet5", "--data", "sample", "--iters", "1"], "argument --iters"),
    (["data", "sample", "--val-split", "nan"], "argument --val-split"),
    (["summary", "lenet5", "--batch", "0"], "argument --batch"),
    (["train", "lenet5", "--data", "sample", "--lr", "inf"], "argument --lr"),
    (["train", "lenet5", "--data", "sample", "--epochs", "1e9999"], "argument --epochs"),
])
def test_numeric_options_are_checked_under_their_own_name(argv: list[str], needle: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert needle in _refused(capsys, *argv)


def test_seed_out_of_range_in_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: -5\n")
    assert "seed=-5" in _refused(capsys, "train", "lenet5", "--data", "sample", "--config", cfg, "--dry-run")


def test_non_utf8_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"\xff\xfeseed: 1\n")
    assert "not UTF-8" in _refused(capsys, "train", "lenet5", "--data", "sample", "--config", cfg, "--dry-run")


def _nested(depth: int) -> dict:
    block: dict = {"conv": {"filters": 2, "kernel": 3, "padding": "same"}}
    for _ in range(depth):
        block = {"residual": {"layers": [block]}}
    return {"name": "deep", "input": [1, 8, 8], "layers": [block, "flatten", {"output": 2}]}


def test_100_nested_residual_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "deep.yaml"
    spec.write_text(yaml.safe_dump(_nested(100)))
    assert "nests deeper" in _refused(capsys, "summary", spec)
    from cnnlab.spec import load_spec

    with pytest.raises(SpecError, match="nest 17 deep"):
        load_spec(_nested(100))  # a dict skips the YAML loader; the spec's own limit holds


def test_16_nested_residual_blocks_still_build() -> None:
    import torch

    from cnnlab.model import build

    model = build(_nested(16))
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


@pytest.mark.parametrize(("labels", "needle"), [
    (["a", "b", "c", "d"], "list of integers"),
    ([0, -1, 2, 3], "label -1 of image 1"),
    ([0, 1, 2, 10], "label 10 of image 3"),
    ([0, 1, 2**70, 3], f"label {2**70} of image 2"),
    ([0, 1], "2 labels for 4 images"),  # used to keep only 2 images, silently
])
def test_cifar_labels_are_checked(labels: list[object], needle: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = np.zeros((4, 3072), np.uint8)
    assert needle in _refused(capsys, *cases.cifar_batch(tmp_path, data, labels))


def test_cifar_genuine_batch_still_loads(tmp_path: Path) -> None:
    from cnnlab.data.cifar import _read_c10_file

    data = np.arange(4 * 3072, dtype=np.int64).astype(np.uint8).reshape(4, 3072)
    args = cases.cifar_batch(tmp_path, data, [0, 1, 2, 9])
    images, labels = _read_c10_file(Path(args[1]) / "data_batch_1")
    assert np.array_equal(images.reshape(4, 3072), data) and labels.tolist() == [0, 1, 2, 9]


def test_cifar_pickle_with_a_foreign_global_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "evil"
    d.mkdir()
    (d / "data_batch_1").write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")
    assert "refusing to load os.system" in _refused(capsys, "data", d)


def test_idx_header_declaring_ffffffff(tmp_path: Path, capsys: pytest.CaptureFixture[str], capped: int) -> None:
    ff = b"\xff\xff\xff\xff"
    folder = cases.idx_pair(tmp_path / "a", b"\x00\x00\x08\x03" + ff * 3, cases.idx_labels_header(2), b"", b"\x00\x01")
    assert "4294967295x4294967295" in _refused(capsys, "data", folder)
    folder = cases.idx_pair(tmp_path / "b", cases.idx_images_header(2, 2, 2), b"\x00\x00\x08\x01" + ff, bytes(8))
    assert "declares 4294967295 values" in _refused(capsys, "data", folder)


def test_idx_labels_of_255_do_not_make_256_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = bytes([0, 1, 0, 1, 0, 1, 0, 1, 0, 255])
    folder = cases.idx_pair(tmp_path, cases.idx_images_header(10, 4, 4), cases.idx_labels_header(10),
                            bytes(range(160)), labels)
    assert "253 of the classes 0..255 have no image" in _refused(capsys, "data", folder)


def test_truncated_gzip_idx_message_is_consistent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    folder = tmp_path / "t"
    folder.mkdir()
    blob = gzip.compress(cases.idx_images_header(10, 28, 28) + np.random.default_rng(0).bytes(7840))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    (folder / "train-labels-idx1-ubyte").write_bytes(cases.idx_labels_header(10) + bytes(10))
    err = _refused(capsys, "data", folder)
    assert "ends before the 7,856 bytes its header needs" in err
    assert "holds" not in err  # the old message quoted the cut file's last 4 bytes as its length


def test_csv_row_with_a_5000_character_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cases.tiny_images(tmp_path / "imgs")
    rows = ["path,label"] + [f"{p},{p.parent.name}" for p in sorted(data.rglob("*.png"))] + ["x" * 5000 + ".png,a"]
    csv = tmp_path / "d.csv"
    csv.write_text("\n".join(rows) + "\n")
    code, err = _cli(capsys, "data", csv)
    assert code == 0, err
    err = _refused(capsys, "data", csv, "--strict")
    assert "too long for the filesystem" in err


# ------------------------------------------------------------------ disclosure

SECRET = "ro0t:$6$Zq9salt$Xk4hashvalue:19000:0:99999:7:::"


def test_skip_reasons_never_quote_file_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cases.tiny_images(tmp_path / "imgs")
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n")
    binary = tmp_path / "blob.jpg"
    binary.write_bytes(b"\x93SECRETBYTES\x00\x01" * 4)
    (data / "a" / "link.png").symlink_to(secret)
    rows = ["path,label"] + [f"{p},{p.parent.name}" for p in sorted(data.rglob("*.png"))]
    rows += [f"{secret},a", f"{binary},b"]
    csv = tmp_path / "d.csv"
    csv.write_text("\n".join(rows) + "\n")
    code = main(["data", str(csv), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for fragment in ("ro0t", "Zq9salt", "Xk4hash", "SECRETBYTES", "53 45 43"):  # text, bytes, or their hex
        assert fragment not in out + err
    assert "the file holds text" in out and "binary data" in out


# ------------------------------------------------------------------ small things

def test_a_list_as_spec_names_no_internal_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "l.yaml"
    spec.write_text("[1, 2, 3]\n")
    err = _refused(capsys, "summary", spec)
    assert "a list of 3 items" in err and "_LineList" not in err


def test_a_folder_named_like_a_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.yaml").mkdir()
    err = _refused(capsys, "summary", tmp_path / "x.yaml")
    assert "is not a file" in err and "no spec file" not in err


def test_lr_find_iters_names_the_option() -> None:
    from cnnlab.train.lr_find import _check_range

    with pytest.raises(CnnlabError, match="--iters"):
        _check_range(1e-7, 10.0, 1, 0.98, 4.0)


def test_cjk_class_names_draw_without_warnings(tmp_path: Path) -> None:
    from cnnlab.visualize.confusion import save_confusion
    from cnnlab.visualize.fonts import covered, drawable

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph missing" warning fails the test
        save_confusion(np.array([[3, 1], [0, 2]]), ["猫", "$犬$ café"], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    assert drawable("猫") == ("猫" if covered("猫") else "[U+732B]")
    assert drawable("café") == "café"  # DejaVu Sans, shipped with matplotlib, has it


# ------------------------------------------------------------------ memory, in a child process (slow)

@pytest.mark.slow
@pytest.mark.parametrize("name", list(cases.MEMORY_CASES))
def test_memory_case_peak_rss_under_1_gb(name: str, tmp_path: Path) -> None:
    args = cases.MEMORY_CASES[name](tmp_path)
    code, err, rss = cases.run_capped(args, cap=4 * GB, env={"CNNLAB_CACHE": str(tmp_path / "cache")})
    assert code == 2, err
    assert err.startswith("error: ") or "\nerror: " in err
    assert "Traceback" not in err
    assert rss < GB, f"{name}: peak RSS {rss / 2**20:.0f} MiB"


@pytest.mark.slow
def test_forced_oversized_run_is_marked_failed_not_running(tmp_path: Path) -> None:
    args = cases.huge_dense(tmp_path) + ["--force"]
    code, err, _ = cases.run_capped(args, cap=3 * GB, env={"CNNLAB_CACHE": str(tmp_path / "cache")})
    assert code == 2 and "Traceback" not in err, err
    status = json.loads((tmp_path / "huge-run" / "status.json").read_text())
    assert status["state"] == "failed"


def test_pickle_module_is_not_used_for_anything_but_cifar() -> None:
    """The restricted unpickler is the one place a pickle is read (run folders refuse pickles)."""
    src = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if "pickle.Unpickler" in p.read_text()
                   or "pickle.load" in p.read_text())
    assert users == ["data/cifar.py"]
    assert pickle.HIGHEST_PROTOCOL >= 2
