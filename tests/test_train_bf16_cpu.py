"""--precision bf16 on a CPU without bf16 kernels: a warning that says so (train/state.bf16_is_slow).

Whether this machine's CPU has them is decided by oneDNN; the probe is replaced here so that both
answers are exercised on any machine.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.train import state
from cnnlab.train.api import fit
from cnnlab.train.config import Precision
from test_train_loop import OPTS, SPEC, bundle

CPU = torch.device("cpu")


@pytest.mark.parametrize("supported", [False, True])
def test_bf16_is_slow_follows_the_onednn_probe_and_only_for_bf16_on_cpu(monkeypatch, supported: bool) -> None:
    monkeypatch.setattr(state, "_mkldnn_bf16", lambda: supported)
    assert state.bf16_is_slow(Precision.BF16, CPU) is (not supported)
    assert state.bf16_is_slow(Precision.FP32, CPU) is False
    assert state.bf16_is_slow(Precision.BF16, torch.device("cuda")) is False


@pytest.mark.parametrize(("supported", "lang"), [(False, "en"), (False, "pt"), (True, "en")])
def test_a_bf16_run_warns_on_stderr_exactly_when_the_cpu_lacks_bf16(monkeypatch, capsys, tmp_path,
                                                                     supported: bool, lang: str) -> None:
    monkeypatch.setattr(state, "_mkldnn_bf16", lambda: supported)
    opts = {k: v for k, v in OPTS.items() if k != "report"}
    fit(SPEC, bundle(), out=tmp_path / "run", epochs=1, precision="bf16", device="cpu", lang=lang, **opts)
    err = capsys.readouterr().err
    word = {"en": "--precision fp32 on this machine", "pt": "--precision fp32 nesta máquina"}[lang]
    assert (word in err) is (not supported)
