"""The one home of "what runs the model" for evaluate and predict: PyTorch or ONNX Runtime.

Engines (``--engine`` on ``cnnlab evaluate`` / ``cnnlab predict``, ``engine=`` in the Python API):

* ``torch``: the run's own ``nn.Module``, unchanged (the reference path).
* ``onnx``: the model exported to ONNX (``export_onnx``'s exporter) and run by onnxruntime on
  the CPU, with as many threads as PyTorch uses. Before it is used, its softmax probabilities are
  compared with PyTorch's on sample images; a difference above :data:`TOLERANCE` refuses it.
* ``auto`` (default): ``onnx`` when onnxruntime is installed, the model is on the CPU, there are
  at least :data:`AUTO_MIN_IMAGES` images (the export costs a fraction of a second) and the export
  passes the check; otherwise ``torch``.

Measured on keras-mnist and lenet5 (BENCHMARKS.md, "Inference vs Keras (#15)"): onnxruntime's
fused conv+ReLU in a blocked layout runs 2-7x faster than PyTorch's eager NCHW path on this CPU,
whose NCHW max-pool is slow and whose fresh, unfused activations at batch 1024 exceed glibc's
mmap threshold and are page-faulted anew every batch.

The session is built once per model and reused while the model's weights are unchanged (their
storage and in-place version counters are the cache key), so a second ``evaluate`` pays nothing.

>>> fwd = engine_for(run, "auto", n_images=10_000)     # doctest: +SKIP
>>> fwd.name, fwd(x).shape                              # doctest: +SKIP
('onnx', torch.Size([256, 10]))
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.inference.common import RunLike, preprocess_batch
from cnnlab.model import model_device

if TYPE_CHECKING:
    import torch

TOLERANCE = 1e-5  # largest allowed |p_onnx - p_torch| over the check images (softmax probabilities)
AUTO_MIN_IMAGES = 512  # below this, auto keeps PyTorch: exporting would cost more than it saves
CHECK_BATCHES = (1, 7)  # check images: random pixels, batch sizes 1 and an odd one


class Engine(str, Enum):
    AUTO = "auto"
    TORCH = "torch"
    ONNX = "onnx"


def parse_engine(value: Engine | str) -> Engine:
    """``Engine`` for ``value``, or a :class:`CnnlabError` naming the choices."""
    try:
        return Engine(value)
    except ValueError:
        choices = [e.value for e in Engine]
        raise CnnlabError(f"unknown engine {value!r}; use one of: {', '.join(choices)}"
                          f"{did_you_mean(str(value), choices)}") from None


@dataclass
class Forward:
    """A callable ``(B, C, H, W) float32 normalised -> (B, K) float32 logits on the CPU``."""

    name: str  # "torch" or "onnx": the engine actually used
    run_batch: Any
    notes: list[str] = field(default_factory=list)  # why auto fell back to torch, if it did

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_batch(x)


def engine_for(run: RunLike, engine: Engine | str = Engine.AUTO, *, n_images: int | None = None) -> Forward:
    """The :class:`Forward` that ``engine`` picks for ``run`` (see the module doc).

    ``n_images``: how many images will go through it (auto keeps torch below
    :data:`AUTO_MIN_IMAGES` unless a session is already built). Call it with the model in eval mode.
    """
    choice = parse_engine(engine)
    model = run.model
    if choice is Engine.TORCH:
        return _torch_forward(model)
    on_cpu = model_device(model).type == "cpu"
    if choice is Engine.ONNX:
        if not on_cpu:
            raise CnnlabError(f"--engine onnx runs on the CPU, but the run's model is on {model_device(model)}; "
                              "pass --device cpu, or use --engine torch")
        return _onnx_forward(run)
    if not on_cpu:
        return _torch_forward(model, f"the model is on {model_device(model)}; onnxruntime is used on the CPU only")
    if n_images is not None and n_images < AUTO_MIN_IMAGES and _cached(model) is None:
        return _torch_forward(model, f"{n_images} images: too few to repay the ONNX export")
    try:
        return _onnx_forward(run)
    except CnnlabError as exc:
        return _torch_forward(model, str(exc))


def _torch_forward(model: Any, note: str | None = None) -> Forward:
    def run_batch(x: torch.Tensor) -> torch.Tensor:
        return model(x).float().cpu()  # (B, K)

    return Forward("torch", run_batch, [note] if note else [])


# ---------------------------------------------------------------- onnxruntime


@dataclass
class _Session:
    key: tuple[Any, ...]
    session: Any


_SESSIONS: weakref.WeakKeyDictionary[Any, _Session] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _onnx_forward(run: RunLike) -> Forward:
    import torch

    model = run.model
    key = _cache_key(model, run)
    with _LOCK:
        cached = _SESSIONS.get(model)
        if cached is None or cached.key != key:
            cached = _Session(key, _build_session(run))
            _SESSIONS[model] = cached
    session = cached.session

    def run_batch(x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)  # (B, C, H, W)
        return torch.from_numpy(session.run(["logits"], {"input": array})[0])  # (B, K)

    return Forward("onnx", run_batch)


def _cached(model: Any) -> _Session | None:
    with _LOCK:
        return _SESSIONS.get(model)


def _cache_key(model: Any, run: RunLike) -> tuple[Any, ...]:
    """Changes when a weight or buffer is replaced or modified in place, or the thread count changes."""
    import torch

    tensors = tuple((name, t.data_ptr(), t._version) for name, t in model.state_dict(keep_vars=True).items())
    return (tensors, tuple(int(d) for d in run.input_shape), torch.get_num_threads())


def _build_session(run: RunLike) -> Any:
    """Export ``run.model`` (a CPU copy, eval mode), open an onnxruntime session and check it against PyTorch."""
    import torch

    from cnnlab.inference.export_onnx import legacy_onnx_bytes

    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise CnnlabError("the onnx engine needs onnxruntime, which is not installed; install the optional "
                          "extra (pip install 'cnnlab[onnx]') or use --engine torch") from exc
    model = copy.deepcopy(run.model).cpu().eval()
    with torch.inference_mode(False):  # tracing for export needs ordinary tensors
        example = preprocess_batch(run, _sample_images(2, run.input_shape, seed=0), "cpu")  # (2, C, H, W)
        try:
            graph = legacy_onnx_bytes(model, example)
        except Exception as exc:  # noqa: BLE001 - any exporter failure means "use torch"
            raise CnnlabError(f"the model does not export to ONNX ({type(exc).__name__}: {exc}); "
                              "use --engine torch") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    # idle workers sleep instead of spinning: under load spinning took CPU from the thread doing the work
    # (+15-30 % images/s at 2 threads, load 11; BENCHMARKS.md "Inference vs Keras (#15)")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a graph onnxruntime cannot load means "use torch"
        raise CnnlabError(f"onnxruntime cannot load the exported model ({exc}); use --engine torch") from exc
    names = [i.name for i in session.get_inputs()]
    if names != ["input"]:  # e.g. a forward that leaves torch, traced as a constant
        raise CnnlabError(f"the exported ONNX graph takes inputs {names}, not the image batch; its results "
                          "would differ from PyTorch's; use --engine torch")
    diff = _max_probability_diff(model, run, session)
    if not diff <= TOLERANCE:
        raise CnnlabError(f"onnxruntime's probabilities differ from PyTorch's by up to {diff:.3g} "
                          f"(allowed {TOLERANCE:g}); use --engine torch")
    return session


def _max_probability_diff(model: Any, run: RunLike, session: Any) -> float:
    import torch

    worst = 0.0
    for i, batch in enumerate(CHECK_BATCHES):
        x = preprocess_batch(run, _sample_images(batch, run.input_shape, seed=100 + i), "cpu")  # (B, C, H, W)
        with torch.inference_mode():
            expected = torch.softmax(model(x).float(), dim=1)  # (B, K)
        got = torch.softmax(torch.from_numpy(session.run(["logits"], {"input": x.numpy()})[0]), dim=1)
        if got.shape != expected.shape:
            raise CnnlabError(f"the ONNX model returns {tuple(got.shape)} where PyTorch returns "
                              f"{tuple(expected.shape)}; use --engine torch")
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def _sample_images(n: int, shape: Any, seed: int) -> np.ndarray:
    c, h, w = (int(d) for d in shape)
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)
