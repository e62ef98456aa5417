"""Fuzzing the readers and the command line (issue 11): whatever the bytes, ``cnnlab`` answers with a
result or with exit 2 and an ``error:`` line, never a traceback, within a memory cap.

Targets: spec YAML (structured and alias-heavy), ``--config`` YAML, IDX headers, CIFAR python
batches and binary records, image bytes, and every numeric CLI option. The quick part calls
``cnnlab.cli.main`` in this process under RLIMIT_AS (1 GiB above the current mapping; an exception
escaping ``main`` fails the test, so "no traceback" is checked by construction). The slow part
sends generated inputs through the real ``python -m cnnlab`` in a child process.

    PYTHONPATH=src:tests .venv/bin/python -m pytest -q tests/test_hostile_fuzz.py            # ~40 examples each
    CNNLAB_FUZZ_EXAMPLES=500 PYTHONPATH=src:tests .venv/bin/python -m pytest -q tests/test_hostile_fuzz.py
    PYTHONPATH=src:tests .venv/bin/python -m pytest -q -m slow tests/test_hostile_fuzz.py    # child processes
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pickle
import re
import resource
import struct
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _hostile_cases as cases
from cnnlab.cli import build_parser, main
from cnnlab.errors import CnnlabError, DataError

GB = 1 << 30
EXAMPLES = int(os.environ.get("CNNLAB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True, scope="module")
def _private_cache() -> Iterator[None]:
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("CNNLAB_CACHE")
        os.environ["CNNLAB_CACHE"] = cache
        yield
        if old is None:
            os.environ.pop("CNNLAB_CACHE", None)
        else:
            os.environ["CNNLAB_CACHE"] = old


@contextlib.contextmanager
def memory_cap(extra: int = GB) -> Iterator[None]:
    """RLIMIT_AS = what the process maps now + ``extra``, restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
              if line.startswith("VmSize:"))
    cap = vm + extra if hard == resource.RLIM_INFINITY else min(vm + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cli(*args: str | Path) -> tuple[int, str]:
    """``main(args)`` under the memory cap: (exit code, stderr). Exit 2 must come with an error line."""
    out, err = io.StringIO(), io.StringIO()
    with memory_cap(), redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    text = err.getvalue()
    assert code in (0, 2), (code, text)
    if code == 2:
        assert text.startswith("error: ") or "\nerror: " in text, text
    assert "Traceback" not in text
    return code, text


# ------------------------------------------------------------------ strategies

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["same", "valid", "relu", "max", "avg", "conv", "-1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
KINDS = ["conv", "pool", "dense", "output", "flatten", "dropout", "batchnorm", "activation", "global_pool",
         "residual", "lrn", "conv2d", "bogus"]
KEYS = ["filters", "kernel", "stride", "padding", "dilation", "groups", "units", "size", "rate", "layers",
        "activation", "type", "classes", "bias", "shortcut"]
layer = st.builds(lambda kind, params: {kind: params} if params is not None else kind, st.sampled_from(KINDS),
                  st.one_of(st.none(), st.integers(-3, 5000), st.dictionaries(st.sampled_from(KEYS), values,
                                                                              max_size=4)))
spec_docs = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=10), values),
     "input": st.one_of(st.lists(st.integers(-2, 70000), min_size=0, max_size=4), values),
     "layers": st.one_of(st.lists(layer, max_size=8), values)},
    optional={"description": values, "extra": values},
)


@st.composite
def alias_bombs(draw: st.DrawFn) -> str:
    """Nested anchors/aliases, of any width and depth, sometimes recursive."""
    levels, width = draw(st.integers(1, 14)), draw(st.integers(1, 12))
    text = cases.billion_laughs(levels, width)
    if draw(st.booleans()):
        text += f"loop: &z [*z, *a{levels - 1}]\n"
    return text


def yaml_text(docs: st.SearchStrategy[object]) -> st.SearchStrategy[bytes]:
    dumped = docs.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode())
    return st.one_of(dumped, alias_bombs().map(str.encode), st.binary(max_size=300),
                     st.tuples(dumped, st.binary(max_size=8), st.integers(0, 400)).map(
                         lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:]))


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ YAML: spec and --config

@FUZZ
@given(yaml_text(spec_docs))
def test_fuzz_spec_yaml(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        run_cli("summary", _write(Path(d), "spec.yaml", data), "--format", "json")


CONFIG_KEYS = ["epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup",
               "label_smoothing", "augment", "translate", "seed", "threads", "patience", "val_split", "device",
               "precision", "checkpoint_minutes", "batch_schedule", "lr_steps", "lr_scaling", "lr_reference_batch",
               "bogus-key"]
config_docs = st.dictionaries(st.sampled_from(CONFIG_KEYS), st.one_of(st.integers(-(2**70), 2**70), values),
                              max_size=5)


@FUZZ
@given(yaml_text(config_docs))
def test_fuzz_config_yaml(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        run_cli("train", "lenet5", "--data", "sample", "--config", _write(Path(d), "c.yaml", data), "--dry-run")


# ------------------------------------------------------------------ IDX headers

u32 = st.one_of(st.integers(0, 40), st.sampled_from([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 2**31]))


@FUZZ
@given(head=st.binary(min_size=4, max_size=4), images_dims=st.tuples(u32, u32, u32), label_count=u32,
       label_type=st.sampled_from([0x08, 0x09, 0x0D, 0x0C, 0x07]), data_len=st.integers(0, 5000),
       labels=st.binary(max_size=60), gz=st.booleans(), keep_magic=st.booleans(), cut=st.integers(0, 64))
def test_fuzz_idx_headers(head: bytes, images_dims: tuple[int, int, int], label_count: int, label_type: int,
                          data_len: int, labels: bytes, gz: bool, keep_magic: bool, cut: int) -> None:
    images_head = (b"\x00\x00\x08\x03" if keep_magic else head) + struct.pack(">III", *images_dims)
    labels_head = bytes([0, 0, label_type, 1]) + struct.pack(">I", label_count)
    with tempfile.TemporaryDirectory() as d:
        folder = cases.idx_pair(Path(d) / "idx", images_head, labels_head, bytes(data_len), labels, gz=gz)
        if cut:
            blob = (folder / f"train-images-idx3-ubyte{'.gz' if gz else ''}")
            raw = blob.read_bytes()
            blob.write_bytes(raw[: max(0, len(raw) - cut)])
        run_cli("data", folder, "--format", "json")


# ------------------------------------------------------------------ CIFAR batches

arrays = st.one_of(
    st.builds(lambda n, dt: np.zeros((n, 3072), dt), st.integers(0, 4), st.sampled_from([np.uint8, np.int64, np.float32])),
    st.builds(lambda shape: np.zeros(shape, np.uint8), st.lists(st.integers(0, 5), max_size=3).map(tuple)),
    st.builds(cases._Reconstruct, st.lists(st.sampled_from([0, 1, 3072, 10**6, 2**31, 2**62]), min_size=1,
                                           max_size=3).map(tuple)),
    values,
)
label_lists = st.one_of(st.lists(st.integers(-3, 12), max_size=6), st.lists(st.integers(), max_size=4), st.lists(st.text(max_size=2), max_size=4),
                        st.builds(lambda v: np.array(v, np.int64), st.lists(st.integers(-3, 300), max_size=6)),
                        values)


@FUZZ
@given(data=arrays, labels=label_lists, key=st.sampled_from(["labels", b"labels", "fine_labels"]),
       garbage=st.one_of(st.none(), st.binary(max_size=200)))
def test_fuzz_cifar_python_batch(data: object, labels: object, key: object, garbage: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "cifar"
        folder.mkdir()
        blob = garbage if garbage is not None else pickle.dumps({"data": data, key: labels}, 2)
        (folder / "data_batch_1").write_bytes(blob)
        run_cli("data", folder, "--format", "json")


@FUZZ
@given(records=st.integers(0, 3), extra=st.integers(-5, 5), labels=st.lists(st.integers(0, 255), min_size=3, max_size=3))
def test_fuzz_cifar_binary_records(records: int, extra: int, labels: list[int]) -> None:
    body = b"".join(bytes([labels[i % 3]]) + bytes(3072) for i in range(records))
    body = body[: max(0, len(body) + extra)] if extra < 0 else body + bytes(extra)
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "cifar"
        folder.mkdir()
        (folder / "data_batch_1.bin").write_bytes(body)
        run_cli("data", folder, "--format", "json")


# ------------------------------------------------------------------ image bytes

def _valid_image(fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(buf, format=fmt)
    return buf.getvalue()


VALID = {fmt: _valid_image(fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")}


@st.composite
def image_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[fmt])
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.integers(0, 4)) == 0:
        data = bytearray(draw(st.binary(max_size=400)))
    return fmt, bytes(data)


@FUZZ
@given(image_bytes(), st.sampled_from([(1, 8, 8), (3, 8, 8), (3, 5, 9)]), st.sampled_from(["crop", "pad", "stretch"]))
def test_fuzz_image_bytes(img: tuple[str, bytes], shape: tuple[int, int, int], resize: str) -> None:
    from cnnlab.data import load_image

    fmt, data = img
    with tempfile.TemporaryDirectory() as d, memory_cap():
        path = _write(Path(d), f"x.{fmt.lower()}", data)
        try:
            out = load_image(path, shape, resize)
        except DataError as exc:
            assert str(exc).startswith(f"cannot read image '{path}'")
        else:
            assert out.shape == shape and out.dtype == np.uint8


# ------------------------------------------------------------------ numeric CLI options

# (command line before the option, option, reference check of the parsed value)
def _int_in(lo: int, hi: int) -> object:
    return lambda text: _as_int(text) is not None and lo <= _as_int(text) <= hi  # type: ignore[operator]


def _as_int(text: str) -> int | None:
    return int(text.strip()) if re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) else None


# the documented grammar of a number option: ASCII digits, a point, an exponent (no "inf", no "1_0")
NUMBER = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


def _float_ok(lo: float, lo_open: bool, hi: float | None = None, hi_open: bool = False) -> object:
    def ok(text: str) -> bool:
        if not NUMBER.fullmatch(text):
            return False
        import math

        v = float(text)
        if not math.isfinite(v) or (v <= lo if lo_open else v < lo):
            return False
        return hi is None or (v < hi if hi_open else v <= hi)

    return ok


OPTIONS = [
    (["train", "x"], "--seed", _int_in(0, 2**32 - 1)),
    (["train", "x"], "--epochs", _int_in(1, 2**31 - 1)),
    (["train", "x"], "--batch-size", _int_in(1, 2**31 - 1)),
    (["train", "x"], "--devices", _int_in(1, 1024)),
    (["train", "x"], "--lr", _float_ok(0, True)),
    (["train", "x"], "--val-split", _float_ok(0, False, 1, True)),
    (["train", "x"], "--warmup", _float_ok(0, False, 1, True)),
    (["train", "x"], "--weight-decay", _float_ok(0, False)),
    (["data", "x"], "--val-split", _float_ok(0, False, 1, True)),
    (["data", "x"], "--seed", _int_in(0, 2**32 - 1)),
    (["summary", "x"], "--batch", _int_in(1, 2**31 - 1)),
    (["lr-find", "x"], "--iters", _int_in(2, 1_000_000)),
    (["lr-find", "x"], "--start-lr", _float_ok(0, True)),
    (["evaluate", "x"], "--top-k", _int_in(1, 2**31 - 1)),
    (["predict", "x", "y"], "--batch-size", _int_in(1, 2**31 - 1)),
    (["export", "x"], "--tolerance", _float_ok(0, True)),
    (["show", "mistakes", "x"], "-n", _int_in(1, 1024)),
]
numbers_as_text = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(repr), st.text(max_size=8),
                            st.sampled_from(["nan", "inf", "-inf", "1e9999", "0x10", " 3 ", "1_000", "", "-0"]))


@FUZZ
@given(case=st.sampled_from(OPTIONS), text=numbers_as_text)
def test_fuzz_numeric_options(case: tuple[list[str], str, object], text: str) -> None:
    before, option, ok = case
    parser = build_parser()
    dest = option.lstrip("-").replace("-", "_")
    try:
        args = parser.parse_args([*before, f"{option}={text}"])
    except CnnlabError as exc:
        assert not ok(text), (option, text, str(exc))  # type: ignore[operator]
        assert f"argument {option}" in str(exc)
        return
    assert ok(text), (option, text)  # type: ignore[operator]
    value = getattr(args, dest)
    value = value[0] if isinstance(value, list) else value  # --top-k takes several
    assert value == (float(text) if isinstance(value, float) else int(text))


# ------------------------------------------------------------------ the same through a child process (slow)

SLOW = settings(max_examples=max(10, EXAMPLES // 4), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _child(args: list[str], folder: Path) -> None:
    code, err, rss = cases.run_capped(args, cap=3 * GB, env={"CNNLAB_CACHE": str(folder / "cache")}, timeout=120)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error: ") or "\nerror: " in err
    assert rss < GB


@pytest.mark.slow
@SLOW
@given(yaml_text(spec_docs))
def test_fuzz_spec_yaml_in_a_child_process(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        _child(["summary", str(_write(Path(d), "spec.yaml", data))], Path(d))


@pytest.mark.slow
@SLOW
@given(data=arrays, labels=label_lists)
def test_fuzz_cifar_in_a_child_process(data: object, labels: object) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "cifar"
        folder.mkdir()
        (folder / "data_batch_1").write_bytes(pickle.dumps({"data": data, "labels": labels}, 2))
        _child(["data", str(folder)], Path(d))


@pytest.mark.slow
@SLOW
@given(head=st.binary(min_size=4, max_size=4), dims=st.tuples(u32, u32, u32), gz=st.booleans())
def test_fuzz_idx_in_a_child_process(head: bytes, dims: tuple[int, int, int], gz: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = cases.idx_pair(Path(d) / "idx", b"\x00\x00\x08\x03" + struct.pack(">III", *dims),
                                cases.idx_labels_header(dims[0]), bytes(64), bytes(dims[0] % 50), gz=gz)
        _child(["data", str(folder)], Path(d))


def test_gzip_is_used_by_the_idx_cases() -> None:
    """The gzip branch of the IDX strategy writes real gzip data (a guard for the fuzz target above)."""
    with tempfile.TemporaryDirectory() as d:
        folder = cases.idx_pair(Path(d), b"h", b"l", b"1", b"2", gz=True)
        assert gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes()) == b"h1"
