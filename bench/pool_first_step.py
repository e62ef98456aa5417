"""What running max-pool before ReLU saves (``cnnlab/model/pool_first.py``): one training step, both ways.

The trainer's step on keras-mnist (channels-last model and batch, fused AdamW, cross-entropy), batch
128, random data; the forward either layer by layer (ReLU, then max-pool: the path before the change)
or through ``CnnlabNet.forward`` (max-pool, then ReLU). Blocks of ``--steps`` steps alternate between the
two; the clock is this process's CPU time (``time.process_time``), which other jobs on a shared
machine inflate far less than the wall clock. Prints the median ms per step of each and their ratio.

    PYTHONPATH=src .venv/bin/python bench/pool_first_step.py --threads 1 --rounds 8
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from cnnlab.model import build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="keras-mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.net).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(128, *model.spec.input).contiguous(memory_format=torch.channels_last)  # (B, C, H, W)
    y = torch.randint(0, 10, (128,))

    def layer_by_layer(t: torch.Tensor) -> torch.Tensor:
        for layer in model.layers:
            t = layer(t)
        return t

    def step(forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        loss = F.cross_entropy(forward(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ways = {"relu_then_pool": layer_by_layer, "pool_then_relu": model}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for f in ways.values():
        step(f)
        step(f)
    for _ in range(args.rounds):
        for name, f in ways.items():
            t = time.process_time()
            for _ in range(args.steps):
                step(f)
            times[name].append((time.process_time() - t) / args.steps * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k}: median {med[k]:.1f} CPU ms/step (blocks: {', '.join(f'{t:.1f}' for t in v)})")
    print(f"SUMMARY {args.net}, {args.threads} thread(s): pool-then-ReLU takes "
          f"{med['pool_then_relu'] / med['relu_then_pool']:.2f}x the CPU time of ReLU-then-pool per step")


if __name__ == "__main__":
    main()
