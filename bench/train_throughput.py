"""Training throughput: cnnlab's trainer vs an idiomatic hand-written PyTorch loop, same run, same net.

Both sides use the same configuration: channels-last model and batches, fused AdamW (the trainer's
CPU defaults); the loop keeps its pre-normalised float tensors and per-batch ``.item()`` reads.

The ``keras-mnist`` net, batch 128, AdamW, MNIST in memory, CPU. Rounds alternate
(loop, trainer, loop, trainer, ...) so that a change in machine load hits both sides; the figure is
the median of the per-round ratios trainer/loop (> 1: the trainer is faster). Two clocks: wall time,
and this process's CPU time (``time.process_time``), which a machine shared with other jobs inflates
far less (with one thread, CPU time is the work done). The trainer's CPU time covers the whole
``cnnlab.train`` call (setup, a 256-image validation, checkpoint writes): it is charged more than the
loop. A profile of the trainer's steps (``torch.profiler``) says where the time goes.

    CNNLAB_DATA=/work/shared/data nice .venv/bin/python bench/train_throughput.py
    ... --steps 150 --rounds 5 --threads 2

Writes ``bench/results/train_throughput_t<threads>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data import DataBundle, load_data
from cnnlab.model import build
from cnnlab.workflows import train

NET, BATCH = "keras-mnist", 128


def hand_written_loop(bundle: DataBundle, steps: int, seed: int = 0) -> tuple[float, float]:
    """The loop a PyTorch user writes: tensors in memory, AdamW, ``loss.item()`` per batch.

    Same configuration as the trainer on a CPU (issue #15: an earlier version compared an NCHW model
    and the default for-each AdamW against the trainer's channels-last model and fused AdamW): the
    model and each batch in channels-last memory format, fused AdamW with the trainer's weight decay.
    Returns images/s by wall time and by CPU time."""
    torch.manual_seed(seed)
    model = build(NET).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, fused=True)
    mean, std = bundle.mean[0], bundle.std[0]
    x_all = torch.from_numpy(bundle.train.images).float().div_(255).sub_(mean).div_(std)  # (N, 1, 28, 28)
    y_all = torch.from_numpy(bundle.train.labels)  # (N,)
    perm = torch.randperm(len(y_all))
    model.train()
    running_loss, correct = 0.0, 0
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        xb, yb = x_all[idx].contiguous(memory_format=torch.channels_last), y_all[idx]
        optimizer.zero_grad()
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        correct += (out.argmax(1) == yb).sum().item()
    return steps * BATCH / (time.perf_counter() - start), steps * BATCH / (time.process_time() - cpu)


def cnnlab_trainer(bundle: DataBundle, steps: int, folder: Path, threads: int, augment: bool) -> tuple[float, float]:
    """One epoch cut to ``steps`` steps through ``cnnlab.train``.

    Returns its own images/s (wall, validation excluded) and images/s by CPU time of the whole call."""
    cpu = time.process_time()
    run = train(NET, bundle, out=folder, epochs=1, max_steps_per_epoch=steps, batch_size=BATCH,
                threads=threads, augment=augment, quiet=True, report=False)
    cpu = time.process_time() - cpu
    assert run is not None
    return float(run.metrics[-1]["images_per_s"]), steps * BATCH / cpu


def profile_trainer(bundle: DataBundle, steps: int, folder: Path, threads: int) -> list[dict[str, object]]:
    """Top operators by self CPU time over a short trainer run."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        cnnlab_trainer(bundle, steps, folder, threads, augment=False)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return [{"op": e.key, "self_cpu_pct": round(100 * e.self_cpu_time_total / total, 1), "calls": e.count}
            for e in rows[:12]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_data("mnist", (1, 28, 28), val_split=0.1, seed=0, progress=False,
                       cache_dir=Path(tempfile.gettempdir()) / "cnnlab-bench-cache")
    bundle.val = bundle.val.subset(np.arange(256))  # validation is not what is measured here
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        hand_written_loop(bundle, 10)  # warm up both paths once
        for r in range(args.rounds):
            loop, loop_cpu = hand_written_loop(bundle, args.steps, seed=r)
            ours, ours_cpu = cnnlab_trainer(bundle, args.steps, Path(tmp) / f"r{r}", args.threads, augment=False)
            aug, aug_cpu = cnnlab_trainer(bundle, args.steps, Path(tmp) / f"a{r}", args.threads, augment=True)
            rows.append({"loop": loop, "loop_cpu": loop_cpu, "trainer": ours, "trainer_cpu": ours_cpu,
                         "trainer_aug": aug, "trainer_aug_cpu": aug_cpu,
                         "ratio_wall": ours / loop, "ratio_cpu": ours_cpu / loop_cpu})
            print(f"round {r + 1}: wall img/s loop {loop:,.0f} trainer {ours:,.0f} (augmented {aug:,.0f}) "
                  f"ratio {ours / loop:.2f} | CPU-time img/s loop {loop_cpu:,.0f} trainer {ours_cpu:,.0f} "
                  f"(augmented {aug_cpu:,.0f}) ratio {ours_cpu / loop_cpu:.2f}", flush=True)
        top = [] if args.no_profile else profile_trainer(bundle, 40, Path(tmp) / "prof", args.threads)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    result = {
        "net": NET, "batch": BATCH, "threads": args.threads, "steps_per_round": args.steps, "rounds": rows,
        "median": med, "load_avg_1min_at_end": os.getloadavg()[0], "profile_top_ops": top,
    }
    print(f"median ratio trainer/loop: wall {med['ratio_wall']:.2f}, CPU time {med['ratio_cpu']:.2f} "
          f"(CPU-time img/s: loop {med['loop_cpu']:,.0f}, trainer {med['trainer_cpu']:,.0f}, "
          f"augmented {med['trainer_aug_cpu']:,.0f})")
    for row in top:
        print(f"  {row['self_cpu_pct']:5.1f}%  {row['op']}  ({row['calls']} calls)")
    out = Path(__file__).parent / "results" / f"train_throughput_t{args.threads}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
