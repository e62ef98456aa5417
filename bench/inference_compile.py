"""``torch.compile`` as an inference engine candidate: compile time and images/s (keras-mnist, channels-last).

    PYTHONPATH=src .venv/bin/python bench/inference_compile.py

One thread, 4,096 random inputs, batch 256 then 1024 (a recompile), best of 3 passes; prints the
largest |compiled - eager| logit difference and ``/proc/loadavg``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from cnnlab.model import build


def main() -> None:
    torch.set_num_threads(1)
    model = build("keras-mnist").eval().to(memory_format=torch.channels_last)
    ref = build("keras-mnist").eval()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(4096, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        t = time.perf_counter()
        compiled = torch.compile(model, dynamic=False)
        compiled(x[:256])
        print(f"compile + first call, batch 256: {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        compiled(x[:1024])
        print(f"recompile, batch 1024: {time.perf_counter() - t:.1f} s", flush=True)
        print(f"max |compiled - eager| logit: {(compiled(x[:256]) - ref(x[:256].contiguous())).abs().max().item():.2e}")
        for batch in (256, 1024):
            best = 0.0
            for _ in range(3):
                t = time.perf_counter()
                for s in range(0, len(x), batch):
                    compiled(x[s:s + batch])
                best = max(best, len(x) / (time.perf_counter() - t))
            print(f"compiled channels-last, batch {batch}: {best:,.0f} img/s", flush=True)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
