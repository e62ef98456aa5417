"""Checkpoints: safetensors for tensors, JSON for everything else, written atomically; pickles refused.

A run keeps, in ``RUN/checkpoints/``:

- ``last.safetensors`` + ``last.json`` and ``best.safetensors`` + ``best.json``: the model's weights
  (plain ``state_dict`` names, unwrapped from DDP/compile) and their metadata (epoch, step, metrics);
- ``resume.safetensors``: everything ``--resume`` needs in ONE file, so it is always self-consistent
  (weights under ``model.``, optimizer tensors under ``optim.``, RNG states under ``rng.``; the
  optimizer's non-tensor state, the loop position and the scaler state as JSON in the header).

Nothing here ever unpickles: files are read with ``safetensors`` and ``json`` only, and a file that
looks like a pickle or a ``torch.save`` zip is refused with a ``RunError``.

>>> import torch, tempfile, pathlib
>>> stem = pathlib.Path(tempfile.mkdtemp()) / "last"
>>> write_weights(stem, {"w": torch.ones(2)}, {"epoch": 1})
>>> w, meta = read_weights(stem)
>>> w["w"].tolist(), meta["epoch"]
([1.0, 1.0], 1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cnnlab.distributed import unwrap_model
from cnnlab.errors import RunError
from cnnlab.utils.io import atomic_path, atomic_write_text

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def model_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous, unshared copies of the unwrapped model's ``state_dict`` (safetensors needs that)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in unwrap_model(model).state_dict().items()}


def write_weights(stem: Path, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``stem.safetensors`` then ``stem.json``, each atomically."""
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(weights, str(tmp), metadata={"cnnlab": json.dumps(meta)})
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")


def read_weights(stem: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``stem.safetensors`` (and the metadata stored inside it); pickles are refused."""
    path = stem.with_suffix(".safetensors")
    tensors, meta = _read_safetensors(path)
    return tensors, meta


@dataclass
class TrainingState:
    """What ``--resume`` restores: weights, optimizer, RNG, and where the loop stood."""

    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


def write_state(path: Path, state: TrainingState) -> None:
    """One atomic safetensors file with every tensor and the JSON metadata in its header."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in state.weights.items()}
    opt_tensors, opt_json = _split_optimizer(state.optimizer)
    tensors.update(opt_tensors)
    tensors.update({f"rng.{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in state.rng.items()})
    meta = dict(state.meta, optimizer=opt_json)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"cnnlab": json.dumps(meta)})


def read_state(path: Path) -> TrainingState:
    tensors, meta = _read_safetensors(path)
    opt_json = meta.pop("optimizer", {"state": {}, "param_groups": []})
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    optim_tensors = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    return TrainingState(weights, _join_optimizer(optim_tensors, opt_json), rng, meta)


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimizer state tensor the memory format (strides) of its parameter.

    Checkpoints store tensors contiguous, and ``Optimizer.load_state_dict`` keeps that layout. Fused
    kernels (AdamW on CPU and CUDA) walk a parameter and its moments as flat memory, so a channels-last
    weight with contiguous moments pairs the wrong elements and the resumed run drifts. Call this
    right after ``load_state_dict``.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            entry = optimizer.state.get(param, {})
            for key, value in list(entry.items()):
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    like = torch.empty_like(param, dtype=value.dtype)  # same strides as the parameter
                    like.copy_(value)
                    entry[key] = like


def refuse_pickle(path: Path) -> None:
    """Raise ``RunError`` if ``path`` is a pickle or ``torch.save`` archive rather than safetensors."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError as exc:
        raise RunError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    # safetensors: 8-byte little-endian header length, then "{"; a length of 0x..80 starts with \x80
    safetensors = head[8:9] == b"{"
    if path.suffix.lower() in PICKLE_SUFFIXES or (not safetensors and (head[:1] == b"\x80" or head[:2] == b"PK")):
        raise RunError(
            f"{path} is a pickled file (torch.save/pickle); cnnlab refuses to load it because "
            "unpickling can run arbitrary code. Only .safetensors weights with JSON metadata are "
            "loaded; re-save the weights with safetensors.torch.save_file"
        )


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not path.is_file():
        raise RunError(f"checkpoint {path} is missing; the run may not have finished an epoch yet")
    refuse_pickle(path)
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunError(f"checkpoint {path} is damaged or not safetensors ({exc}); use another checkpoint") from None
    try:
        meta = json.loads(header.get("cnnlab", "{}"))
    except json.JSONDecodeError:
        meta = {}
    return tensors, meta


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer ``state_dict`` -> (tensors named ``optim.<param>.<key>``, JSON-safe rest)."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, entry in state.get("state", {}).items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"state": plain, "param_groups": state.get("param_groups", [])}


def _join_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in plain.get("state", {}).items()}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": plain.get("param_groups", [])}
