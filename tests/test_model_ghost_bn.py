"""Ghost batch normalisation (``batchnorm: {ghost: N}``) against plain PyTorch BatchNorm applied to
each virtual batch in turn (Hoffer, Hubara & Soudry 2017), and the analysis that explains it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.analysis import analyze
from cnnlab.errors import SpecError
from cnnlab.model import build

SPEC = {"input": [3, 6, 6], "layers": [{"conv": {"filters": 4, "activation": "none"}},
                                       {"batchnorm": {"ghost": 8}}, "flatten", {"dense": 5},
                                       {"batchnorm": {"ghost": 8, "activation": "relu"}}, {"output": 2}]}


@pytest.mark.parametrize("dims, shape", [(2, (4, 5, 5)), (1, (6,))])
def test_ghost_bn_equals_batchnorm_on_each_virtual_batch(dims: int, shape: tuple[int, ...]) -> None:
    from cnnlab.model.layers import GhostBatchNorm

    torch.manual_seed(0)
    c = shape[0]
    ghost = GhostBatchNorm(c, 8, dims=dims).train()
    plain = (nn.BatchNorm2d(c) if dims == 2 else nn.BatchNorm1d(c)).train()
    with torch.no_grad():
        for p in (ghost.weight, ghost.bias):
            p.uniform_(0.5, 1.5)
    plain.load_state_dict(ghost.state_dict())  # same names, same values
    x = torch.randn(20, *shape) * 3 + 1  # 20 = 8 + 8 + 4: the last virtual batch is smaller
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = ghost(xa)
    yb = torch.cat([plain(part) for part in xb.split(8)])  # BN on each virtual batch, in turn
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    (ya * torch.arange(ya.numel()).view_as(ya)).sum().backward()
    (yb * torch.arange(yb.numel()).view_as(yb)).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(ghost, name), getattr(plain, name)), name
    assert int(ghost.num_batches_tracked) == 3  # one update per virtual batch
    # a whole-batch BN would differ: the test can tell the two apart
    whole = (nn.BatchNorm2d(c) if dims == 2 else nn.BatchNorm1d(c)).train()
    whole.load_state_dict(plain.state_dict())
    assert not torch.allclose(whole(x), ya)
    # 17 = 8 + 9: a lone last sample joins the virtual batch before it
    x17 = torch.randn(17, *shape)
    ghost.train(), plain.train()
    torch.testing.assert_close(ghost(x17), torch.cat([plain(x17[:8]), plain(x17[8:])]), rtol=0, atol=0)
    ghost.eval()
    plain.eval()
    torch.testing.assert_close(ghost(x), plain(x), rtol=0, atol=0)


def test_spec_builds_ghost_bn_with_batchnorm_counts_and_explains_it() -> None:
    a = analyze(SPEC)
    model = build(SPEC)
    assert sum(p.numel() for p in model.parameters()) == a.total_params
    assert [r.params for r in a.layers][1] == 2 * 4 and a.layers[1].buffers == 2 * 4 + 1
    assert "ghost 8" in a.layers[1].title and any("virtual batches of 8" in n for n in a.layers[1].notes)
    pt = analyze(SPEC, lang="pt")
    assert any("lotes virtuais de 8" in n for n in pt.layers[1].notes)
    out = model.train()(torch.randn(17, 3, 6, 6))
    assert out.shape == (17, 2)
    state = model.state_dict()  # checkpoints keep BatchNorm's names
    assert "layers.1.bn.running_mean" in state and "layers.1.bn.weight" in state


def test_bad_ghost_size_is_a_clear_error() -> None:
    bad = {"input": [1, 4, 4], "layers": [{"batchnorm": {"ghost": 0}}, "flatten", {"output": 2}]}
    with pytest.raises(SpecError, match="ghost"):
        analyze(bad)
