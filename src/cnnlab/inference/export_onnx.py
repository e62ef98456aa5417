"""Export a trained run to ONNX, checked against PyTorch with onnxruntime before it is written.

CLI: ``cnnlab export runs/lenet --format onnx`` writes ``runs/lenet/model.onnx``.

The ONNX graph takes the *normalised* float32 input ``(batch, C, H, W)`` named ``input`` (the
batch axis is dynamic) and returns ``logits`` ``(batch, K)``. The preprocessing and the class
names travel in the file's metadata (``cnnlab.classes``, ``cnnlab.mean``, ``cnnlab.std``,
``cnnlab.input_shape``, ``cnnlab.resize``, all JSON), so a consumer can reproduce
``(x/255 - mean)/std`` and name the classes.

Before anything is written, onnxruntime runs the exported graph on sample inputs (random images
passed through the run's preprocessing, at batch sizes 1 and 3) and the largest absolute
difference from PyTorch's logits must be at most ``tolerance`` (1e-4). The file is written
atomically: a reader sees no file or the complete, checked one.

Needs the optional extra: ``pip install cnnlab[onnx]`` (onnx, onnxruntime, onnxscript).

>>> from cnnlab.train import load_run                              # doctest: +SKIP
>>> res = export(load_run("runs/lenet"))                            # doctest: +SKIP
>>> res.path.name, res.max_abs_diff <= 1e-4                        # doctest: +SKIP
('model.onnx', True)
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.normalise import normalise
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.inference.common import RunLike, preprocess_batch
from cnnlab.utils.io import atomic_write_bytes

DEFAULT_OPSET = 18
DEFAULT_TOLERANCE = 1e-4
CHECK_BATCHES = (1, 3)


class ExportFormat(str, Enum):
    ONNX = "onnx"


class Exporter(str, Enum):
    """Which torch.onnx path builds the graph. ``auto``: dynamo (torch.export), else legacy."""

    AUTO = "auto"
    DYNAMO = "dynamo"
    LEGACY = "legacy"


@dataclass
class ExportResult:
    path: Path
    format: str
    exporter: str  # the path that produced the file: "dynamo" or "legacy"
    opset: int
    max_abs_diff: float  # largest |onnxruntime - PyTorch| over the check inputs (nan if unchecked)
    checked_batches: tuple[int, ...]
    size_bytes: int
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "exporter": self.exporter,
            "opset": self.opset,
            "max_abs_diff": None if np.isnan(self.max_abs_diff) else self.max_abs_diff,
            "checked_batches": list(self.checked_batches),
            "size_bytes": self.size_bytes,
            "notes": self.notes,
        }


def export(
    run: RunLike | str | Path,
    out: str | Path | None = None,
    *,
    format: str = "onnx",
    exporter: str = "auto",
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export ``run.model`` to ``out`` (default ``RUN/model.onnx``) and verify it; see module doc."""
    _parse(ExportFormat, format, "format")
    mode = _parse(Exporter, exporter, "exporter")
    onnx, ort = require_onnx()
    from cnnlab.inference.inputs import as_run

    run = as_run(run)  # a run folder path, as on the command line
    target = _target_path(run, out)
    model = copy.deepcopy(run.model).cpu().eval()  # the run's own model is left untouched
    c, h, w = (int(d) for d in run.input_shape)
    example = normalise(_sample_images(2, (c, h, w), seed=0), run.mean, run.std)  # (2, C, H, W)
    proto, used, notes = _to_proto(model, example, mode, opset)
    _add_metadata(proto, run)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    diff = float("nan")
    if check:
        diff = _parity(model, run, data, ort)
        if not diff <= tolerance:
            raise CnnlabError(
                f"the exported ONNX model differs from PyTorch by up to {diff:.3g} "
                f"(allowed {tolerance:g}); nothing was written to {target}. Try --exporter "
                f"{'legacy' if used == 'dynamo' else 'dynamo'} or another --opset"
            )
    atomic_write_bytes(target, data)
    return ExportResult(target, "onnx", used, opset, diff, CHECK_BATCHES if check else (), len(data), notes)


def require_onnx() -> tuple[Any, Any]:
    """Import onnx and onnxruntime, or say exactly what to install."""
    missing = []
    modules = []
    for name in ("onnx", "onnxruntime"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise CnnlabError(
            f"ONNX export needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            "not installed; install the optional extra: pip install 'cnnlab[onnx]'"
        )
    return modules[0], modules[1]


def legacy_onnx_bytes(model: Any, example: Any, opset: int = DEFAULT_OPSET, *, input_name: str = "input",
                      output_names: tuple[str, ...] = ("logits",)) -> bytes:
    """The unchecked ONNX graph of ``model`` (eval mode, CPU) traced on ``example`` by the TorchScript
    exporter, as bytes: input ``input`` ``(batch, C, H, W)``, output ``logits`` (other names for a
    model with other inputs or several outputs; every axis 0 is the dynamic batch). Needs neither the
    ``onnx`` package nor onnxscript (faster to import and to export than the dynamo path); the
    inference engine (``engine.py``) checks the result itself."""
    import torch

    buffer = io.BytesIO()
    with _quiet():
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, verbose=False, opset_version=opset,
            input_names=[input_name], output_names=list(output_names),
            dynamic_axes={name: {0: "batch"} for name in (input_name, *output_names)},
        )
    return buffer.getvalue()


def _to_proto(model: Any, example: Any, mode: Exporter, opset: int) -> tuple[Any, str, list[str]]:
    """Build the ONNX ModelProto with the chosen exporter (auto: dynamo, falling back to legacy)."""
    notes: list[str] = []
    if mode in (Exporter.AUTO, Exporter.DYNAMO):
        try:
            importlib.import_module("onnxscript")
            return _export_dynamo(model, example, opset), "dynamo", notes
        except ImportError as exc:
            if mode is Exporter.DYNAMO:
                raise CnnlabError(
                    "the dynamo ONNX exporter needs onnxscript; pip install 'cnnlab[onnx]'"
                ) from exc
            notes.append("onnxscript is not installed; used the legacy TorchScript exporter")
        except Exception as exc:  # the dynamo path still fails on some graphs; legacy may not
            if mode is Exporter.DYNAMO:
                raise CnnlabError(f"the dynamo ONNX exporter failed: {exc}; try --exporter legacy") from exc
            notes.append(f"the dynamo exporter failed ({type(exc).__name__}); used the legacy exporter")
    return _export_legacy(model, example, opset), "legacy", notes


def _export_dynamo(model: Any, example: Any, opset: int) -> Any:
    import torch

    with _quiet():
        program = torch.onnx.export(
            model, (example,), None, dynamo=True, verbose=False, opset_version=opset,
            input_names=["input"], output_names=["logits"], dynamic_shapes=({0: "batch"},),
            external_data=False,
        )
    if program is None:  # pragma: no cover - torch returns the program when f is None
        raise RuntimeError("torch.onnx.export returned no program")
    return program.model_proto


def _export_legacy(model: Any, example: Any, opset: int) -> Any:
    import tempfile

    import onnx
    import torch

    with tempfile.TemporaryDirectory(prefix="cnnlab-onnx-") as folder, _quiet():
        path = Path(folder) / "model.onnx"
        torch.onnx.export(
            model, (example,), path, dynamo=False, verbose=False, opset_version=opset,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
        return onnx.load(str(path))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.onnx's progress prints, deprecation warnings and log chatter."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _parity(model: Any, run: RunLike, data: bytes, ort: Any) -> float:
    """Largest |onnxruntime - PyTorch| over preprocessed random images at each check batch size."""
    import torch

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    c, h, w = (int(d) for d in run.input_shape)
    shape = (c, h, w)
    worst = 0.0
    for i, batch in enumerate(CHECK_BATCHES):
        x = preprocess_batch(run, _sample_images(batch, shape, seed=100 + i), "cpu")  # (B, C, H, W)
        with torch.inference_mode():
            expected = model(x).float().numpy()  # (B, K)
        got = session.run(["logits"], {"input": x.numpy()})[0]  # (B, K)
        if got.shape != expected.shape:
            raise CnnlabError(f"ONNX output shape {got.shape} differs from PyTorch's {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def _sample_images(n: int, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _add_metadata(proto: Any, run: RunLike) -> None:
    from cnnlab import __version__

    values = {
        "cnnlab.classes": [str(c) for c in run.classes],
        "cnnlab.mean": [float(v) for v in run.mean],
        "cnnlab.std": [float(v) for v in run.std],
        "cnnlab.input_shape": [int(d) for d in run.input_shape],
        "cnnlab.resize": str(getattr(run, "resize", "crop")),
        "cnnlab.preprocess": "x = (pixels / 255 - mean) / std, pixels uint8 (N, C, H, W)",
        "cnnlab.version": __version__,
    }
    for key, value in values.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value) if not isinstance(value, str) else value


def _target_path(run: RunLike, out: str | Path | None) -> Path:
    if out is not None:
        target = Path(out)
        if target.is_dir():
            target = target / "model.onnx"
        return target
    run_path = getattr(run, "path", None)
    if run_path is None:
        raise CnnlabError("export needs an output path (out=...) for a run without a folder")
    return Path(run_path) / "model.onnx"


def _parse(enum: type[Enum], value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        choices = [str(m.value) for m in enum]
        raise CnnlabError(
            f"unknown {what} {value!r}; use one of: {', '.join(choices)}{did_you_mean(str(value), choices)}"
        ) from None
