"""evaluate/predict on the command line choose their threads by the CPUs free now, as training does:
on 2 cores with one kept busy by another process they run one thread (two threads lose most of
their speed there, BENCHMARKS.md "Inference vs Keras (#15)"); OMP_NUM_THREADS still wins."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from tests._use_helpers import real_run

from cnnlab.utils import cpus
from cnnlab.utils.cpus import CpuInfo


@pytest.mark.parametrize("others, expected", [(1.0, 1), (0.0, 2)])
def test_evaluate_and_predict_pick_threads_from_the_free_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               others: float, expected: int) -> None:
    from cnnlab.cli import use_cmds

    real_run(tmp_path / "run", 3, 8, ["a", "b"], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpus, "read_cpus", lambda: CpuInfo(affinity=2, quota=None, others=others))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # neither answer: the handler must set it
        use_cmds._load(argparse.Namespace(run=str(tmp_path / "run"), checkpoint="best", device="cpu"))
        assert torch.get_num_threads() == expected
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        use_cmds._load(argparse.Namespace(run=str(tmp_path / "run"), checkpoint="best", device="cpu"))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)

