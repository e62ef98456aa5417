"""The onnx engine's raw graph (``cnnlab.inference.engine``: uint8 batch in, normalisation and
log-softmax / softmax inside onnxruntime): its results equal plain PyTorch's, written out here
(hand-written float64 normalisation, eval mode, ``log_softmax``/``softmax``), within 1e-5 with the
same classes, in the cases where folding the normalisation could go wrong: several channels with
per-channel mean/std, a last partial batch, a BatchNorm/dropout net left in training mode, a change
of the normalisation with unchanged weights (a stale session would keep the old one), a run with
its own ``preprocess`` (must not be folded) and non-uint8 images (must not go through the uint8 graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from _use_helpers import StandInRun, random_set, real_run, reference_input
from cnnlab.inference import engine as eng
from cnnlab.inference.evaluation import evaluate
from cnnlab.inference.prediction import classify

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cnnlab[onnx]')")
pytest.importorskip("onnx", reason="the TorchScript ONNX exporter needs onnx (pip install 'cnnlab[onnx]')")

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 11, 9)  # several channels, odd, not square
MEAN, STD = (0.45, 0.5, 0.55), (0.2, 0.3, 0.25)  # a different value per channel


_Run = StandInRun


@dataclass
class _OwnPreprocessRun(_Run):
    """A run-like object whose preprocessing is not ``normalise(x, mean, std)``: it must not be folded."""

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)).float().div(127.5).sub(1.0)  # (N, C, H, W) in [-1, 1]


def _net(seed: int = 0, run_type: type[_Run] = _Run) -> _Run:
    """Conv + BN + ReLU + pool + dropout + dense, BN statistics far from (0, 1), left in training mode."""
    from cnnlab.model import build

    spec = {"name": "raw-net", "input": list(SHAPE), "layers": [
        {"conv": {"filters": 6, "kernel": 3, "padding": 1, "activation": "none"}}, "batchnorm",
        {"activation": "relu"}, {"pool": 2}, {"dropout": 0.5}, "flatten", {"dense": 10}, {"output": 4}]}
    torch.manual_seed(seed)
    model = build(spec)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 3.0)
    model.train()  # the engine must trace eval mode (a train-mode trace fails the parity check)
    return run_type(model, list("abcd"), MEAN, STD, SHAPE)


def _reference_logits(run: _Run, x: torch.Tensor) -> torch.Tensor:
    was = run.model.training
    run.model.eval()
    with torch.no_grad():
        out = run.model(x)  # (N, K)
    run.model.train(was)
    return out


def _reference_log_probs(run: _Run, images: np.ndarray) -> np.ndarray:
    return torch.log_softmax(_reference_logits(run, reference_input(images, run.mean, run.std)), dim=1).numpy()


def test_raw_graph_is_used_and_evaluate_equals_pytorch() -> None:
    run = _net()
    data = random_set(53, SHAPE, run.classes, seed=1)  # 53 = 3 x 16 + 5: a last partial batch
    forward = eng.engine_for(run, "onnx")
    assert forward.raw is not None  # the fast path is the one under test
    ref = _reference_log_probs(run, data.images)
    res = evaluate(run, data, batch_size=16, engine="onnx")
    assert res.engine == "onnx"
    np.testing.assert_allclose(np.exp(ref), res.probabilities, rtol=0, atol=1e-5)
    labels = np.asarray(data.labels)
    np.testing.assert_allclose(res.losses, -ref[np.arange(len(labels)), labels], rtol=1e-5, atol=1e-5)
    assert (res.predictions == ref.argmax(1)).all()
    assert run.model.training  # mode restored


def test_raw_batch_outputs_equal_pytorch_on_one_partial_batch() -> None:
    run = _net(seed=3)
    images = random_set(5, SHAPE, run.classes, seed=2).images
    forward = eng.engine_for(run, "onnx")
    ref = _reference_log_probs(run, images)
    logp_batches = forward.raw_batches(images, 8, eng.Output.LOG_PROBS)  # one partial batch
    probs_batches = forward.raw_batches(images, 8, eng.Output.PROBS)
    assert logp_batches is not None and probs_batches is not None and len(logp_batches) == 1
    logp, probs = logp_batches[0], probs_batches[0]
    assert logp.shape == (5, 4) and logp.dtype == np.float32
    np.testing.assert_allclose(logp, ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(probs, np.exp(ref), rtol=0, atol=1e-5)
    np.testing.assert_allclose(classify(run, images, batch_size=2, engine=forward), np.exp(ref), rtol=0, atol=1e-5)


def test_a_new_normalisation_rebuilds_the_raw_graph() -> None:
    run = _net(seed=4)
    images = random_set(12, SHAPE, run.classes, seed=5).images
    before = classify(run, images, engine="onnx")
    run.mean, run.std = (0.1, 0.9, 0.3), (0.5, 0.1, 0.7)  # same weights, other statistics
    after = classify(run, images, engine="onnx")
    ref = np.exp(_reference_log_probs(run, images))
    assert np.abs(after - before).max() > 1e-3  # the change shows (a stale graph would not)
    np.testing.assert_allclose(after, ref, rtol=0, atol=1e-5)


def test_a_run_with_its_own_preprocess_is_not_folded() -> None:
    run = _net(seed=6, run_type=_OwnPreprocessRun)
    images = random_set(9, SHAPE, run.classes, seed=7).images
    forward = eng.engine_for(run, "onnx")
    assert forward.name == "onnx" and forward.raw is None
    x = torch.from_numpy(images).double().div(127.5).sub(1.0).float()  # the run's own formula, by hand
    ref = torch.softmax(_reference_logits(run, x), dim=1).numpy()
    np.testing.assert_allclose(classify(run, images, batch_size=4, engine="onnx"), ref, rtol=0, atol=1e-5)


def test_non_uint8_images_take_the_float_path() -> None:
    run = _net(seed=8)
    images = random_set(7, SHAPE, run.classes, seed=9).images
    forward = eng.engine_for(run, "onnx")
    as_float = images.astype(np.float32)  # pixel values 0..255 as float: normalise() accepts them
    assert forward.raw is not None and forward.raw_batches(as_float, 3, eng.Output.PROBS) is None
    got = classify(run, as_float, batch_size=3, engine=forward)
    np.testing.assert_allclose(got, np.exp(_reference_log_probs(run, images)), rtol=0, atol=1e-5)


def test_a_loaded_run_folder_is_folded_and_matches_torch(tmp_path: Path) -> None:
    classes = ["x", "y", "z"]
    run = real_run(tmp_path / "run", 3, 9, classes, MEAN, STD, seed=2)  # Run.preprocess, read back by load_run
    assert eng.folds_normalisation(run)
    data = random_set(eng.AUTO_MIN_IMAGES + 3, (3, 9, 9), classes, seed=10)
    torch_res = evaluate(run, data, batch_size=128, engine="torch")
    auto_res = evaluate(run, data, batch_size=128, engine="auto")
    assert auto_res.engine == "onnx" and eng.engine_for(run, "onnx").raw is not None
    assert (auto_res.predictions == torch_res.predictions).all() and auto_res.confusion.tolist() == torch_res.confusion.tolist()
    np.testing.assert_allclose(auto_res.probabilities, torch_res.probabilities, rtol=0, atol=1e-5)
    np.testing.assert_allclose(auto_res.losses, torch_res.losses, rtol=1e-5, atol=1e-5)


def test_batches_in_parallel_equal_pytorch_and_one_thread() -> None:
    """With 2 threads, several batches run at once on a one-thread session (and one batch on the
    two-thread session); every image's result must not depend on it."""
    run = _net(seed=11)
    images = random_set(45, SHAPE, run.classes, seed=12).images  # 45 = 4 x 10 + 5
    ref = _reference_log_probs(run, images)
    one = classify(run, images, batch_size=10, engine="onnx")  # the one_thread fixture: 1 thread
    torch.set_num_threads(2)  # the fixture puts the old count back
    forward = eng.engine_for(run, "onnx")
    batches = forward.raw_batches(images, 10, eng.Output.LOG_PROBS)
    assert batches is not None and [len(b) for b in batches] == [10, 10, 10, 10, 5]  # in order, as asked
    np.testing.assert_allclose(np.concatenate(batches), ref, rtol=0, atol=1e-5)
    two = classify(run, images, batch_size=10, engine=forward)
    whole = classify(run, images, batch_size=64, engine=forward)  # a single batch: the 2-thread session
    np.testing.assert_allclose(two, np.exp(ref), rtol=0, atol=1e-5)
    np.testing.assert_allclose(whole, np.exp(ref), rtol=0, atol=1e-5)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-6)
    assert (two.argmax(1) == ref.argmax(1)).all()
