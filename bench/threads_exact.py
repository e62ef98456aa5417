"""Are 1 and 2 intra-op threads bit-identical for the training ops cnnlab uses? (issue #15, thread choice)

Three AdamW steps of a keras-mnist-shaped net (conv, batchnorm, relu, max-pool, dropout, linear) from the
same seed and batch, with 1 and then 2 torch threads, NCHW and channels-last. If the weights differ, the
thread count must not change during a run (and an exact resume must reuse it), which is why
``cnnlab.utils.cpus`` chooses once, at start.

    PYTHONPATH=src .venv/bin/python bench/threads_exact.py
"""

from __future__ import annotations

import torch
from torch import nn


def train_steps(threads: int, channels_last: bool) -> list[torch.Tensor]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * 12 * 12, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    x = torch.randn(128, 1, 28, 28)  # (B, C, H, W)
    y = torch.randint(0, 10, (128,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def main() -> None:
    for channels_last in (False, True):
        one, two = train_steps(1, channels_last), train_steps(2, channels_last)
        same = all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
        diff = max((a - b).abs().max().item() for a, b in zip(one, two, strict=True))
        print(f"{'channels-last' if channels_last else 'NCHW'}: 1 vs 2 threads bit-identical: {same}; "
              f"largest |difference| after 3 steps {diff:.2e}")


if __name__ == "__main__":
    main()
