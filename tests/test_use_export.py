"""export: the ONNX file agrees with PyTorch (checked here independently with onnxruntime), has a
dynamic batch axis and the run's metadata, is written atomically, and a missing extra is explained."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from _use_helpers import real_run
from cnnlab.errors import CnnlabError

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cnnlab[onnx]')")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'cnnlab[onnx]')")

from cnnlab.inference.export_onnx import export  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(tmp_path: Path) -> Any:
    """A real run folder (non-trivial BatchNorm statistics, so eval-mode export matters)."""
    return real_run(tmp_path, 3, 12, ["ant", "bee", "cat", "dog"], (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), seed=5)


@pytest.mark.parametrize(
    "exporter", ["legacy", pytest.param("dynamo", marks=pytest.mark.slow)]  # dynamo: 6-15 s of tracing
)
def test_onnx_matches_pytorch(tmp_path: Path, exporter: str) -> None:
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    run = _run(tmp_path)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    res = export(run, exporter=exporter)
    assert res.path == tmp_path / "model.onnx" and res.path.is_file()
    assert res.exporter == exporter and res.max_abs_diff <= 1e-4
    # independent check: fresh inputs, a batch size the exporter never saw
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    x = torch.randn(7, 3, 12, 12, generator=torch.Generator().manual_seed(9)) * 2
    with torch.no_grad():
        expected = run.model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == (7, 4)
    assert np.abs(got - expected).max() <= 1e-4
    meta = {p.key: p.value for p in onnx.load(str(res.path)).metadata_props}
    assert json.loads(meta["cnnlab.classes"]) == ["ant", "bee", "cat", "dog"]
    assert json.loads(meta["cnnlab.mean"]) == pytest.approx([0.5, 0.4, 0.3])
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())  # run untouched
    assert not run.model.training


def test_failed_check_writes_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(CnnlabError, match="nothing was written"):
        export(run, tmp_path / "out" / "m.onnx", exporter="legacy", tolerance=-1.0)  # impossible tolerance
    assert not (tmp_path / "out" / "m.onnx").exists()
    assert list((tmp_path / "out").glob("*")) == []  # no temporary file left behind


def test_missing_onnxruntime_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.inference import export_onnx as mod

    real = importlib.import_module

    def fake_import(name: str, *args: object) -> object:
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real(name, *args)

    monkeypatch.setattr(mod.importlib, "import_module", fake_import)
    with pytest.raises(CnnlabError, match=r"pip install 'cnnlab\[onnx\]'") as err:
        export(_run(tmp_path))
    assert "onnxruntime" in str(err.value)
    assert not (tmp_path / "model.onnx").exists()


def test_unknown_exporter_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(CnnlabError, match="did you mean 'legacy'"):
        export(_run(tmp_path), exporter="legasy")
