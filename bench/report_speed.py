"""Benchmark: how long ``cnnlab report`` takes for an MNIST run, in a fresh process, and how big the page is.

    .venv/bin/python bench/report_speed.py [RUN] [--rounds 3] [--quick]

``RUN`` defaults to a keras-mnist run trained here for one short epoch on the full MNIST
(``$CNNLAB_MNIST`` or /work/shared/data/mnist; 54,000 train / 6,000 validation images), kept in
``$TMPDIR/cnnlab-bench-report-run`` (outside the repository) so later calls reuse it.

Each round runs ``python -m cnnlab report RUN`` twice in a fresh process (imports included):

* ``cold``: with ``RUN/cache/`` deleted first, so the model runs over the 6,000 validation images
  (the first report of a run trained with ``--no-report``);
* ``warm``: with the cache the cold call left (every later report, and every ``cnnlab report`` after a
  ``cnnlab train`` that wrote its report: the cache is keyed by a hash of the weights and the images).
  Since report3 the cache also holds the pictures (``report.cache``): a warm report loads no model and
  imports neither torch nor matplotlib. A ``--baseline-src`` checkout without that file reads only
  ``report-eval-*.npz`` (its own warm case).

With ``--baseline-src OTHER/src`` each round also runs another checkout's ``cnnlab report`` (e.g. main
before a change), for a before/after in the same invocation. Rounds alternate cold, warm(, baseline)...; the script prints every round's wall and CPU seconds
(user + sys of the child) and the 1-minute load average before it, then the medians, and checks that
the cold and warm pages are identical (but for the "generated" time). Without ``--quick`` it also
times the phases in-process with warm imports. Target: warm median <= 2 s on 2 quiet cores.
Writes ``bench/results/report_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def ensure_run(path: Path | None) -> Path:
    if path is not None:
        return path
    run = Path(tempfile.gettempdir()) / "cnnlab-bench-report-run"
    if not (run / "checkpoints" / "best.safetensors").exists():
        data = os.environ.get("CNNLAB_MNIST", "/work/shared/data/mnist")
        subprocess.run([sys.executable, "-m", "cnnlab", "train", "keras-mnist", "--data", data, "--epochs", "1",
                        "--max-steps-per-epoch", "120", "--out", str(run), "--no-report", "--quiet"], check=True)
    return run


def one_report(run: Path, out: Path, src: Path | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys of the child) of one fresh ``cnnlab report`` process
    (``src``: the ``src`` folder of another checkout to run instead of the installed cnnlab)."""
    import resource

    env = dict(os.environ, PYTHONPATH=str(src)) if src is not None else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnlab", "report", str(run), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_rounds(run: Path, rounds: int, tmp: Path, baseline: Path | None = None) -> dict[str, list[dict[str, float]]]:
    """Alternating cold / warm (/ baseline) rounds (see the module docstring), each printed as it ends."""
    kinds = ("cold", "warm") + (("baseline",) if baseline is not None else ())
    out: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for r in range(1, rounds + 1):
        for kind in kinds:
            if kind == "cold":
                shutil.rmtree(run / "cache", ignore_errors=True)
            load = os.getloadavg()[0]
            wall, cpu = one_report(run, tmp / f"{kind}.html", baseline if kind == "baseline" else None)
            out[kind].append({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_1min": round(load, 2)})
            print(f"round {r} {kind}: {wall:.2f} s wall, {cpu:.2f} s CPU (load {load:.2f})", flush=True)
    return out


def same_page(a: Path, b: Path) -> bool:
    """Whether two report pages are equal once their "generated" timestamps are blanked."""
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
    return stamp.sub("", a.read_text(encoding="utf-8")) == stamp.sub("", b.read_text(encoding="utf-8"))


def phases(run_path: Path, out: Path) -> dict[str, object]:
    from cnnlab.inference.dataset import validation_split
    from cnnlab.inference.evaluation import evaluate
    from cnnlab.report import figures
    from cnnlab.report.render import render_html
    from cnnlab.train import load_run

    t: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def clock(name: str, fn):  # noqa: ANN001, ANN202
        start, start_cpu = time.perf_counter(), time.process_time()
        value = fn()
        t[name] = round(time.perf_counter() - start, 3)
        cpu[name] = round(time.process_time() - start_cpu, 3)  # all threads of this process
        return value

    run = clock("load_run", lambda: load_run(run_path))
    images, label = clock("reload_validation", lambda: validation_split(run, "en"))
    res = clock("evaluate", lambda: evaluate(run, images, batch_size=512))
    analysis = run.analysis
    clock("fig_curves", lambda: figures.curves_picture(run.metrics, "en"))
    clock("fig_confusion", lambda: figures.confusion_picture(res, "en"))
    clock("fig_filters", lambda: figures.filter_pictures(run.model, analysis, "en"))
    chosen = figures.cam_examples(res)
    clock("fig_maps", lambda: figures.maps_picture(run, images.images, chosen[0], analysis, "en"))
    clock("fig_cam", lambda: figures.cam_picture(run, images.images, res, chosen, "en"))
    clock("fig_mistakes", lambda: figures.mistakes_picture(images.images, res, "en"))
    from cnnlab.report.collect import collect_report

    report = clock("collect_all", lambda: collect_report(run, images, lang="en", data_label=label))
    html = clock("render", lambda: render_html(report))
    clock("write", lambda: out.write_text(html, encoding="utf-8"))
    return {"wall_s": t, "cpu_s": cpu, "images_evaluated": len(images.labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="cold/warm pairs (default 3)")
    parser.add_argument("--quick", action="store_true", help="leave out the in-process phase timings")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="the src/ folder of another checkout (e.g. main before a change): each round also "
                             "runs its `cnnlab report`, for a before/after in one invocation")
    args = parser.parse_args()
    run = ensure_run(args.run)
    start_load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rounds = cli_rounds(run, max(1, args.rounds), tmp, args.baseline_src)
        identical = same_page(tmp / "cold.html", tmp / "warm.html")
        baseline_identical = same_page(tmp / "cold.html", tmp / "baseline.html") if args.baseline_src else None
        size = (tmp / "warm.html").stat().st_size
        inproc = None if args.quick else phases(run, tmp / "inproc.html")

    def med(kind: str, key: str) -> float:
        return round(statistics.median(x[key] for x in rounds[kind]), 2)

    result = {
        "run": str(run),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "command": "bench/report_speed.py" + (f" {args.run}" if args.run else "") + f" --rounds {args.rounds}"
                   + (" --quick" if args.quick else ""),
        "rounds": rounds,
        "warm_median_s": med("warm", "wall_s"), "warm_cpu_median_s": med("warm", "cpu_s"),
        "cold_median_s": med("cold", "wall_s"), "cold_cpu_median_s": med("cold", "cpu_s"),
        **({"baseline_src": str(args.baseline_src), "baseline_median_s": med("baseline", "wall_s"),
            "baseline_cpu_median_s": med("baseline", "cpu_s"),
            "baseline_page_identical": baseline_identical}
           if args.baseline_src else {}),
        "cold_and_warm_pages_identical": identical,
        "size_bytes": size,
        "phases": inproc,
        "cpus": os.cpu_count(),
        "load_average_start": start_load,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    print(f"cnnlab report: warm median {result['warm_median_s']:.2f} s wall ({result['warm_cpu_median_s']:.2f} s CPU), "
          f"cold median {result['cold_median_s']:.2f} s ({result['cold_cpu_median_s']:.2f} s CPU) over "
          f"{args.rounds} rounds; target <= 2 s; pages identical: {identical}; load {start_load[0]} at start"
          + (f"; baseline ({args.baseline_src}) median {result['baseline_median_s']:.2f} s wall "
             f"({result['baseline_cpu_median_s']:.2f} s CPU), same page: {baseline_identical}" if args.baseline_src else ""))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
