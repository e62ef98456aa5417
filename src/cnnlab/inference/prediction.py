"""Predict the classes of new images with a trained run: files, folders or glob patterns.

Each image goes through exactly the run's preprocessing (``cnnlab.data.load_image`` with the
run's input shape and resize mode, then ``(x/255 - mean)/std`` with the training statistics),
in batches, under ``torch.inference_mode``. A file that is not an image, cannot be read or does
not exist gets a per-file error; every other file still gets its prediction.

CLI: ``cnnlab predict runs/lenet digit.png photos/ 'more/*.jpg' --top-k 3 --format json``.

>>> from cnnlab.train import load_run            # doctest: +SKIP
>>> for p in predict(load_run("runs/lenet"), ["digit.png", "notes.txt"]):   # doctest: +SKIP
...     print(p.source, p.label, p.error)
digit.png 7 None
notes.txt None cannot read notes.txt as an image: ...
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.decode import IMAGE_EXTENSIONS
from cnnlab.errors import CnnlabError, DataError, did_you_mean
from cnnlab.inference.common import RunLike, preprocess_batch
from cnnlab.model import model_device

_GLOB_CHARS = set("*?[")


@dataclass
class Prediction:
    """The outcome for one input: the ``top`` classes with probabilities, or an ``error``."""

    source: str
    top: list[tuple[str, float]] = field(default_factory=list)  # (class, probability), best first
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        """The most probable class (``None`` for an input that failed)."""
        return self.top[0][0] if self.top else None

    @property
    def probability(self) -> float | None:
        return self.top[0][1] if self.top else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "label": self.label,
            "probability": self.probability,
            "top": [{"class": c, "probability": p} for c, p in self.top],
            "error": self.error,
        }


def predict(
    run: RunLike | str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    top_k: int = 3,
    batch_size: int = 64,
    workers: int | None = None,
    engine: str = "auto",
) -> list[Prediction]:
    """Predict every image named by ``inputs`` (files, folders searched recursively, globs).

    Returns one :class:`Prediction` per file, in input order (folders and globs sorted), plus one
    error entry per input that matched nothing. ``top_k`` is clipped to the number of classes.
    ``workers``: decoding threads (default: up to 4, no more than the CPU cores).
    ``engine``: ``auto``, ``torch`` or ``onnx`` (see :mod:`cnnlab.inference.engine`).
    """
    from cnnlab.inference.engine import engine_for, parse_engine
    from cnnlab.inference.inputs import as_run

    choice = parse_engine(engine)
    run = as_run(run)  # a run folder path, as on the command line
    if isinstance(inputs, (str, os.PathLike)):  # one file, folder or glob
        inputs = [inputs]
    if top_k < 1:
        raise CnnlabError(f"--top-k must be at least 1; received {top_k}")
    if batch_size < 1:
        raise CnnlabError(f"--batch-size must be at least 1; received {batch_size}")
    entries = expand_inputs(inputs)
    results = [Prediction(source=src, error=err) for src, err in entries]
    pending = [i for i, (_, err) in enumerate(entries) if err is None]
    workers = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))
    forward = engine_for(run, choice, n_images=len(pending)) if pending else None
    for start in range(0, len(pending), batch_size):
        _predict_chunk(run, results, pending[start : start + batch_size], top_k, workers, forward)
    return results


def _predict_chunk(run: RunLike, results: list[Prediction], idxs: list[int], top_k: int, workers: int,
                   forward: Any) -> None:
    """Load, preprocess and classify one batch of files, recording per-file errors in place.

    Files are decoded on a few threads (Pillow releases the GIL while decoding and resizing).
    """
    from cnnlab.data import load_image  # imported here, once, before any thread needs it

    shape = tuple(int(d) for d in run.input_shape)

    def load(i: int) -> tuple[np.ndarray | None, str | None]:
        return _load_one(load_image, results[i].source, shape, run.resize)

    if workers == 1 or len(idxs) == 1:
        decoded = [load(i) for i in idxs]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(idxs))) as pool:
            decoded = list(pool.map(load, idxs))
    images: list[np.ndarray] = []
    loaded: list[int] = []
    for i, (array, error) in zip(idxs, decoded, strict=True):
        if array is None:
            results[i].error = error
        else:
            images.append(array)
            loaded.append(i)
    if not images:
        return
    probs = classify(run, np.stack(images), batch_size=len(images), engine=forward)  # (B, K)
    classes = [str(c) for c in run.classes]
    k = min(top_k, len(classes))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (B, k) best first
    for row, i in enumerate(loaded):
        results[i].top = [(classes[c], float(probs[row, c])) for c in order[row]]


def _load_one(load_image: Any, path: str, shape: tuple[int, ...], resize: str) -> tuple[np.ndarray | None, str | None]:
    """``(uint8 (C, H, W), None)`` or ``(None, why it cannot be read)``; never raises for a bad file."""
    try:
        return load_image(path, (shape[0], shape[1], shape[2]), resize=resize), None
    except DataError as exc:
        return None, str(exc)
    except (OSError, ValueError) as exc:  # defensive: load_image should wrap these
        return None, f"cannot read {path}: {exc}"


def classify(run: RunLike, images: np.ndarray, batch_size: int = 256, *, engine: Any = "auto") -> np.ndarray:
    """Softmax probabilities float32 ``(N, K)`` for uint8 images ``(N, C, H, W)``.

    ``engine``: ``auto``, ``torch``, ``onnx`` (see :mod:`cnnlab.inference.engine`) or a ``Forward``
    it made. The model's train/eval mode is restored afterwards.
    """
    import torch

    from cnnlab.inference.engine import Forward, Output, engine_for

    expected = tuple(int(d) for d in run.input_shape)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise DataError(f"images of shape {tuple(images.shape)} do not match the run's input (N, {expected})")
    model = run.model
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        forward = engine if isinstance(engine, Forward) else engine_for(run, engine, n_images=len(images))
        out = forward.raw_batches(images, batch_size, Output.PROBS)  # [(B, K), ...] from the raw graph, or None
        if out is None:
            out = []
            with torch.inference_mode():
                for start in range(0, len(images), batch_size):
                    x = preprocess_batch(run, images[start : start + batch_size], device)  # (B, C, H, W)
                    logits = forward(x)  # (B, K) on the CPU
                    out.append(torch.softmax(logits, dim=1).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, len(run.classes)), np.float32)


def expand_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str | None]]:
    """Turn files, folders and globs into ``(path, error)`` pairs, duplicates removed.

    An explicitly named file is kept whatever its extension (reading it decides); folders and
    globs contribute only files with an image extension. An input that matches nothing yields
    one entry with an error that says why.
    """
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(path: str, error: str | None = None) -> None:
        if path not in seen:
            seen.add(path)
            out.append((path, error))

    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text)
        if path.is_dir():
            files = _images_under(path)
            if not files:
                add(text, f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {text}")
            for f in files:
                add(f)
        elif path.is_file():
            add(text)
        elif _GLOB_CHARS & set(text):
            matches = _glob_images(text)
            if not matches:
                add(text, f"no image files match the pattern {text!r}")
            for f in matches:
                add(f)
        else:
            add(text, _missing_message(path))
    return out


def _images_under(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(str(Path(root) / name))
    return found


def _glob_images(pattern: str) -> list[str]:
    out: list[str] = []
    for match in glob_no_links(pattern):
        p = Path(match)
        if p.is_dir():
            out.extend(_images_under(p))
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            out.append(match)
    return out


def glob_no_links(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, sorted, except that ``**`` never enters a symlinked folder.

    Python 3.11's glob follows symlinks under ``**``, so a folder holding a link to its parent
    makes it walk forever. Here the fixed leading folders are kept, the rest is walked with
    ``os.walk`` (which does not follow links) and each path is matched against the pattern.
    Hidden names are skipped, as glob does.
    """
    parts = pattern.replace(os.sep, "/").split("/")
    fixed = 0
    while fixed < len(parts) - 1 and not _GLOB_CHARS & set(parts[fixed]):
        fixed += 1
    root = "/".join(parts[:fixed]) or ("/" if pattern.startswith("/") else "")
    if parts[:fixed] == [""]:
        root = "/"
    rest = parts[fixed:]
    if "**" not in rest:  # no recursion: the standard glob cannot loop
        return sorted(glob.glob(pattern))
    regex = re.compile(_translate(rest))
    top = root or "."
    if not os.path.isdir(top):
        return []
    found: list[str] = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_folder = os.path.relpath(folder, top)
        rel_folder = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        real_dirs = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]  # a link may loop
        for name in [*real_dirs, *sorted(files)]:
            if not name.startswith(".") and regex.fullmatch(rel_folder + name):
                found.append(os.path.join(root, rel_folder + name) if root else rel_folder + name)
    return sorted(found)


def _translate(parts: list[str]) -> str:
    """A regex for the ``/``-separated pattern ``parts`` (``**`` = any folders, ``*`` = within a name)."""
    pieces = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            pieces.append(".*" if last else "(?:[^/]+/)*")
            continue
        text, j = "", 0
        while j < len(part):
            c = part[j]
            if c == "*":
                text += "[^/]*"
            elif c == "?":
                text += "[^/]"
            elif c == "[" and "]" in part[j + 2:]:
                end = part.index("]", j + 2)  # a "]" right after "[" (or "[!") is a literal member
                body = part[j + 1:end]
                body = "^" + body[1:] if body.startswith("!") else body
                text += "[" + body.replace("\\", "\\\\") + "]"
                j = end
            else:
                text += re.escape(c)
            j += 1
        pieces.append(text + ("" if last else "/"))
    return "".join(pieces)


def _missing_message(path: Path) -> str:
    parent = path.parent if str(path.parent) else Path(".")
    siblings: Sequence[str] = []
    if parent.is_dir():
        siblings = [p.name for p in parent.iterdir()]
    hint = did_you_mean(path.name, siblings)
    return f"no such file or folder: {path}{hint}"
