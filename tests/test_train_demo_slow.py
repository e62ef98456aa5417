"""``cnnlab demo`` end to end on the bundled sample: it must reach >= 97 % on the held-out digits."""

from __future__ import annotations

import pytest

from cnnlab.workflows.demo import run_demo

pytestmark = pytest.mark.slow


def test_demo_reaches_97_percent_on_held_out_digits(tmp_path, capsys):
    result = run_demo(out=tmp_path / "demo", quiet=True)
    out = capsys.readouterr().out
    assert result.accuracy >= 0.97
    # the explained summary was printed, and its total is what PyTorch counts in the trained model
    total = sum(p.numel() for p in result.run.model.parameters())
    assert f"{total:,}" in out and "(n·m·l+1)·k" in out
    assert "held-out accuracy" in out and str(tmp_path / "demo") in out
    assert (tmp_path / "demo" / "checkpoints" / "best.safetensors").is_file()
    assert len(list((tmp_path / "demo" / "demo_digits").glob("*.png"))) == 8
