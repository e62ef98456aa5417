"""Benchmark: how long ``cnnlab report`` takes for an MNIST run, and how big the page is.

    .venv/bin/python bench/report_speed.py [RUN] [--repeat 3]

``RUN`` defaults to a keras-mnist run trained here for one short epoch on the full MNIST
(``$CNNLAB_MNIST`` or /work/shared/data/mnist; 54,000 train / 6,000 validation images), kept in
``$TMPDIR/cnnlab-bench-report-run`` (outside the repository) so later calls reuse it. Figures:

* ``cli_s``: wall time of ``python -m cnnlab report RUN`` in a fresh process (imports included),
  and ``cli_cpu_s``: the CPU seconds (user + sys) that process used;
* phases, in-process with warm imports: load the run, reload the validation split, evaluate it,
  draw each picture, render the HTML, write it;
* ``size_bytes`` of the page (target: < 2 MB for an MNIST run; target time: <= 10 s on 2 cores).

Prints the figures and writes ``bench/results/report_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def cli_times(run: Path, repeat: int, out: Path) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + sys of the child) of each fresh ``cnnlab report``.

    On a busy shared machine the wall time mostly measures the other processes; the CPU time is the
    work itself, and bounds the wall time an idle machine with the same cores would need.
    """
    import resource

    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cnnlab", "report", str(run), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return walls, cpus


def phases(run_path: Path, out: Path) -> dict[str, object]:
    from cnnlab.report.source import validation_split

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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run = ensure_run(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        cli, cpu = cli_times(run, args.repeat, out)
        size = out.stat().st_size
        inproc = phases(run, Path(tmp) / "inproc.html")
    result = {
        "run": str(run),
        "cli_s": [round(x, 2) for x in cli],
        "cli_best_s": round(min(cli), 2),
        "cli_median_s": round(statistics.median(cli), 2),
        "cli_cpu_s": [round(x, 2) for x in cpu],
        "cli_cpu_best_s": round(min(cpu), 2),
        "size_bytes": size,
        "phases": inproc,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
