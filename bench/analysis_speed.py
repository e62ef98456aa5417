"""Analysis speed on a ResNet-152-sized spec (≈ 150 conv layers), without torch.

Run:  .venv/bin/python bench/analysis_speed.py
Prints the figures and writes bench/results/analysis_speed.json. Target: ≤ 10 ms per analysis.
The machine is shared, so besides wall time the script reports CPU time of this process
(``time.process_time``), which other processes' load inflates much less.
The spec is generated here (bottleneck blocks 3-8-36-3, torchvision layout) and its parameter
count is checked against torchvision's published ResNet-152 figure (60,192,808) first.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cnnlab.analysis import analyze
from cnnlab.spec import load_spec

RESNET152_PARAMS = 60_192_808  # torchvision.models.resnet152


def bottleneck(width: int, stride: int) -> dict[str, Any]:
    return {"residual": {"layers": [
        {"conv": {"filters": width, "kernel": 1, "bias": False, "activation": "none"}},
        {"batchnorm": "relu"},
        {"conv": {"filters": width, "kernel": 3, "stride": stride, "padding": 1, "bias": False,
                  "activation": "none"}},
        {"batchnorm": "relu"},
        {"conv": {"filters": 4 * width, "kernel": 1, "bias": False, "activation": "none"}},
        "batchnorm",
    ]}}


def resnet152() -> dict[str, Any]:
    layers: list[Any] = [
        {"conv": {"filters": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False, "activation": "none"}},
        {"batchnorm": "relu"}, {"pool": {"size": 3, "stride": 2, "padding": 1}},
    ]
    for width, blocks, stride in ((64, 3, 1), (128, 8, 2), (256, 36, 2), (512, 3, 2)):
        layers += [bottleneck(width, stride)] + [bottleneck(width, 1) for _ in range(blocks - 1)]
    layers += [{"global_pool": "avg"}, {"output": 1000}]
    return {"name": "resnet152", "input": [3, 224, 224], "layers": layers}


def timed(fn: Any, repeats: int, clock: Any = time.perf_counter) -> list[float]:
    """Milliseconds per call; ``clock=time.process_time`` counts only this process's CPU time."""
    out = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        out.append((clock() - t0) * 1e3)
    return out


def main() -> None:
    data = resnet152()
    spec = load_spec(data)
    a = analyze(spec)
    assert a.total_params == RESNET152_PARAMS, a.total_params
    convs = sum(1 for r in a.walk() if r.kind in ("conv", "shortcut"))
    rows = len(a.walk())
    analyze_ms = timed(lambda: analyze(spec), 200)
    analyze_cpu_ms = timed(lambda: analyze(spec), 200, clock=time.process_time)
    parse_ms = timed(lambda: analyze(data), 100)
    pt_ms = timed(lambda: analyze(spec, lang="pt"), 100)
    result = {
        "spec": "resnet152 (generated)", "conv_layers": convs, "rows": rows, "total_params": a.total_params,
        "analyze_min_ms": round(min(analyze_ms), 3),
        "analyze_cpu_median_ms": round(statistics.median(analyze_cpu_ms), 3),
        "analyze_median_ms": round(statistics.median(analyze_ms), 3),
        "analyze_p90_ms": round(sorted(analyze_ms)[int(0.9 * len(analyze_ms))], 3),
        "parse_and_analyze_median_ms": round(statistics.median(parse_ms), 3),
        "analyze_pt_median_ms": round(statistics.median(pt_ms), 3),
        "target_ms": 10,
        "torch_imported": "torch" in sys.modules,
        "python": platform.python_version(), "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "analysis_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
