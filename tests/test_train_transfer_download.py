"""Named weight sets download like datasets: from a local HTTP server on 127.0.0.1 (never the internet),
checksum-verified (SHA-256 prefix, torch.hub's convention), resumed after a cut, and offline the
message names the file, its checksum and the folder to put it in."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.train.init_from import from_named, resolve
from cnnlab.zoo import pretrained
from test_data_download import Files, make_handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Files]]:
    files = Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(files))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.delenv("CNNLAB_MIRROR", raising=False)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        httpd.shutdown()
        httpd.server_close()


def weights_bytes() -> tuple[bytes, dict[str, torch.Tensor]]:
    tensors = {"layers.0.conv.weight": torch.arange(24.0).view(2, 3, 2, 2), "layers.0.conv.bias": torch.ones(2)}
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return buf.getvalue(), tensors


def entry(url: str, body: bytes, name: str = "w-test.pth") -> pretrained.PretrainedSet:
    prefix = hashlib.sha256(body).hexdigest()[:8]
    return pretrained.PretrainedSet("net:test", "net", f"{url}/{name}", name, prefix, (0.5,), (0.5,), (1, 4, 4), 2,
                                    "cnnlab", "test weights")


def test_download_verifies_and_caches(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    body, tensors = weights_bytes()
    files.content["/w-test.pth"] = body
    got = from_named(entry(url, body), folder=tmp_path, progress=False)
    assert all(torch.equal(got.tensors[k], v) for k, v in tensors.items())
    assert (tmp_path / "w-test.pth").read_bytes() == body
    from_named(entry(url, body), folder=tmp_path, progress=False)  # second time: from the cache
    assert len(files.log) == 1


def test_a_cut_transfer_resumes_with_range(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    body, _ = weights_bytes()
    files.content["/w-test.pth"] = body
    files.truncate_once.add("/w-test.pth")
    from_named(entry(url, body), folder=tmp_path, progress=False)
    assert [r for _, r in files.log] == ["", f"bytes={len(body) // 3}-"]
    assert (tmp_path / "w-test.pth").read_bytes() == body


def test_a_wrong_checksum_is_deleted_and_reported(server: tuple[str, Files], tmp_path: Path) -> None:
    url, files = server
    body, _ = weights_bytes()
    files.content["/w-test.pth"] = body[:-1] + bytes([body[-1] ^ 1])  # one bit flipped
    with pytest.raises(CnnlabError) as err:
        from_named(entry(url, body), folder=tmp_path, progress=False)
    assert "checksum mismatch" in str(err.value)
    assert not (tmp_path / "w-test.pth").exists() and not (tmp_path / "w-test.pth.part").exists()


def test_offline_message_lists_file_checksum_and_folder(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    body, _ = weights_bytes()
    ps = entry(f"http://127.0.0.1:{port}", body)
    with pytest.raises(CnnlabError) as err:
        from_named(ps, folder=tmp_path, progress=False)
    text = str(err.value)
    assert f"Put this file in '{tmp_path}/'" in text
    assert f"w-test.pth  (sha256 starts with {ps.sha256_prefix}) from http://127.0.0.1:{port}/w-test.pth" in text


def test_official_sets_point_at_torchvision_files() -> None:
    ps = pretrained.get("resnet18:imagenet")
    assert ps.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert ps.filename.split("-")[1].startswith(ps.sha256_prefix)  # torch.hub: name carries the hash prefix
    assert pretrained.get("RESNET50:imagenet").sha256_prefix == "0676ba61"
    with pytest.raises(CnnlabError, match="did you mean 'resnet18:imagenet'"):
        resolve("resnet18:imagenett")


def test_a_cached_file_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    body, _ = weights_bytes()
    ps = entry("http://127.0.0.1:9", body)
    (tmp_path / "w-test.pth").write_bytes(body + b"x")  # put there by hand, but not the right file
    with pytest.raises(CnnlabError, match=f"not {ps.sha256_prefix}; delete it"):
        from_named(ps, folder=tmp_path, progress=False)
