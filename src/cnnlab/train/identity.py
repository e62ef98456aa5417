"""What a run IS, fixed when it is created, and the lock that makes one process its only writer.

``RUN/identity.json`` records the spec (hash), the data by content (a fingerprint over the decoded
pixels and labels of every image), the split (per-image hashes of train and val, kept in
``RUN/split.npz``), the classes, the normalisation, and the recipe (seed, batch size, schedule...).
``--resume`` compares against it and refuses any change; evaluation uses the split hashes to
recognise training images whatever path spelling they come from.

``RUN/train.lock`` is held with ``fcntl.flock`` by the process that trains: the OS releases it when
that process dies (even by SIGKILL). Readers (evaluate, predict, report) never take it.

>>> import numpy as np
>>> a = np.zeros((2, 1, 2, 2), np.uint8); a[1] += 1
>>> h = image_hashes(a)
>>> h.dtype, len(set(h.tolist()))
(dtype('uint64'), 2)
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import RunError
from cnnlab.utils.io import atomic_path, atomic_write_text

LOCK_NAME = "train.lock"
IDENTITY_NAME = "identity.json"
SPLIT_NAME = "split.npz"

# TrainConfig fields that make the run what it is: changing one at --resume is refused
RECIPE = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup",
          "label_smoothing", "augment", "translate", "hflip", "zoom", "rotate", "scale",
          "val_split", "resize", "seed", "precision",
          "channels_last", "sync_bn", "patience", "max_steps_per_epoch", "batch_schedule", "lr_steps", "lr_scaling",
          "lr_reference_batch")
# fields a resume may change; the result is then exact only if these match (said when resuming)
RUNTIME_EXACT = ("threads", "device", "compile")


class RunLocked(RunError):
    """Another process is training in this run folder."""


# ---------------------------------------------------------------- the lock


_HELD: dict[str, int] = {}  # resolved folder -> fd of the lock file this process holds


def acquire_lock(folder: Path) -> None:
    """Take ``folder/train.lock`` for this process (re-entrant); ``RunLocked`` names the holder."""
    key = str(folder.resolve())
    if key in _HELD:
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one writer is then the user's job
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder_text(fd)
        os.close(fd)
        raise RunLocked(
            f"{folder} is being trained by another process ({holder}); only one process may write a run "
            f"folder. Wait for it to finish (or stop it), or train into another folder with --out. "
            f"`cnnlab evaluate/predict/report {folder}` may still read it meanwhile") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "start": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    _HELD[key] = fd


def release_lock(folder: Path) -> None:
    """Let go of the lock (training and its report are done); the lock file itself stays."""
    fd = _HELD.pop(str(folder.resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock


def _holder_text(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['start']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its name"


# ---------------------------------------------------------------- content fingerprints


def image_hashes(images: np.ndarray) -> np.ndarray:
    """One 64-bit BLAKE2b hash per image of uint8 ``(N, C, H, W)``, over its decoded pixels (uint64 ``(N,)``).

    The same pixels give the same hash whatever file, path spelling or symlink they came from.
    """
    out = np.empty(len(images), np.uint64)
    for i in range(len(images)):
        block = np.ascontiguousarray(images[i])
        digest = hashlib.blake2b(block.tobytes(), digest_size=8, person=str(block.shape).encode()[:16])
        out[i] = int.from_bytes(digest.digest(), "little")
    return out


def fingerprint(hashes: np.ndarray, labels: np.ndarray | None, classes: list[str]) -> str:
    """Order-independent SHA-256 of the (image hash, label) pairs and the class names."""
    hashes = np.asarray(hashes, np.uint64)
    lab = np.zeros(len(hashes), np.int64) if labels is None else np.asarray(labels, np.int64)
    order = np.lexsort((lab, hashes))  # by hash, then label
    h = hashlib.sha256(json.dumps([str(c) for c in classes]).encode())
    h.update(hashes[order].astype("<u8").tobytes())
    h.update(lab[order].astype("<i8").tobytes())
    return h.hexdigest()


def spec_hash(spec_dict: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec_dict, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Identity:
    """The identity record (``identity.json``) plus the split hashes (``split.npz``)."""

    record: dict[str, Any]
    train: np.ndarray  # uint64 (N_train,)
    val: np.ndarray  # uint64 (N_val,)


def make_identity(spec_dict: dict[str, Any], config: dict[str, Any], bundle: Any) -> Identity:
    """The identity of a run about to be created from ``spec_dict``, resolved ``config`` and ``bundle``."""
    classes = [str(c) for c in bundle.classes]
    train, val = image_hashes(bundle.train.images), image_hashes(bundle.val.images)
    record = {
        "version": 1,
        "spec_sha256": spec_hash(spec_dict),
        "data": _data_fingerprint(bundle, train, val),
        "split": {"train": fingerprint(train, bundle.train.labels, classes),
                  "val": fingerprint(val, bundle.val.labels, classes),
                  "train_images": int(len(train)), "val_images": int(len(val))},
        "classes": classes,
        "normalisation": {"mean": [float(m) for m in bundle.mean], "std": [float(s) for s in bundle.std],
                          "input_shape": [int(v) for v in bundle.input_shape], "resize": str(bundle.resize)},
        "recipe": {k: config.get(k) for k in RECIPE},
    }
    return Identity(record, train, val)


def _data_fingerprint(bundle: Any, train: np.ndarray, val: np.ndarray) -> str:
    classes = [str(c) for c in bundle.classes]
    hashes, labels = [train, val], [bundle.train.labels, bundle.val.labels]
    if bundle.test is not None and len(bundle.test.labels):
        hashes.append(image_hashes(bundle.test.images))
        labels.append(bundle.test.labels)
    return fingerprint(np.concatenate(hashes), np.concatenate(labels).astype(np.int64), classes)


def write_identity(folder: Path, ident: Identity) -> None:
    with atomic_path(folder / SPLIT_NAME) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, train=ident.train, val=ident.val)
    atomic_write_text(folder / IDENTITY_NAME, json.dumps(ident.record, indent=1) + "\n")


def read_identity(folder: Path) -> Identity | None:
    """The recorded identity, or ``None`` for a run made before identities were recorded."""
    path = folder / IDENTITY_NAME
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        with np.load(folder / SPLIT_NAME, allow_pickle=False) as npz:
            train, val = np.asarray(npz["train"], np.uint64), np.asarray(npz["val"], np.uint64)
        if not isinstance(record, dict) or not {"data", "split", "recipe", "spec_sha256"} <= set(record):
            raise ValueError("keys are missing")
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} (or {folder / SPLIT_NAME}) is damaged ({exc}); it fixes what this run is, so "
                       "the run cannot be resumed or checked. Train a new run with another --out") from None
    return Identity(record, train, val)


# ---------------------------------------------------------------- comparing


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What ``current`` changes in ``recorded``, one phrase per difference (empty: same run)."""
    out: list[str] = []
    if recorded.get("spec_sha256") != current.get("spec_sha256"):
        out.append("the network spec")
    if recorded.get("data") != current.get("data"):
        out.append("the data (its images or labels differ by content)")
    elif recorded.get("split") != current.get("split"):
        out.append("the train/validation split")
    if recorded.get("classes") != current.get("classes"):
        out.append("the classes")
    if recorded.get("normalisation") != current.get("normalisation"):
        out.append("the normalisation (mean/std, input shape or resize)")
    old, new = recorded.get("recipe", {}), current.get("recipe", {})
    for key in RECIPE:
        if key in old and old.get(key) != new.get(key):
            out.append(f"--{key.replace('_', '-')} ({old.get(key)} -> {new.get(key)})")
    return out


def refuse_changes(folder: Path, changes: list[str]) -> None:
    if changes:
        raise RunError(
            f"cannot resume {folder}: this would change what the run is: {'; '.join(changes)}. --resume "
            f"continues a run exactly as it was created, so drop those options (plain `cnnlab train {folder} "
            "--resume`). To train longer or with other settings, start a new run folder from its weights "
            f"(`cnnlab train SPEC --data DATA --init-from {folder} --out NEW`; see README, 'Runs you can trust')")
