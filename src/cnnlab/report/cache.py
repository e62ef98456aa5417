"""Keep a report's model-derived results in the run folder, so the next report of the same run needs no model.

``RUN/cache/report-{best,last}-{lang}.npz`` holds what the report computed with the model and
matplotlib: the evaluation's per-image float32 log-probabilities (every number of the page is derived
from them by the same code as a fresh evaluation) and the pictures (PNG bytes, titles, captions). It is
stored under a SHA-256 ``key`` of everything they depend on:

- a format constant, the cnnlab version and the versions of torch, onnxruntime, matplotlib, Pillow
  and numpy (they draw the pictures and compute the log-probabilities), and matplotlib's font list
  (the fonts its cache knows: installing a CJK font changes how class names are drawn);
- the bytes of the checkpoint file and of ``spec.yaml``, ``classes.json`` and ``data.json`` (the
  weights, the network, the class names, the normalisation);
- the metrics rows (the curves), the language, the evaluation batch size and engine choice, and the
  picture parameters (resolution, number of examples, mistakes and feature-map layers);
- the evaluated images and their labels and class names, by content.

A report whose key matches reads the file and neither imports torch nor matplotlib; any other key, or
a missing, truncated, foreign or oversized file, means the results are recomputed and the file
replaced (atomically). A folder that cannot be written only costs the saving.

>>> import numpy as np, tempfile, pathlib
>>> from cnnlab.report.types import Picture
>>> f = pathlib.Path(tempfile.mkdtemp()) / "report.npz"
>>> png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000002000000030806000000")
>>> save(f, "k1", Kept(np.zeros((2, 3), np.float32), {"curves": Picture("curves", "t", "c", png, 2, 3)}))
>>> load(f, "k1", 2, 3).pictures["curves"].height, load(f, "k2", 2, 3)
(3, None)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.report.types import Picture
from cnnlab.utils.io import atomic_write_bytes

FORMAT = 1  # bump when what is stored, or how a picture is drawn from the same inputs, changes
MAX_PICTURE_BYTES = 32 * 2**20  # a report's pictures are well under 2 MB; a larger file is not one of ours
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PACKAGES = ("torch", "onnxruntime", "matplotlib", "pillow", "numpy")
SLOTS = ("curves", "confusion", "mistakes", "filters", "maps", "cams")  # "filters" holds a list


@dataclass
class Kept:
    """What a report keeps: ``logp`` ``(N, K)`` float32 (``None`` without an evaluation) and the pictures
    by slot (``SLOTS``; ``filters`` is a list, the others a ``Picture``; absent slots had none)."""

    logp: np.ndarray | None
    pictures: dict[str, Any] = field(default_factory=dict)


def file_name(which: str, lang: str) -> str:
    return f"report-{which}-{lang}.npz"


def weights_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a checkpoint file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(run: Any, weights: str, images: Any | None, lang: str, batch_size: int, engine: str) -> str:
    """SHA-256 of everything a report's model-derived results depend on (see the module docstring).

    ``run``: a ``RunInfo`` or ``Run`` read from its folder; ``weights``: ``weights_digest`` of its
    checkpoint; ``images``: the ``ImageSet`` evaluated (or ``None``)."""
    import cnnlab
    from cnnlab.report import figures

    h = hashlib.sha256()
    root = Path(run.path)
    h.update(json.dumps({
        "format": FORMAT, "cnnlab": cnnlab.__version__, "versions": _versions(), "fonts": _font_lists(),
        "which": str(run.which),
        "weights": weights, "lang": str(lang), "batch": int(batch_size), "engine": str(engine),
        "pictures": [figures.REPORT_DPI, figures.CAM_EXAMPLES, figures.MAP_LAYERS, figures.MISTAKES],
        "metrics": run.metrics,
    }, sort_keys=True, default=str).encode())
    for name in ("spec.yaml", "classes.json", "data.json"):
        h.update(f"|{name}|".encode())
        h.update((root / name).read_bytes())
    if images is not None:
        h.update(json.dumps([str(c) for c in images.classes]).encode())
        for arr in (np.ascontiguousarray(images.images), np.ascontiguousarray(images.labels, dtype=np.int64)):
            h.update(f"|{arr.dtype}|{arr.shape}|".encode())
            h.update(arr.data.cast("B"))  # raw bytes, no copy
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def _font_lists() -> list[list[Any]]:
    """Name, size and modification time of matplotlib's cached font lists (``fontlist-v*.json`` in its
    cache folder: ``$MPLCONFIGDIR``, else ``$XDG_CACHE_HOME/matplotlib`` or ``~/.cache/matplotlib``), found
    without importing matplotlib. matplotlib rebuilds that file when the installed fonts change."""
    configured = os.environ.get("MPLCONFIGDIR")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(configured) if configured else Path(xdg) / "matplotlib"
    try:
        found = sorted(folder.glob("fontlist-v*.json"))
        return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in found]
    except OSError:
        return []


def load(path: str | os.PathLike[str], key: str, n: int, k: int) -> Kept | None:
    """What was kept under ``key`` for ``n`` images of ``k`` classes, or ``None`` (absent, stale, damaged)."""
    path = Path(path)
    try:
        if path.stat().st_size > n * k * 4 + MAX_PICTURE_BYTES:  # bounded read
            return None
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            manifest = json.loads(str(npz["manifest"]))
            logp = npz["logp"] if "logp" in npz.files else None
            pictures = _pictures(manifest, npz)
    except Exception:  # noqa: BLE001 - absent, truncated, not an npz, a foreign manifest: recomputed
        return None
    if pictures is None or (logp is None) != (n == 0):
        return None
    if logp is not None and (logp.dtype != np.float32 or logp.shape != (n, k)):
        return None
    return Kept(logp, pictures)


def _pictures(manifest: Any, npz: Any) -> dict[str, Any] | None:
    pictures: dict[str, Any] = {}
    for i, entry in enumerate(manifest):
        png = npz[f"png{i}"]
        if png.dtype != np.uint8 or png.ndim != 1:
            return None
        data = png.tobytes()
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if data[:8] != PNG_SIGNATURE or (width, height) != (entry["width"], entry["height"]):
            return None
        pic = Picture(str(entry["key"]), str(entry["title"]), str(entry["caption"]), data, width, height)
        slot = entry["slot"]
        if slot == "filters":
            pictures.setdefault("filters", []).append(pic)
        elif slot in SLOTS and slot not in pictures:
            pictures[slot] = pic
        else:
            return None
    return pictures


def save(path: str | os.PathLike[str], key: str, kept: Kept) -> None:
    """Store ``kept`` under ``key`` atomically; a folder that cannot be written is left as it is."""
    entries: list[tuple[str, Picture]] = []
    for slot in SLOTS:
        found = kept.pictures.get(slot)
        entries += [(slot, p) for p in (found if isinstance(found, list) else [found]) if p is not None]
    manifest = [{"slot": slot, "key": p.key, "title": p.title, "caption": p.caption, "width": p.width,
                 "height": p.height} for slot, p in entries]
    arrays: dict[str, Any] = {f"png{i}": np.frombuffer(p.png, np.uint8) for i, (_, p) in enumerate(entries)}
    if kept.logp is not None:
        arrays["logp"] = np.ascontiguousarray(kept.logp, dtype=np.float32)
    buf = io.BytesIO()
    arrays.update(key=np.array(key), manifest=np.array(json.dumps(manifest)))
    np.savez(buf, **arrays)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # read-only run folder: the report is still correct, only not kept
