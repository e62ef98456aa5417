"""How much an AdamW training step adds on top of the weights (calibrates ``train.limits.STEP_TEMPORARIES``).

Run:  .venv/bin/python bench/hostile_adamw_peak.py 60000 0     # hidden units, foreach (0/1)
One dense layer 784 -> N -> 10 on the CPU; prints the peak-RSS growth after the model is built, in
units of the weights' bytes. Gradients and the two AdamW moments account for 3x; the rest is the
optimizer step's temporaries. Measured (N = 60000, 47 M parameters): 5.46x (foreach off, the CPU
default), 4.49x (foreach on).
"""

import resource
import sys

import torch

torch.set_num_threads(1)
n = int(sys.argv[1])
foreach = sys.argv[2] == "1"
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, n), torch.nn.Linear(n, 10))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, after the weights exist
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=foreach)
x = torch.randn(8, 1, 28, 28)  # (B, C, H, W)
y = torch.randint(0, 10, (8,))
for _ in range(2):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
weights = sum(p.numel() for p in model.parameters()) * 4
print(f"weights {weights / 2**20:.0f} MiB, growth after the model {(peak - base) / 1024:.0f} MiB "
      f"= {(peak - base) * 1024 / weights:.2f}x the weights (gradients + AdamW moments = 3x)")
