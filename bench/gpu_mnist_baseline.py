"""Tuned hand-written PyTorch MNIST loop: the baseline cnnlab's GPU recipe is timed against.

Everything a fast public MNIST/CIFAR trainer does, written out by hand with no cnnlab import:
the whole training set lives on the GPU as uint8, batches are gathered there, random translation
(+-2 px) is done there, bf16 autocast, channels-last, one-cycle SGD with Nesterov momentum,
batch 512. The net is ``bench/gpu_mnist_fast.yaml`` built by hand (3 x conv-BN-ReLU-pool, dense).

Time to accuracy: training seconds (GPU-synchronised, test evaluation excluded) summed until the
end of the first epoch whose full 10k test accuracy reaches the target; if the schedule of the
first length in ``--epochs`` never reaches it, the next length is tried.

    python bench/gpu_mnist_baseline.py                      # on a CUDA machine (bench/gpu_run.sh)
    python bench/gpu_mnist_baseline.py --smoke              # CPU check of the code path only
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import torch.nn.functional as F
from gpu_common import (
    MNIST_MEAN,
    MNIST_STD,
    device_facts,
    first_reaching,
    load_mnist,
    now,
    pick_device,
    write_result,
)
from torch import nn

TARGET = 0.995


def make_net() -> nn.Module:
    """bench/gpu_mnist_fast.yaml by hand: (B,1,28,28) -> (B,10)."""
    def stage(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*stage(1, 32), *stage(32, 64), *stage(64, 128),  # (B, 128, 3, 3)
                         nn.Flatten(), nn.Linear(128 * 3 * 3, 10))  # (B, 10)


def translate(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x`` (B, H, W) uint8 by its own random (dy, dx) in [-pixels, pixels]."""
    b, h, w = x.shape
    padded = F.pad(x, (pixels, pixels, pixels, pixels))  # (B, H+2p, W+2p)
    shift = torch.randint(0, 2 * pixels + 1, (2, b, 1), device=x.device, generator=gen)  # (2, B, 1)
    rows = shift[0] + torch.arange(h, device=x.device)  # (B, H)
    cols = shift[1] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]  # (B, 1, 1)
    return padded[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W)


def to_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W) -> normalised float (B, 1, H, W), channels-last."""
    x = (x.float() * (1.0 / (255.0 * MNIST_STD)) - MNIST_MEAN / MNIST_STD).unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def test_accuracy(net: nn.Module, xte: torch.Tensor, yte: torch.Tensor, dtype: torch.dtype | None) -> float:
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=xte.device)
    for i in range(0, len(xte), 2000):
        with torch.autocast(xte.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = net(to_input(xte[i:i + 2000]))  # (B, 10)
        correct += (logits.argmax(1) == yte[i:i + 2000]).sum()
    net.train()
    return correct.item() / len(xte)


def train(data: tuple[torch.Tensor, ...], epochs: int, args: argparse.Namespace, seed: int,
          max_steps: int | None = None) -> dict[str, Any]:
    """One run of ``epochs`` epochs; returns per-epoch test accuracy and training seconds."""
    xtr, ytr, xte, yte = data
    device = xtr.device
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    net = make_net().to(device).to(memory_format=torch.channels_last)
    decay = [p for p in net.parameters() if p.ndim > 1]
    rest = [p for p in net.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay}, {"params": rest, "weight_decay": 0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    steps = len(xtr) // args.batch_size if max_steps is None else max_steps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=epochs * steps,
                                                pct_start=args.warmup, cycle_momentum=False)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    accs, times = [], []
    for _ in range(epochs):
        start = now(device)
        perm = torch.randperm(len(xtr), device=device, generator=gen)
        for k in range(steps):
            idx = perm[k * args.batch_size:(k + 1) * args.batch_size]  # (B,)
            x = to_input(translate(xtr[idx], args.translate, gen))  # (B, 1, 28, 28)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(net(x).float(), ytr[idx], label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        times.append(now(device) - start)
        accs.append(test_accuracy(net, xte, yte, dtype))
    return {"epochs": epochs, "seed": seed, "test_acc": accs, "epoch_train_s": [round(t, 4) for t in times],
            "images_per_s": round(steps * args.batch_size * epochs / sum(times)),
            **first_reaching(accs, times, TARGET)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU check: 8 steps of batch 32, 500 test images")
    parser.add_argument("--epochs", default="8,10,12,16", help="schedule lengths to try, in order")
    parser.add_argument("--seeds", default="0,1", help="one run per seed (per schedule length)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.2, help="one-cycle peak learning rate")
    parser.add_argument("--warmup", type=float, default=0.25)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--translate", type=int, default=2)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    args = parser.parse_args()
    device = pick_device(args.smoke)
    torch.backends.cudnn.benchmark = True
    limits = (2048, 500) if args.smoke else (None, None)
    arrays = load_mnist(*limits)
    wall = time.perf_counter()
    data = tuple(torch.from_numpy(a.astype("int64") if a.ndim == 1 else a).to(device) for a in arrays)
    upload_s = now(device) - wall
    ladder = [1] if args.smoke else [int(e) for e in args.epochs.split(",")]
    if args.smoke:
        args.batch_size, args.seeds = 32, "0"
    max_steps = 8 if args.smoke else None
    train(data, 1, args, seed=123, max_steps=8 if args.smoke else 20)  # warm-up: cuDNN autotune, allocator
    name = "gpu_mnist_baseline" + ("_smoke" if args.smoke else "")
    history: list[dict[str, Any]] = []
    for epochs in ladder:
        runs: list[dict[str, Any]] = []
        for seed in map(int, args.seeds.split(",")):
            r = train(data, epochs, args, seed, max_steps)
            runs.append(r)
            history.append(r)
            print(f"baseline {epochs} epochs seed {r['seed']}: test acc {r['test_acc'][-1]:.4f}, "
                  f"reached {TARGET:.1%}: {r['reached']} (epoch {r['epoch']}, {r['train_s']} s of training), "
                  f"{r['images_per_s']} img/s", flush=True)
            result = {"name": "gpu_mnist_baseline", "smoke": args.smoke, "target": TARGET, "config": vars(args),
                      "facts": device_facts(device), "upload_s": round(upload_s, 4), "runs": runs,
                      "history": history}
            write_result(name, result)  # after every run: a time limit loses nothing finished
        if all(r["reached"] for r in runs):
            break
    print("wrote", name)

if __name__ == "__main__":
    main()
