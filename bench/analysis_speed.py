"""Analysis speed on a ResNet-152-sized spec (≈ 150 conv layers), parsing included, without torch.

Run:  .venv/bin/python bench/analysis_speed.py [--rounds 5] [--calls 200] [--quick]

The figure that meets the target is ``load_spec(d)`` + ``analyze(spec)`` from a plain dict ``d``
(what ``cnnlab.analyze(d)`` does). In one invocation it runs ``--rounds`` rounds; each round times
``--calls`` calls of three things in turn (alternating, so that load changes hit all three alike):
parse + analyze from the dict, parse only, analyze only (spec already parsed). A round's figure is the
median per-call milliseconds, wall (``perf_counter``) and CPU (``process_time``); the script prints
every round and the median over rounds, with the 1-minute load average. Target: ≤ 10 ms for parse +
analyze. With ``--baseline-src OTHER/src`` a child process running another checkout (e.g. main before
a change) is measured in the same rounds, right after this one, and the per-round ratio is printed.
Writes bench/results/analysis_speed.json.
The spec is generated here (bottleneck blocks 3-8-36-3, torchvision layout) and its parameter
count is checked against torchvision's published ResNet-152 figure (60,192,808) first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
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


def per_call_ms(fn: Any, calls: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds per call of ``fn`` over ``calls`` calls."""
    wall, cpu = [], []
    for _ in range(calls):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def one_round(things: dict[str, Any], calls: int) -> dict[str, Any]:
    row: dict[str, Any] = {"load_1min": round(os.getloadavg()[0], 2)}
    for name, fn in things.items():
        wall, cpu = per_call_ms(fn, calls)
        row[f"{name}_ms"], row[f"{name}_cpu_ms"] = round(wall, 3), round(cpu, 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200, help="calls per round and per measured thing")
    ap.add_argument("--quick", action="store_true", help="3 rounds of 60 calls")
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="the src/ folder of another checkout (e.g. main before a change), measured in the same "
                         "rounds by a child process: before/after in one invocation")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rounds, calls = (3, 60) if args.quick else (max(3, args.rounds), args.calls)
    data = resnet152()
    spec = load_spec(data)
    a = analyze(spec)
    assert a.total_params == RESNET152_PARAMS, a.total_params
    assert analyze(load_spec(data)).to_dict() == a.to_dict()  # parsing again gives the same analysis
    convs = sum(1 for r in a.walk() if r.kind in ("conv", "shortcut"))
    for _ in range(20):  # warm-up
        analyze(load_spec(data))
    things = {
        "parse_and_analyze": lambda: analyze(load_spec(data)),
        "parse_only": lambda: load_spec(data),
        "analyze_only": lambda: analyze(spec),
    }
    if args.serve:  # the baseline side: one round per line read, answered as one JSON line
        for _ in sys.stdin:
            print(json.dumps(one_round(things, calls)), flush=True)
        return
    baseline = None
    if args.baseline_src is not None:
        env = dict(os.environ, PYTHONPATH=str(args.baseline_src))
        baseline = subprocess.Popen([sys.executable, __file__, "--serve", "--calls", str(calls)], env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    per_round: list[dict[str, Any]] = []
    for r in range(1, rounds + 1):
        row = one_round(things, calls)
        if baseline is not None:
            assert baseline.stdin is not None and baseline.stdout is not None
            baseline.stdin.write("go\n")
            baseline.stdin.flush()
            other = json.loads(baseline.stdout.readline())
            row.update({f"baseline_{k}": v for k, v in other.items()})
            row["ratio_baseline_over_this"] = round(other["parse_and_analyze_ms"] / row["parse_and_analyze_ms"], 3)
            print(f"round {r} baseline ({args.baseline_src}): parse+analyze {other['parse_and_analyze_ms']:.2f} ms "
                  f"wall ({other['parse_and_analyze_cpu_ms']:.2f} CPU)", flush=True)
        per_round.append(row)
        print(f"round {r}: parse+analyze {row['parse_and_analyze_ms']:.2f} ms wall "
              f"({row['parse_and_analyze_cpu_ms']:.2f} CPU), parse {row['parse_only_ms']:.2f}, "
              f"analyze {row['analyze_only_ms']:.2f} (load {row['load_1min']})", flush=True)

    def med(key: str) -> float:
        return round(statistics.median(x[key] for x in per_round), 3)

    result = {
        "spec": "resnet152 (generated)", "conv_layers": convs, "rows": len(a.walk()), "total_params": a.total_params,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "command": "bench/analysis_speed.py" + (" --quick" if args.quick else f" --rounds {rounds} --calls {calls}"),
        "rounds": per_round, "calls_per_round": calls,
        "parse_and_analyze_median_ms": med("parse_and_analyze_ms"),
        "parse_and_analyze_cpu_median_ms": med("parse_and_analyze_cpu_ms"),
        "parse_only_median_ms": med("parse_only_ms"), "analyze_only_median_ms": med("analyze_only_ms"),
        **({"baseline_src": str(args.baseline_src),
            "baseline_parse_and_analyze_median_ms": med("baseline_parse_and_analyze_ms"),
            "baseline_parse_and_analyze_cpu_median_ms": med("baseline_parse_and_analyze_cpu_ms"),
            "median_ratio_baseline_over_this": med("ratio_baseline_over_this")} if baseline is not None else {}),
        "target_ms": 10,
        "torch_imported": "torch" in sys.modules,
        "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    print(f"analyze from a dict, parsing included: median {result['parse_and_analyze_median_ms']:.2f} ms wall "
          f"({result['parse_and_analyze_cpu_median_ms']:.2f} ms CPU) over {rounds} rounds of {calls} calls; "
          f"target <= 10 ms")
    if baseline is not None:
        baseline.stdin.close()  # type: ignore[union-attr]
        baseline.wait()
        print(f"baseline {args.baseline_src}: median {result['baseline_parse_and_analyze_median_ms']:.2f} ms wall; "
              f"median per-round ratio baseline / this = {result['median_ratio_baseline_over_this']:.2f}")
    out = Path(__file__).parent / "results" / "analysis_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
