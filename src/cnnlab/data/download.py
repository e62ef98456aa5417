"""Download named datasets: mirrors in turn, resumable (HTTP Range), atomic, checksum-verified.

A file is fetched into ``NAME.part`` beside its destination; an interrupted transfer resumes
from where it stopped (``Range: bytes=N-``), a server that ignores Range restarts it. A finished
file is accepted when its MD5 matches the distributed file, or when it is gzip and the MD5 of its
decompressed content matches (a re-compressed copy); it is then renamed into place. A corrupt
file is deleted and the next mirror tried. ``$CNNLAB_MIRROR`` (a base URL serving
``BASE/<dataset>/<file>``) is tried before the official locations.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from cnnlab.data import datasets
from cnnlab.data.named import NamedDataset
from cnnlab.data.progress import ProgressFn, make_progress
from cnnlab.errors import DataError

CHUNK = 1 << 16
TIMEOUT_S = 20.0


class FetchError(Exception):
    """One URL failed (network, HTTP status, truncation or checksum).

    ``offline``: no server answered at all (DNS, refused, timeout), so other files on the same
    hosts are not worth trying; ``progressed``: bytes arrived, so the same URL may resume.
    """

    def __init__(self, message: str, *, offline: bool = False, progressed: bool = False) -> None:
        super().__init__(message)
        self.offline = offline
        self.progressed = progressed


def dataset_present(ds: NamedDataset, folder: Path) -> bool:
    """True when the files needed to read ``ds`` are in ``folder``."""
    if not folder.is_dir():
        return False
    if ds.kind == "idx":
        from cnnlab.data.idx import find_idx_pairs

        return len(find_idx_pairs(folder)) == 2
    from cnnlab.data.cifar import find_cifar

    return find_cifar(folder) is not None


def urls_for(dataset: str, name: str) -> list[str]:
    bases = list(datasets.MIRRORS.get(dataset, ()))
    custom = os.environ.get("CNNLAB_MIRROR", "").strip()
    urls = [f"{custom.rstrip('/')}/{dataset}/{name}"] if custom else []
    return urls + [base + name for base in bases]


def ensure_files(ds: NamedDataset, folder: Path, *, download: bool, progress: bool | ProgressFn | None) -> None:
    """Make ``ds`` readable from ``folder``: nothing to do, download, or raise the offline message."""
    if dataset_present(ds, folder):
        return
    if not download:
        raise DataError(offline_message(ds, folder, "downloads are off: --no-download"))
    from cnnlab.data.cache import download_lock

    with download_lock(folder):  # DDP ranks, parallel runs: one downloads, the others wait
        if dataset_present(ds, folder):  # another process finished it while this one waited
            return
        problems: list[str] = []
        for remote in datasets.FILES[ds.name]:
            dest = folder / remote.name
            if not dest.exists():
                try:
                    fetch_any(urls_for(ds.name, remote.name), dest, remote, progress=progress)
                except FetchError as exc:
                    problems.append(f"{remote.name}: {exc}")
                    if exc.offline:  # no server reachable: do not wait on every other file too
                        break
                    continue
            if remote.extract:
                extract_tar(dest, folder)
        if problems or not dataset_present(ds, folder):
            raise DataError(offline_message(ds, folder, "; ".join(problems) or "the downloaded files are incomplete"))


def offline_message(ds: NamedDataset, folder: Path, reason: str) -> str:
    """Which files to put where, with their official URL and checksum."""
    lines = [f"{ds.name} is not in '{folder}' and could not be downloaded ({reason}).",
             f"Put these files in '{folder}/' (or set CNNLAB_DATA to a folder holding {ds.folder}/):"]
    for remote in datasets.FILES[ds.name]:
        first = urls_for(ds.name, remote.name)[0]
        lines.append(f"  {remote.name}  (md5 {remote.md5}) from {first}")
    if ds.kind != "idx":
        lines.append("  The .tar.gz is unpacked automatically on the next run.")
    return "\n".join(lines)


def fetch_any(urls: list[str], dest: Path, remote: datasets.RemoteFile, *, progress: bool | ProgressFn | None = None) -> None:
    """Try each URL in turn until ``dest`` holds a verified copy; a transfer cut short resumes once."""
    errors: list[str] = []
    offline = True
    for url in urls:
        for _attempt in range(2):
            try:
                fetch(url, dest, remote, progress=progress)
                return
            except FetchError as exc:
                errors.append(f"{url}: {exc}")
                offline = offline and exc.offline
                if not exc.progressed:
                    break  # a refused, missing or corrupt file is not fixed by asking again
    raise FetchError("; ".join(errors) or "no URL to try", offline=offline and bool(urls))


def fetch(url: str, dest: Path, remote: datasets.RemoteFile, *, progress: bool | ProgressFn | None = None) -> None:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, then rename into place."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cnnlab", **({"Range": f"bytes={have}-"} if have else {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            status = getattr(resp, "status", 200)
            if have and status != 206:
                have = 0  # the server ignored Range: start over
            length = resp.headers.get("Content-Length")
            expected = have + int(length) if length is not None else remote.size or 0
            _stream(resp, part, have, expected, progress, dest.name)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked past the end: the .part is complete (or bad)
            pass
        else:
            raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except FetchError:
        raise
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        now = part.stat().st_size if part.exists() else 0
        raise FetchError(f"network error after {now:,} bytes ({getattr(exc, 'reason', exc)})",
                         offline=now == have, progressed=now > have) from None
    verify_or_remove(part, remote)
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, dest)


def _stream(resp: object, part: Path, have: int, expected: int, progress: bool | ProgressFn | None, label: str) -> None:
    bar = make_progress(progress, expected, f"downloading {label}")
    done = have
    try:
        with open(part, "ab" if have else "wb") as fh:
            while True:
                block = resp.read(CHUNK)  # type: ignore[attr-defined]
                if not block:
                    break
                fh.write(block)
                done += len(block)
                bar.update(done)
    finally:
        bar.close()
    if expected and done < expected:
        raise FetchError(f"connection closed after {done:,} of {expected:,} bytes (truncated); the partial file is kept to resume",
                         progressed=done > have)


def verify_or_remove(path: Path, remote: datasets.RemoteFile) -> None:
    """Accept ``path`` if its MD5 (or SHA-256 prefix), or its decompressed content's MD5, is the known one."""
    if remote.sha256_prefix:
        if sha256_file(path).startswith(remote.sha256_prefix.lower()):
            return
    elif md5_file(path) == remote.md5:
        return
    if remote.raw_md5 and _gunzip_md5(path) == remote.raw_md5:
        return
    size = path.stat().st_size
    path.unlink(missing_ok=True)
    raise FetchError(f"checksum mismatch for {remote.name} ({size:,} bytes; expected {remote.checksum_text()}); the file was deleted")


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _gunzip_md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with gzip.open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except (OSError, EOFError, zlib.error):
        return ""
    return h.hexdigest()


def extract_tar(archive: Path, folder: Path) -> None:
    """Unpack ``archive`` into ``folder``, refusing members that would land outside it."""
    root = folder.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                target = (root / m.name).resolve()
                if not (m.isfile() or m.isdir()) or root not in (target, *target.parents):
                    raise DataError(f"'{archive}' holds an unsafe entry '{m.name}'; not unpacked")
            try:
                tar.extractall(folder, members=members, filter="data")
            except TypeError:  # Python without tar filters (< 3.10.12 / 3.11.4): members checked above
                tar.extractall(folder, members=members)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"'{archive}' cannot be unpacked ({exc}); delete it and run again to download it anew") from None
