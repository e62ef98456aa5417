"""The explore server's safety: it binds 127.0.0.1 unless told otherwise, a remote host needs the token,
other Host headers are refused, uploads are capped, no request path reaches a file outside the page's
own files, and every answer carries the Content-Security-Policy. Plus the CLI's clear errors.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explore server needs the [explore] extra (starlette, uvicorn)")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.explore import create_app, open_explorer  # noqa: E402
from cnnlab.explore.server import CSP, MAX_UPLOAD  # noqa: E402

SPEC = {"name": "tiny", "input": [1, 12, 12],
        "layers": [{"conv": {"filters": 2, "kernel": 3}}, {"pool": 2}, {"output": 2}]}
SECRET = "cnnlab-secret-do-not-serve"


@pytest.fixture(scope="module")
def ex():
    return open_explorer(SPEC)


def _client(app, host="127.0.0.1"):
    return TestClient(app, base_url=f"http://{host}")


def _png(size=(12, 12)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_serve_binds_localhost_by_default(ex, monkeypatch) -> None:
    import uvicorn

    from cnnlab.explore import serve

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.setdefault("host", self.config.host))
    urls = []
    serve(ex, port=8999, open_browser=False, ready=urls.append)
    assert seen["host"] == "127.0.0.1" and urls == ["http://127.0.0.1:8999/"]


def test_remote_host_needs_the_flag_and_gets_a_token(ex, monkeypatch, capsys) -> None:
    import uvicorn

    from cnnlab.explore import serve

    with pytest.raises(CnnlabError, match="--allow-remote"):
        serve(ex, host="0.0.0.0", open_browser=False)
    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.setdefault("host", self.config.host))
    urls = []
    serve(ex, host="0.0.0.0", allow_remote=True, open_browser=False, ready=urls.append)
    assert seen["host"] == "0.0.0.0"
    assert "?token=" in urls[0] and len(urls[0].split("token=")[1]) >= 24
    assert "warning" in capsys.readouterr().err


def test_token_is_required_when_set(ex) -> None:
    client = _client(create_app(ex, token="s3cret-token", allowed_hosts=()), host="192.168.1.7")
    assert client.get("/api/info").status_code == 403
    assert client.get("/").status_code == 403
    assert client.get("/api/info?token=wrong").status_code == 403
    assert client.get("/api/info?token=s3cret-token").status_code == 200
    assert client.get("/api/info", headers={"X-Cnnlab-Token": "s3cret-token"}).json()["name"] == "tiny"
    assert client.get("/static/app.js").status_code == 200  # the page's own code: public, needed to read the token


def test_other_host_headers_are_refused(ex) -> None:
    client = _client(create_app(ex), host="attacker.example")  # DNS rebinding: a foreign name for 127.0.0.1
    r = client.get("/api/info")
    assert r.status_code == 400 and "not allowed" in r.json()["error"]
    assert _client(create_app(ex), host="localhost:8765").get("/api/info").status_code == 200


def test_every_answer_has_the_csp(ex) -> None:
    client = _client(create_app(ex))
    for path in ("/", "/static/app.js", "/api/info", "/api/layer/99", "/static/nope.js"):
        r = client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in CSP and "http" not in CSP  # nothing from any other origin


def test_upload_cap(ex) -> None:
    client = _client(create_app(ex, max_upload=1000))
    r = client.post("/api/upload?name=big.png", content=b"\0" * 1001)
    assert r.status_code == 413 and "larger than" in r.json()["error"]

    def chunks():  # no Content-Length: the cap is enforced while reading
        for _ in range(10):
            yield b"\0" * 200

    r = client.post("/api/upload?name=big.png", content=chunks())
    assert r.status_code == 413
    ok = client.post("/api/upload?name=small.png", content=_png())
    assert ok.status_code == 200 and ok.json()["id"].startswith("u")
    assert MAX_UPLOAD == 10 * 2**20


def test_upload_goes_through_the_image_guards(ex) -> None:
    client = _client(create_app(ex))
    r = client.post("/api/upload?name=evil.png", content=b"<svg onload=alert(1)>")
    assert r.status_code == 400 and "cannot read image 'evil.png'" in r.json()["error"]
    r = client.post("/api/upload?name=bomb.png", content=_png_header(40000, 40000))  # 1.6 G pixels claimed
    assert r.status_code == 400 and "bomb.png" in r.json()["error"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression-bomb shape), 60 bytes long."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("path", [
    "/static/../session.py", "/static/..%2fsession.py", "/static/%2e%2e/%2e%2e/errors.py",
    "/static/..%5c..%5cerrors.py", "/static//etc/passwd", "/static/%2Fetc%2Fpasswd",
    "/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/index.html/../../session.py",
    "/api/image/..%2f..%2f..%2fetc%2fpasswd", "/api/layer/..%2f1", "/static/secret.txt",
    "/static/static/app.js", "/static/APP.JS",
])
def test_no_path_reaches_outside_the_page_files(ex, path, tmp_path) -> None:
    client = _client(create_app(ex))
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "import" not in r.text and "root:" not in r.text and SECRET not in r.text


def test_api_errors_are_messages_in_json_and_the_terminal(ex) -> None:
    said = []
    client = _client(create_app(ex, log=said.append))
    r = client.get("/api/neuron/v0/0/0/0/0")
    assert r.status_code == 400 and "unknown image 'v0'" in r.json()["error"]
    r = client.get("/api/layer/7")
    assert r.json()["error"] == "unknown layer 7: this network has layers 0..2"
    r = client.get("/api/maps/x/abc/0")
    assert "whole numbers" in r.json()["error"]
    assert said and all(s.startswith("error: ") for s in said)


def test_cli_missing_run_is_a_clear_error(tmp_path, capsys) -> None:
    from cnnlab.cli import main

    code = main(["explore", str(tmp_path / "runs" / "missing"), "--no-browser"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err


def test_cli_static_export_writes_the_page(tmp_path, capsys) -> None:
    from cnnlab.cli import main

    out = tmp_path / "site"
    assert main(["explore", "keras-mnist", "--data", "sample", "--static", str(out), "--static-images", "2"]) == 0
    assert (out / "index.html").is_file() and (out / "static" / "app.js").is_file()
    data = (out / "static" / "data.js").read_text()
    assert data.startswith("window.CNNLAB_STATIC = ") and '"/api/image/v1"' in data
    assert "static/data.js" in (out / "index.html").read_text()
    assert "UNTRAINED" in capsys.readouterr().out


def test_registering_the_command_imports_neither_torch_nor_the_server() -> None:
    import subprocess
    import sys

    code = ("import sys, argparse; import cnnlab.cli.explore_cmds as m; "
            "m.register(argparse.ArgumentParser().add_subparsers()); "
            "print('torch' in sys.modules, 'starlette' in sys.modules, 'uvicorn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
