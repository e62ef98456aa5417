"""The inference engines (``cnnlab.inference.engine``): onnxruntime's results equal PyTorch's own
(probabilities within 1e-5, identical classes) on a net with several input channels, batch norm
with non-trivial statistics, odd and non-square spatial sizes and a batch size that does not divide
the data; auto's fallbacks; the session cache follows weight changes; the CLI flag."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _use_helpers import StandInRun, random_set, real_run, reference_input
from cnnlab.errors import CnnlabError
from cnnlab.inference import engine as eng
from cnnlab.inference.evaluation import evaluate
from cnnlab.inference.prediction import classify

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cnnlab[onnx]')")
pytest.importorskip("onnx", reason="the TorchScript ONNX exporter needs onnx (pip install 'cnnlab[onnx]')")

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 13, 11)  # several channels, odd, not square
MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)


_Run = StandInRun


def _bn_net(seed: int = 0) -> _Run:
    """Conv + BN + ReLU + pool, conv + BN + ReLU, dense: BN running statistics far from (0, 1)."""
    from cnnlab.model import build

    spec = {"name": "bn-net", "input": list(SHAPE), "layers": [
        {"conv": {"filters": 8, "kernel": 3, "padding": 1, "activation": "none"}}, "batchnorm", {"activation": "relu"},
        {"pool": 2}, {"conv": {"filters": 6, "kernel": 3, "activation": "none"}}, "batchnorm",
        {"activation": "relu"}, "flatten", {"dense": 12}, {"output": 5}]}
    torch.manual_seed(seed)
    model = build(spec)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    model.train()  # the engines must use eval-mode BN (running statistics), as the reference does
    return _Run(model, list("abcde"), MEAN, STD, SHAPE)


def _reference_probabilities(run: _Run, images: np.ndarray) -> np.ndarray:
    """Plain PyTorch, written out here: eval mode, hand-written normalisation, softmax."""
    was = run.model.training
    run.model.eval()
    with torch.no_grad():
        out = torch.softmax(run.model(reference_input(images, run.mean, run.std)), dim=1).numpy()
    run.model.train(was)
    return out


def test_onnx_classify_equals_pytorch_reference() -> None:
    run = _bn_net()
    images = random_set(61, SHAPE, run.classes, seed=3).images
    ref = _reference_probabilities(run, images)
    got = classify(run, images, batch_size=7, engine="onnx")  # 61 = 8 x 7 + 5
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert run.model.training  # mode restored


def test_evaluate_accuracy_is_identical_across_engines(tmp_path: Path) -> None:
    classes = ["a", "b", "c"]
    data = random_set(eng.AUTO_MIN_IMAGES + 37, (3, 9, 9), classes, seed=4)
    run = real_run(tmp_path / "run", 3, 9, classes, MEAN, STD)  # a run folder read back by load_run
    results = {e: evaluate(run, data, batch_size=100, engine=e) for e in ("torch", "onnx", "auto")}
    assert [r.engine for r in results.values()] == ["torch", "onnx", "onnx"]  # auto picks onnx here
    base = results["torch"]
    for r in results.values():
        assert r.accuracy == base.accuracy
        assert (r.predictions == base.predictions).all()
        assert (r.confusion == base.confusion).all() and r.top_k == base.top_k
        np.testing.assert_allclose(r.probabilities, base.probabilities, rtol=0, atol=1e-5)
        np.testing.assert_allclose(r.losses, base.losses, rtol=1e-4, atol=1e-5)


def test_session_follows_weight_changes() -> None:
    run = _bn_net(seed=1)
    images = random_set(20, SHAPE, run.classes, seed=5).images
    before = classify(run, images, engine="onnx")
    with torch.no_grad():
        run.model.layers[-1].linear.bias.add_(torch.tensor([3.0, 0, 0, 0, -3.0]))  # in place: same storage
    after = classify(run, images, engine="onnx")
    ref = _reference_probabilities(run, images)
    assert np.abs(after - before).max() > 0.05  # the change shows (a stale session would not)
    np.testing.assert_allclose(after, ref, rtol=0, atol=1e-5)


def test_auto_keeps_torch_for_few_images_and_on_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _bn_net(seed=2)
    assert eng.engine_for(run, "auto", n_images=eng.AUTO_MIN_IMAGES - 1).name == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    fallback = eng.engine_for(run, "auto", n_images=10_000)
    assert fallback.name == "torch" and "onnxruntime" in fallback.notes[0]
    with pytest.raises(CnnlabError, match="onnxruntime"):
        eng.engine_for(run, "onnx")


class _Untraceable(torch.nn.Module):
    """Leaves the graph through numpy: tracing records the example's output as a constant, so the
    exported graph ignores its input. Only the parity check can notice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 13 * 11, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(x.detach().numpy().copy())  # (B, C, H, W), outside autograd and tracing
        return self.fc(y.flatten(1))  # (B, 5)


def test_a_wrong_export_is_refused_by_the_parity_check() -> None:
    torch.manual_seed(0)
    run = _Run(_Untraceable(), list("abcde"), MEAN, STD, SHAPE)
    fallback = eng.engine_for(run, "auto", n_images=10_000)
    assert fallback.name == "torch" and "differ" in fallback.notes[0]
    with pytest.raises(CnnlabError, match="differ from PyTorch's; use --engine torch"):
        eng.engine_for(run, "onnx")
    images = random_set(9, SHAPE, run.classes, seed=6).images
    np.testing.assert_allclose(classify(run, images, engine="auto"), _reference_probabilities(run, images),
                               rtol=0, atol=1e-6)


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(CnnlabError, match="use one of: auto, torch, onnx.*did you mean 'onnx'"):
        eng.parse_engine("onxx")


def test_cli_engines_report_the_same_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main

    classes = ["a", "b"]
    real_run(tmp_path / "run", 1, 8, classes, (0.5,), (0.25,))
    folder = tmp_path / "images"
    data = random_set(30, (1, 8, 8), classes, seed=7)
    from PIL import Image

    for i, (img, y) in enumerate(zip(data.images, data.labels, strict=True)):
        (folder / classes[y]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0]).save(folder / classes[y] / f"{i}.png")
    outs = {}
    for e in ("torch", "onnx"):
        code = main(["evaluate", str(tmp_path / "run"), "--data", str(folder), "--engine", e,
                     "--format", "json", "--device", "cpu"])
        assert code == 0
        outs[e] = json.loads(capsys.readouterr().out)
    assert outs["torch"]["accuracy"] == outs["onnx"]["accuracy"] and outs["torch"]["n"] == 30
    assert outs["torch"]["confusion"] == outs["onnx"]["confusion"]
    code = main(["predict", str(tmp_path / "run"), str(folder), "--engine", "onnx", "--format", "json",
                 "--device", "cpu"])
    preds = json.loads(capsys.readouterr().out)
    assert code == 0 and len(preds) == 30
