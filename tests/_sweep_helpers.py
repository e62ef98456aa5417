"""Helpers for the sweep tests: a tiny generated image folder, the sweep command, a throwaway PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "tiny", "input": [1, 12, 12],
    "layers": [{"conv": {"filters": 8, "kernel": 3, "padding": 1}}, {"pool": 2}, "flatten", {"output": 2}],
}


def image_folder(root: Path, per_class: int = 60, size: int = 12, seed: int = 0) -> Path:
    """Two classes of grey PNGs: bright even rows vs bright even columns, plus noise (learnable in an epoch)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(("rows", "cols")):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 90, size=(size, size))
            if label == 0:
                img[::2, :] += 150
            else:
                img[:, ::2] += 150
            Image.fromarray(img.astype(np.uint8), mode="L").save(folder / f"{i:03d}.png")
    return root


def spec_file(path: Path, spec: dict | None = None) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(spec or SPEC, sort_keys=False), encoding="utf-8")
    return path


def env(tmp: Path, heartbeat: int = 1) -> dict[str, str]:
    """The environment of a sweep subprocess: this checkout first, a private cache, quick heartbeats."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CNNLAB_CACHE": str(tmp / "cache"),
            "CNNLAB_SWEEP_HEARTBEAT": str(heartbeat), "CNNLAB_LANG": "en"}


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab", "sweep", *args]


def run_sweep_cli(tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sweep_cmd(*args), env=env(tmp), capture_output=True, text=True, timeout=timeout,
                          cwd=tmp)


def trials_of(folder: Path, url: str | None = None) -> list:
    """The study's raw Optuna trials (read straight from the storage)."""
    from cnnlab.sweep.results import read_folder, storage_url
    from cnnlab.sweep.storage import load_study, open_storage

    info = read_folder(folder)
    return load_study(open_storage(storage_url(folder, info, url)), info["name"]).get_trials(deepcopy=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def postgres_server(tmp: Path):
    """Yield a URL of a PostgreSQL server: ``CNNLAB_TEST_POSTGRES_URL`` if set, else a throwaway cluster
    (initdb in ``tmp``, on a free 127.0.0.1 port, stopped afterwards). Skips with the reason otherwise."""
    given = os.environ.get("CNNLAB_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'cnnlab[sweep]')")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile_dir(tmp))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_user:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    out = subprocess.run([*as_user, initdb, "-D", str(data), "-U", "cnnlab", "--auth=trust", "-E", "UTF8"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"initdb failed: {out.stderr.strip()[-300:]}")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"],
                           capture_output=True, text=True)
    if start.returncode != 0:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        pytest.skip(f"the PostgreSQL server did not start: {start.stderr.strip()[-200:]} {log[-300:]}")
    try:
        url = f"postgresql://cnnlab@127.0.0.1:{port}/postgres"
        for _ in range(50):
            try:
                import psycopg

                psycopg.connect(url).close()
                break
            except Exception:
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)


def tempfile_dir(tmp: Path) -> str:
    """A folder the postgres user can enter (pytest's tmp_path parents may be private to root)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="cnnlab-pg-")
    os.chmod(path, 0o755)
    return path
