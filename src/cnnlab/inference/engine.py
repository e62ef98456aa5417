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

When the run's preprocessing is cnnlab's own normalisation (``Run.preprocess``, or a run-like
object without one), the exported graph takes the raw uint8 batch and holds the normalisation
(Cast, Mul, Sub) and the log-softmax and softmax (:meth:`Forward.raw_batch`): ``evaluate`` and
``classify`` then run no PyTorch operation per batch. That matters beside onnxruntime's threads:
each small multi-threaded PyTorch op (normalise, ``log_softmax``) woke PyTorch's own thread pool
between two session runs (keras-mnist at batch 256: 1.0 CPU s per 5,000 images with them, 0.43
without; BENCHMARKS.md, "Round 3 (infer3)"). A run with its own ``preprocess`` or non-uint8
images goes through a logits-only graph fed the preprocessed float batch, as before.

The sessions are built once per model and reused while the model's weights, the normalisation and
the thread count are unchanged (the weights' storage and in-place version counters are in the
cache key), so a second ``evaluate`` pays nothing.

>>> fwd = engine_for(run, "auto", n_images=10_000)     # doctest: +SKIP
>>> fwd.name, fwd(x).shape                              # doctest: +SKIP
('onnx', torch.Size([256, 10]))
>>> fwd.raw_batch(images_uint8, Output.LOG_PROBS).shape  # doctest: +SKIP
(256, 10)
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


class Output(str, Enum):
    """What :meth:`Forward.raw_batches` returns per image: log-softmax (evaluate) or softmax (classify)."""

    LOG_PROBS = "log_probs"
    PROBS = "probs"


RAW_INPUT = "images"  # the raw graph's input: uint8 (B, C, H, W), normalised inside the graph


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
    raw: Any = None  # onnx, normalisation in the graph: (uint8 (N, C, H, W), batch, Output) -> [(B, K), ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_batch(x)

    def raw_batches(self, images: np.ndarray, batch_size: int, what: Output) -> list[np.ndarray] | None:
        """``what`` (float32 ``(B, K)`` numpy, one array per batch of ``batch_size``, in order) for
        uint8 ``images`` ``(N, C, H, W)`` straight from the raw graph, preprocessing included;
        ``None`` when this engine has none (torch, a run with its own ``preprocess``) or the images
        are not uint8: then preprocess each batch and call the Forward. Batches run concurrently
        (see :func:`_raw_runner`); each is exactly ``batch_size`` images (the last may be fewer)."""
        if self.raw is None or getattr(images, "dtype", None) != np.uint8:
            return None
        return self.raw(images, max(1, int(batch_size)), Output(what))


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
class _Sessions:
    key: tuple[Any, ...]
    graphs: dict[bool, bytes] = field(default_factory=dict)  # raw? -> the exported graph
    built: dict[tuple[bool, int], Any] = field(default_factory=dict)  # (raw?, threads) -> checked session


_SESSIONS: weakref.WeakKeyDictionary[Any, _Sessions] = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()


def _onnx_forward(run: RunLike) -> Forward:
    import torch

    threads = max(1, torch.get_num_threads())
    if not folds_normalisation(run):
        return Forward("onnx", _logits_runner(_session(run, raw=False, threads=threads)))
    # checked here, so that auto can still fall back to torch: one session running a batch on all the
    # threads, one running a batch on one thread, several batches at a time
    parallel = _session(run, raw=True, threads=threads)
    single = _session(run, raw=True, threads=1) if threads > 1 else parallel

    def run_batch(x: torch.Tensor) -> torch.Tensor:  # a float caller: the logits graph, built on first use
        return _logits_runner(_session(run, raw=False, threads=max(1, torch.get_num_threads())))(x)

    return Forward("onnx", run_batch, raw=_raw_runner(parallel, single, threads))


def _raw_runner(parallel: Any, single: Any, threads: int) -> Any:
    """``(images, batch_size, what) -> [(B, K), ...]``. One batch: ``parallel`` (intra-op threads).
    Several: up to ``threads`` batches at once on ``single`` (one thread each; onnxruntime's ``run``
    is thread-safe and releases the GIL). Batches in parallel need no barrier per operator, which
    intra-op threads wait at ~12 times per keras-mnist batch: +19-23 % images/s in a one-off at load
    5, no difference where the process got a quarter of a core (BENCHMARKS.md, "Round 3 (infer3)";
    to be confirmed quiet). Each image's result is the same either way (tested)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(session: Any, images: np.ndarray, what: Output) -> np.ndarray:
        return session.run([what.value], {RAW_INPUT: np.ascontiguousarray(images)})[0]  # (B, K) float32

    def run_raw(images: np.ndarray, batch_size: int, what: Output) -> list[np.ndarray]:
        starts = range(0, len(images), batch_size)
        if threads < 2 or len(starts) < 2:
            return [one(parallel, images[s : s + batch_size], what) for s in starts]
        with ThreadPoolExecutor(min(threads, len(starts)), thread_name_prefix="cnnlab-onnx") as pool:
            return list(pool.map(lambda s: one(single, images[s : s + batch_size], what), starts))

    return run_raw


def _logits_runner(session: Any) -> Any:
    import torch

    def run_batch(x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)  # (B, C, H, W)
        return torch.from_numpy(session.run(["logits"], {"input": array})[0])  # (B, K)

    return run_batch


def folds_normalisation(run: RunLike) -> bool:
    """True when ``run``'s preprocessing is cnnlab's ``normalise(images, run.mean, run.std)``: the
    run has no ``preprocess`` of its own, or it is ``Run.preprocess``. Then the raw graph may hold it."""
    preprocess = getattr(run, "preprocess", None)
    if preprocess is None:
        return True
    from cnnlab.train.run import Run

    return getattr(preprocess, "__func__", None) is Run.preprocess


def _session(run: RunLike, *, raw: bool, threads: int) -> Any:
    """The checked session (raw graph or logits graph, ``threads`` intra-op threads) for ``run``'s
    model, built when missing or stale; the graph is exported once for both thread counts."""
    model = run.model
    key = _cache_key(model, run)
    with _LOCK:
        cached = _SESSIONS.get(model)
        if cached is None or cached.key != key:
            cached = _Sessions(key)
            _SESSIONS[model] = cached
        if (raw, threads) not in cached.built:
            if raw not in cached.graphs:
                cached.graphs[raw] = _export(run, raw=raw)
            cached.built[raw, threads] = _checked_session(run, cached.graphs[raw], raw=raw, threads=threads)
        return cached.built[raw, threads]


def _cached(model: Any) -> _Sessions | None:
    with _LOCK:
        return _SESSIONS.get(model)


def _cache_key(model: Any, run: RunLike) -> tuple[Any, ...]:
    """Changes when a weight or buffer is replaced or modified in place, or the normalisation (folded
    into the raw graph), the input shape or the thread count changes."""
    import torch

    tensors = tuple((name, t.data_ptr(), t._version) for name, t in model.state_dict(keep_vars=True).items())
    norm = (tuple(float(v) for v in run.mean), tuple(float(v) for v in run.std), folds_normalisation(run))
    return (tensors, norm, tuple(int(d) for d in run.input_shape), torch.get_num_threads())


def _raw_module(model: Any, run: RunLike) -> Any:
    """``model`` behind cnnlab's normalisation and the two softmaxes: uint8 ``(B, C, H, W)`` ->
    (log-softmax, softmax) ``(B, K)``; the same float32 arithmetic as ``normalise``."""
    import torch

    from cnnlab.data.normalise import scale_shift

    scale, shift = scale_shift(run.mean, run.std, int(run.input_shape[0]))  # (1, C, 1, 1) each

    class RawInput(torch.nn.Module):
        scale: torch.Tensor  # (1, C, 1, 1) buffers, exported as graph constants
        shift: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("scale", torch.from_numpy(scale))
            self.register_buffer("shift", torch.from_numpy(shift))

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = images.to(torch.float32) * self.scale - self.shift  # (B, C, H, W), as normalise()
            logits = self.model(x)  # (B, K)
            return torch.log_softmax(logits, dim=1), torch.softmax(logits, dim=1)

    return RawInput().eval()  # eval: the exporter restores the wrapper's mode onto the model after tracing


def _export(run: RunLike, *, raw: bool) -> bytes:
    """The ONNX graph of ``run.model`` (a CPU copy, eval mode; behind :func:`_raw_module` when ``raw``)."""
    import torch

    from cnnlab.inference.export_onnx import legacy_onnx_bytes

    _onnxruntime()  # say what to install before spending time on the export
    images = _sample_images(2, run.input_shape, seed=0)  # (2, C, H, W) uint8
    with torch.inference_mode(False):  # tracing for export needs ordinary tensors (also when built lazily)
        model = copy.deepcopy(run.model).cpu().eval()
        try:
            if raw:
                return legacy_onnx_bytes(_raw_module(model, run), torch.from_numpy(images), input_name=RAW_INPUT,
                                         output_names=tuple(o.value for o in Output))
            return legacy_onnx_bytes(model, preprocess_batch(run, images, "cpu"))
        except CnnlabError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exporter failure means "use torch"
            raise CnnlabError(f"the model does not export to ONNX ({type(exc).__name__}: {exc}); "
                              "use --engine torch") from exc


def _onnxruntime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise CnnlabError("the onnx engine needs onnxruntime, which is not installed; install the optional "
                          "extra (pip install 'cnnlab[onnx]') or use --engine torch") from exc
    return ort


def _checked_session(run: RunLike, graph: bytes, *, raw: bool, threads: int) -> Any:
    """An onnxruntime session of ``graph``, refused unless it matches PyTorch with the run's own preprocessing."""
    import torch

    session = _open_session(_onnxruntime(), graph, threads)
    names = [i.name for i in session.get_inputs()]
    if names != [RAW_INPUT if raw else "input"]:  # e.g. a forward that leaves torch, traced as a constant
        raise CnnlabError(f"the exported ONNX graph takes inputs {names}, not the image batch; its results "
                          "would differ from PyTorch's; use --engine torch")
    with torch.inference_mode(False):
        model = copy.deepcopy(run.model).cpu().eval()
    diff = _max_probability_diff(model, run, session, raw)
    if not diff <= TOLERANCE:
        raise CnnlabError(f"onnxruntime's probabilities differ from PyTorch's by up to {diff:.3g} "
                          f"(allowed {TOLERANCE:g}); use --engine torch")
    return session


def _open_session(ort: Any, graph: bytes, threads: int) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # NCHWc conv, fusions
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    # idle workers sleep instead of spinning: under load spinning took CPU from the thread doing the work
    # (+15-30 % images/s at 2 threads, load 11; BENCHMARKS.md "Inference vs Keras (#15)")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a graph onnxruntime cannot load means "use torch"
        raise CnnlabError(f"onnxruntime cannot load the exported model ({exc}); use --engine torch") from exc


def _max_probability_diff(model: Any, run: RunLike, session: Any, raw: bool) -> float:
    import torch

    worst = 0.0
    for i, batch in enumerate(CHECK_BATCHES):
        images = _sample_images(batch, run.input_shape, seed=100 + i)  # (B, C, H, W) uint8
        x = preprocess_batch(run, images, "cpu")  # (B, C, H, W): the run's own preprocessing
        with torch.inference_mode():
            expected = torch.softmax(model(x).float(), dim=1)  # (B, K)
        if raw:
            log_probs, probs = session.run([o.value for o in Output], {RAW_INPUT: images})
            got = torch.from_numpy(probs)  # (B, K)
            if log_probs.shape == probs.shape:  # the log-softmax output must agree with the softmax one
                worst = max(worst, float(np.abs(np.exp(log_probs) - probs).max()))
        else:
            got = torch.softmax(torch.from_numpy(session.run(["logits"], {"input": x.numpy()})[0]), dim=1)
        if got.shape != expected.shape:
            raise CnnlabError(f"the ONNX model returns {tuple(got.shape)} where PyTorch returns "
                              f"{tuple(expected.shape)}; use --engine torch")
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def _sample_images(n: int, shape: Any, seed: int) -> np.ndarray:
    c, h, w = (int(d) for d in shape)
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)
