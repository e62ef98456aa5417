"""Checkpoints: weights and full training state round-trip exactly; pickles are refused; writes are atomic."""

from __future__ import annotations

import pickle

import pytest
import torch

from cnnlab.errors import RunError
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.state import capture_rng, restore_rng


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4 * 6 * 6, 3))


def _steps(model, opt, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(8, 1, 8, 8, generator=g)
        y = torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_weights_round_trip_bit_exact(tmp_path):
    model = _net()
    weights = ckpt.model_weights(model)
    ckpt.write_weights(tmp_path / "last", weights, {"epoch": 3, "metrics": {"val_acc": 0.5}})
    back, meta = ckpt.read_weights(tmp_path / "last")
    assert meta == {"epoch": 3, "metrics": {"val_acc": 0.5}}
    assert (tmp_path / "last.json").is_file()
    for name, tensor in model.state_dict().items():  # includes BatchNorm buffers (num_batches_tracked)
        assert torch.equal(back[name], tensor), name


@pytest.mark.parametrize("make", [
    lambda m, p: torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True),
    lambda m, p: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True),
])
def test_training_state_resumes_bit_exact(tmp_path, make):
    """Save after 3 steps, restore into fresh objects, 3 more steps == 6 uninterrupted steps."""
    ref = _net()
    ref_opt = make(ref, None)
    torch.manual_seed(5)
    _steps(ref, ref_opt, 6)

    model = _net()
    opt = make(model, None)
    torch.manual_seed(5)
    _steps(model, opt, 3)
    state = ckpt.TrainingState(ckpt.model_weights(model), opt.state_dict(), capture_rng(), {"position": {"step": 3}})
    ckpt.write_state(tmp_path / "resume.safetensors", state)
    torch.manual_seed(999)  # disturb the global generator: the checkpoint must restore it

    fresh = _net()
    fresh_opt = make(fresh, None)
    back = ckpt.read_state(tmp_path / "resume.safetensors")
    fresh.load_state_dict(back.weights)
    fresh_opt.load_state_dict(back.optimizer)
    restore_rng(back.rng)
    assert back.meta["position"] == {"step": 3}
    g = torch.Generator().manual_seed(1)  # the batches 4..6 of the reference run
    for _ in range(3):
        torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
    for _ in range(3):
        x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
        fresh_opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(fresh(x), y).backward()
        fresh_opt.step()
    for (name, a), b in zip(ref.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_pickled_files_are_refused(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "model.pt")
    with pytest.raises(RunError, match="pickled"):
        ckpt.refuse_pickle(tmp_path / "model.pt")
    disguised = tmp_path / "last.safetensors"  # a torch.save zip under a safetensors name
    torch.save(_net().state_dict(), disguised)
    with pytest.raises(RunError, match="refuses to load"):
        ckpt.read_weights(tmp_path / "last")
    plain = tmp_path / "best.safetensors"  # a bare pickle stream
    plain.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(RunError, match="pickled"):
        ckpt.read_weights(tmp_path / "best")


def test_damaged_and_missing_files_are_run_errors(tmp_path):
    (tmp_path / "last.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(RunError, match="damaged"):
        ckpt.read_weights(tmp_path / "last")
    with pytest.raises(RunError, match="missing"):
        ckpt.read_weights(tmp_path / "nothing")


def test_failed_write_keeps_the_old_checkpoint(tmp_path):
    ckpt.write_weights(tmp_path / "last", {"w": torch.ones(3)}, {"epoch": 1})
    with pytest.raises(ValueError):
        ckpt.write_weights(tmp_path / "last", {"w": "not a tensor"}, {"epoch": 2})  # type: ignore[dict-item]
    weights, meta = ckpt.read_weights(tmp_path / "last")
    assert meta["epoch"] == 1 and torch.equal(weights["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]  # no temp files left
