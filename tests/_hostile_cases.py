"""Hostile and broken inputs of issue 11, as files a test (or ``bench/hostile_memory.py``) writes.

Each builder writes its input under ``folder`` and returns the ``cnnlab`` arguments that read it.
``run_capped`` runs the CLI in a child process under an address-space limit and returns
``(exit code, stderr, peak RSS in bytes)`` measured by ``os.wait4`` for that child alone.
"""

from __future__ import annotations

import gzip
import os
import pickle
import resource
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

SRC = str(Path(__file__).resolve().parents[1] / "src")
GB = 1 << 30


def run_capped(args: list[str], *, cap: int = 3 * GB, cwd: Path | None = None,
                   env: dict[str, str] | None = None, timeout: float = 240) -> tuple[int, str, int]:
    """``python -m cnnlab ARGS`` with RLIMIT_AS = ``cap``; (exit code, stderr, the child's peak RSS in bytes)."""
    import tempfile

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    full_env = {**os.environ, "PYTHONPATH": SRC, "MPLBACKEND": "Agg", "CNNLAB_LANG": "en", **(env or {})}
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "cnnlab", *args], stdout=subprocess.DEVNULL,
                                stderr=err_file, preexec_fn=limit, cwd=cwd, env=full_env)
        try:
            _, status, usage = _wait4(proc.pid, timeout)
        except TimeoutError:
            proc.kill()
            os.waitpid(proc.pid, 0)
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode("utf-8", "replace")
    return proc.returncode, err, usage.ru_maxrss * 1024  # Linux: KiB


def _wait4(pid: int, timeout: float) -> tuple[int, int, resource.struct_rusage]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got:
            return got, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError(f"cnnlab did not finish in {timeout} s")
        time.sleep(0.05)


# ------------------------------------------------------------------ inputs

def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """~600 bytes of YAML whose aliases expand to width**levels strings."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def laughs_spec(folder: Path) -> list[str]:
    path = folder / "laughs.yaml"
    path.write_text("name: laughs\ninput: [1, 8, 8]\nlayers: [{output: 2}]\n" + billion_laughs())
    return ["summary", str(path)]


def laughs_config(folder: Path) -> list[str]:
    path = folder / "laughs-config.yaml"
    path.write_text(billion_laughs())
    return ["train", "lenet5", "--data", "sample", "--config", str(path), "--dry-run"]


class _Reconstruct:
    """Pickles as numpy's ``_reconstruct(ndarray, shape, 'b')``: an array declared, never stored."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        return _reconstruct, (np.ndarray, self.shape, b"b")


def cifar_declared(folder: Path) -> list[str]:
    """A ~200-byte CIFAR python batch declaring a 1.5 M x 3,072 uint8 array."""
    d = folder / "cifar-decl"
    d.mkdir()
    (d / "data_batch_1").write_bytes(pickle.dumps({"data": _Reconstruct((1_500_000, 3072)), "labels": [0]}, 2))
    (d / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}, 2))
    return ["data", str(d)]


def cifar_batch(folder: Path, data: object, labels: object, name: str = "cifar") -> list[str]:
    d = folder / name
    d.mkdir()
    (d / "data_batch_1").write_bytes(pickle.dumps({"data": data, "labels": labels}, 2))
    return ["data", str(d)]


def tiny_images(folder: Path, classes: tuple[str, ...] = ("a", "b"), per_class: int = 3, size: int = 8) -> Path:
    """A class-folder dataset of ``per_class`` small PNGs per class (distinct pixels)."""
    rng = np.random.default_rng(0)
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")
    return folder


def sparse_jpg(folder: Path, size: int = 20 * GB) -> list[str]:
    """A class-folder dataset whose one '.jpg' is a sparse 20 GB file; --strict makes it an error."""
    data = tiny_images(folder / "sparse-data")
    with open(data / "a" / "huge.jpg", "wb") as fh:
        fh.truncate(size)
    return ["data", str(data), "--strict"]


def huge_dense(folder: Path) -> list[str]:
    """A spec with a 784 M-parameter dense layer, trained on a tiny folder."""
    spec = folder / "huge.yaml"
    spec.write_text("name: huge\ninput: [1, 28, 28]\nlayers:\n  - flatten\n  - dense: 1000000\n  - output: 2\n")
    data = tiny_images(folder / "huge-data")
    return ["train", str(spec), "--data", str(data), "--out", str(folder / "huge-run"), "--epochs", "1", "--quiet"]


def huge_input(folder: Path) -> list[str]:
    """A spec whose input is 3 x 20000 x 20000."""
    spec = folder / "wide.yaml"
    spec.write_text("name: wide\ninput: [3, 20000, 20000]\nlayers:\n  - conv: {filters: 4, kernel: 3}\n"
                    "  - global_pool\n  - output: 2\n")
    data = tiny_images(folder / "wide-data")
    return ["train", str(spec), "--data", str(data), "--out", str(folder / "wide-run"), "--epochs", "1", "--quiet"]


def idx_pair(folder: Path, images_header: bytes, labels_header: bytes, images_data: bytes = b"",
             labels_data: bytes = b"", gz: bool = False) -> Path:
    """An MNIST-named IDX pair with the given raw headers and data."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    opener: Callable[[bytes], bytes] = gzip.compress if gz else bytes
    (folder / f"train-images-idx3-ubyte{ext}").write_bytes(opener(images_header + images_data))
    (folder / f"train-labels-idx1-ubyte{ext}").write_bytes(opener(labels_header + labels_data))
    return folder


def idx_images_header(n: int, h: int, w: int) -> bytes:
    return struct.pack(">IIII", 2051, n, h, w)


def idx_labels_header(n: int) -> bytes:
    return struct.pack(">II", 2049, n)


MEMORY_CASES: dict[str, Callable[[Path], list[str]]] = {
    "billion laughs spec": laughs_spec,
    "billion laughs --config": laughs_config,
    "CIFAR batch declaring 1.5 M x 3,072": cifar_declared,
    "20 GB sparse .jpg": sparse_jpg,
    "784 M-parameter dense layer": huge_dense,
    "3 x 20000 x 20000 input": huge_input,
}
