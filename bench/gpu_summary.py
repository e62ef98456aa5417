"""Summarise the GPU run's result files as the Markdown that goes into BENCHMARKS.md.

Reads ``bench/results/gpu_*.json`` (``--smoke``: the ``*_smoke.json`` ones) and prints, and writes
to ``$OUT/summary.md`` when ``$OUT`` is set: MNIST time to 99.5 % (cnnlab vs the hand-written
loop, same run) and the throughput table.

    python bench/gpu_summary.py [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str, smoke: bool) -> dict[str, Any] | None:
    path = RESULTS / f"{name}{'_smoke' if smoke else ''}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _mnist_line(label: str, res: dict[str, Any] | None) -> tuple[str, float | None]:
    if res is None or not res.get("runs"):
        return f"| {label} | (no result) | | | | |", None
    runs = res["runs"]
    reached = [r for r in runs if r["reached"]]
    median_s = statistics.median(r["train_s"] for r in reached) if len(reached) == len(runs) else None
    accs = ", ".join(f"{r['test_acc'][-1]:.2%}" for r in runs)
    per = ", ".join(f"{r['train_s']} s (ep {r['epoch']})" if r["reached"] else "not reached" for r in runs)
    ips = statistics.median(r["images_per_s"] for r in runs)
    median = f"{median_s:.2f} s" if median_s is not None else "—"
    return f"| {label} | {runs[0]['epochs']} | {accs} | {per} | {median} | {ips:,.0f} |", median_s


def summary(smoke: bool) -> str:
    base = _load("gpu_mnist_baseline", smoke)
    facts = (base or _load("gpu_mnist_cnnlab", smoke) or _load("gpu_throughput", smoke) or {}).get("facts", {})
    lines = [f"Device: {facts.get('gpu', facts.get('device', '?'))}, torch {facts.get('torch', '?')}, "
             f"CUDA {facts.get('cuda', '-')}, Python {facts.get('python', '?')}", "",
             "MNIST, time to 99.5 % test accuracy (training seconds, test evaluation excluded; one row per recipe, "
             "seeds 0 and 1; the --compile row seed 0 only):", "",
             "| recipe | epochs (schedule) | final test acc | time to 99.5 % per seed | median | img/s |",
             "|---|---|---|---|---|---|"]
    row, base_s = _mnist_line("hand-written PyTorch loop (baseline)", base)
    lines.append(row)
    for name, label in (("gpu_mnist_cnnlab", "cnnlab train (bf16, channels-last)"),
                        ("gpu_mnist_cnnlab_compile", "cnnlab train + --compile")):
        row, ours = _mnist_line(label, _load(name, smoke))
        lines.append(row)
        if ours is not None and base_s is not None:
            lines.append(f"|   ↳ cnnlab / baseline time | | | | {ours / base_s:.2f}× | |")
    thr = _load("gpu_throughput", smoke)
    if thr:
        lines += ["", "Training throughput (images/s; cnnlab = `cnnlab.train`, plain = bare loop on "
                  "GPU-resident batches, same module):", "",
                  "| net | input | batch | precision | cnnlab | plain loop | cnnlab / plain |", "|---|---|---|---|---|---|---|"]
        for r in thr["rows"]:
            lines.append(f"| {r['net']} | {'×'.join(map(str, r['input']))} | {r['batch']} | {r['precision']} | "
                         f"{r['cnnlab_images_per_s']:,} | {r['plain_images_per_s']:,} | {r['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    text = summary(parser.parse_args().smoke)
    print(text)
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "summary.md").write_text(text)


if __name__ == "__main__":
    main()
