"""Downloads against a local HTTP server on 127.0.0.1 (never the internet).

Run: ``.venv/bin/pytest tests/test_data_download.py``. The server serves good, truncated and
corrupted files, honours ``Range`` (so resuming can be checked), and records every request.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import datasets, load_data
from cnnlab.data.datasets import RemoteFile
from cnnlab.data.download import FetchError, fetch_any
from cnnlab.errors import DataError


class Files:
    """What the server serves: ``content[path]``, ``truncate_once`` paths, and a request log."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.truncate_once: set[str] = set()
        self.log: list[tuple[str, str]] = []


def make_handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            files.log.append((self.path, self.headers.get("Range", "")))
            body = files.content.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if self.path in files.truncate_once:
                files.truncate_once.discard(self.path)
                self.wfile.write(body[start:start + len(body) // 3])  # then hang up early
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Files]]:
    files = Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(files))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for name in list(datasets.MIRRORS):  # never reach the official locations from a test
        monkeypatch.setitem(datasets.MIRRORS, name, ())
    monkeypatch.delenv("CNNLAB_MIRROR", raising=False)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        httpd.shutdown()
        httpd.server_close()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def test_good_file_is_verified_and_moved_into_place(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    files.content["/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    fetch_any([url + "/a.bin"], dest, RemoteFile("a.bin", md5(PAYLOAD)), progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "a.bin.part").exists()


def test_truncated_transfer_resumes_with_range(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    files.content["/a.bin"] = PAYLOAD
    files.truncate_once.add("/a.bin")
    dest = tmp_path / "a.bin"
    fetch_any([url + "/a.bin"], dest, RemoteFile("a.bin", md5(PAYLOAD)), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert files.log[0] == ("/a.bin", "")
    assert files.log[1] == ("/a.bin", f"bytes={len(PAYLOAD) // 3}-")  # resumed where it stopped


def test_corrupted_mirror_is_deleted_and_next_mirror_used(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    bad = bytearray(PAYLOAD)
    bad[5000] ^= 0xFF
    files.content["/m1/a.bin"] = bytes(bad)
    files.content["/m2/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    fetch_any([url + "/m1/a.bin", url + "/m2/a.bin"], dest, RemoteFile("a.bin", md5(PAYLOAD)), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [p for p, _ in files.log] == ["/m1/a.bin", "/m2/a.bin"]  # a checksum failure is not retried


def test_all_mirrors_bad_raises_and_leaves_nothing(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    files.content["/a.bin"] = b"x" * 1000
    dest = tmp_path / "a.bin"
    with pytest.raises(FetchError, match="checksum mismatch.*HTTP 404"):
        fetch_any([url + "/a.bin", url + "/missing.bin"], dest, RemoteFile("a.bin", md5(PAYLOAD)), progress=False)
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


def test_recompressed_gzip_accepted_by_decompressed_checksum(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    original = gzip.compress(PAYLOAD, mtime=1)
    recompressed = gzip.compress(PAYLOAD, compresslevel=1, mtime=0)
    assert md5(original) != md5(recompressed)
    files.content["/a.gz"] = recompressed
    remote = RemoteFile("a.gz", md5(original), raw_md5=md5(PAYLOAD))
    fetch_any([url + "/a.gz"], tmp_path / "a.gz", remote, progress=False)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == PAYLOAD


def idx_files(n: int, seed: int, prefix: str) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return {f"{prefix}-images-idx3-ubyte.gz": gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes()),
            f"{prefix}-labels-idx1-ubyte.gz": gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes())}


def test_named_mnist_downloads_through_cnnlab_mirror(server: tuple[str, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, files = server
    blobs = {**idx_files(30, 0, "train"), **idx_files(10, 1, "t10k")}
    for name, blob in blobs.items():
        files.content[f"/mnist/{name}"] = blob
    monkeypatch.setitem(datasets.FILES, "mnist", tuple(RemoteFile(n, md5(b)) for n, b in blobs.items()))
    monkeypatch.setenv("CNNLAB_MIRROR", url)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "home"))
    b = load_data("mnist", (1, 28, 28), progress=False)
    assert b.test is not None and len(b.test) == 10 and len(b.train) + len(b.val) == 30
    assert sorted(p.name for p in (tmp_path / "home" / "mnist").iterdir()) == sorted(blobs)
    n_requests = len(files.log)
    load_data("mnist", (1, 28, 28), progress=False)  # second time: found on disk
    assert len(files.log) == n_requests


def test_offline_message_lists_files_and_folder(server: tuple[str, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = server
    monkeypatch.setenv("CNNLAB_MIRROR", url)  # serves nothing: every file is a 404
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        load_data("fashion-mnist", (1, 28, 28), progress=False)
    text = str(err.value)
    assert f"Put these files in '{tmp_path / 'fashion-mnist'}/'" in text
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        assert name in text
    with pytest.raises(DataError, match="downloads are off"):
        load_data("mnist", (1, 28, 28), progress=False, download=False)


def cifar_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cifar10_archive_is_downloaded_and_unpacked(server: tuple[str, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, files = server
    rec = np.zeros((2, 3073), np.uint8)
    rec[:, 0] = [3, 5]
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": rec.tobytes() for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = rec.tobytes()
    blob = cifar_tar(members)
    files.content["/cifar10/cifar-10-binary.tar.gz"] = blob
    monkeypatch.setitem(datasets.FILES, "cifar10", (RemoteFile("cifar-10-binary.tar.gz", md5(blob), extract=True),))
    monkeypatch.setenv("CNNLAB_MIRROR", url)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    b = load_data("cifar10", (3, 32, 32), val_split=0.0, progress=False)
    assert len(b.train) == 10 and b.test is not None and b.test.labels.tolist() == [3, 5]


def test_archive_with_path_traversal_is_refused(server: tuple[str, Files], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, files = server
    blob = cifar_tar({"../../evil.txt": b"x"})
    files.content["/cifar10/cifar-10-binary.tar.gz"] = blob
    monkeypatch.setitem(datasets.FILES, "cifar10", (RemoteFile("cifar-10-binary.tar.gz", md5(blob), extract=True),))
    monkeypatch.setenv("CNNLAB_MIRROR", url)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "home"))
    with pytest.raises(DataError, match="unsafe entry '../../evil.txt'"):
        load_data("cifar10", (3, 32, 32), progress=False)
    assert not (tmp_path / "evil.txt").exists()


def test_unreachable_servers_give_the_offline_message_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name in list(datasets.MIRRORS):
        monkeypatch.setitem(datasets.MIRRORS, name, (f"http://127.0.0.1:{port}/official/",))
    monkeypatch.setenv("CNNLAB_MIRROR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        load_data("mnist", (1, 28, 28), progress=False)
    text = str(err.value)
    assert "could not be downloaded" in text and "network error" in text
    assert text.count("train-images-idx3-ubyte.gz") >= 2  # in the reason and in the list of files to put there
    assert "t10k-labels-idx1-ubyte.gz  (md5 ec29112dd5afa0611ce80d1b7f02629c)" in text
    # offline: stopped after the first file instead of trying all four on every host
    assert "train-labels-idx1-ubyte.gz:" not in text
