"""``run_sweep`` starts a study, ``join_sweep`` adds workers to one (or resumes it), ``finish_sweep``
measures the winner on the test split once and writes the exports and the report.

>>> from cnnlab.sweep import run_sweep, load_sweep
>>> r = run_sweep("lenet5", "mnist", ["lr=0.001,0.003,0.01", "batch_size=32,64", "epochs=1"],
...               out="sweeps/lr", workers=2)                                      # doctest: +SKIP
>>> r.best.params                                                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import CnnlabError
from cnnlab.i18n import resolve_lang, tr
from cnnlab.sweep.check import check_space
from cnnlab.sweep.results import SweepResult, load_sweep, read_folder, storage_url, trial_rows
from cnnlab.sweep.space import (
    Param,
    Space,
    apply_spec,
    find_placeholders,
    parse_param,
    strip_placeholders,
)
from cnnlab.sweep.storage import GRACE_FACTOR, HEARTBEAT_S, META_KEY, TEST_KEY, default_url, redact
from cnnlab.sweep.table import LiveTable, final_table
from cnnlab.sweep.values import config_options
from cnnlab.utils.io import atomic_write_text


def run_sweep(spec: Any, data: str, params: Iterable[str | Param] = (), *, out: str | os.PathLike[str] | None = None,
              storage: str | None = None, workers: int = 1, trials: int | None = None, sampler: str | None = None,
              prune: bool = False, config: Any = None, val_split: float = 0.1, test_split: float = 0.1,
              limit: int | None = None, seed: int = 0, lang: str | None = None, quiet: bool = False,
              dry_run: bool = False, report: bool = True, processes: bool = True) -> SweepResult | Space:
    """Create the study (SQLite in ``out`` unless ``storage`` is a URL), run ``workers`` local workers,
    then ``finish_sweep``. ``params``: ``"lr=log:1e-4..1e-1"``-style texts (see ``cnnlab.sweep.space``).
    ``dry_run=True`` checks everything and returns the ``Space`` without writing anything.
    ``processes=False``: one worker in this process (no live table; notebooks, tests)."""
    lang = resolve_lang(lang)
    raw_spec, spec_name = _raw_spec(spec)
    placeholders = find_placeholders(raw_spec)
    base_spec = strip_placeholders(raw_spec, placeholders)
    base_config = _base_config(config)
    given = [p if isinstance(p, Param) else parse_param(p) for p in params]
    space = check_space(placeholders + given, base_spec, base_config, sampler, trials)
    base_config.update(config_options(space.fixed))
    base_spec = apply_spec(base_spec, {k: v for k, v in space.fixed.items() if k.startswith("layers")})
    n = space.size() if space.sampler == "grid" else int(trials or 0)
    _check_workers(workers)
    if dry_run:
        if not quiet:
            print(tr("sweep.dry_run", lang, n=n))
        return space
    folder = Path(out) if out is not None else _default_folder(spec_name)
    if (folder / "sweep.json").exists():
        raise CnnlabError(f"{folder} already holds a sweep; continue it with `cnnlab sweep --join {folder}` "
                          "or choose another --out")
    name = folder.name
    url = storage or default_url(folder)
    meta = {"version": 1, "spec_name": spec_name, "base_spec": base_spec, "data": str(_data_text(data)),
            "config": base_config, "space": space.to_dict(), "trials": n, "prune": prune,
            "val_split": val_split, "test_split": test_split, "limit": limit, "seed": seed,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    folder.mkdir(parents=True, exist_ok=True)
    study = _create(folder, name, url, meta, space)
    _write_folder(folder, name, url, meta)
    if not quiet:
        print(tr("sweep.folder", lang, path=folder))
        print(tr("sweep.start", lang, name=name, size=n, sampler=space.sampler, names=", ".join(space.names),
                 workers=workers, threads=_threads(workers), url=redact(url)), flush=True)
    del study
    code = _work(folder, name, url, workers, lang, quiet, processes)
    return finish_sweep(folder, url, lang=lang, quiet=quiet, report=report, interrupted=code == 130)


def join_sweep(sweep: str | os.PathLike[str], *, storage: str | None = None, workers: int = 1,
               lang: str | None = None, quiet: bool = False, report: bool = True,
               processes: bool = True) -> SweepResult:
    """Add ``workers`` workers to a sweep (another machine, or a killed sweep resumed); trials that
    finished are never rerun, a killed trial continues from its last checkpoint."""
    lang = resolve_lang(lang)
    folder = Path(sweep)
    _check_workers(workers)
    if (folder / "sweep.json").exists():
        info = read_folder(folder)
        url = storage_url(folder, info, storage)
        name = info["name"]
    else:  # another machine: the study (settings included) is in the database
        if not storage and not os.environ.get("CNNLAB_SWEEP_STORAGE"):
            raise CnnlabError(f"{folder} is not a sweep folder here; to join a sweep whose study is in a database, "
                              f"give its URL: cnnlab sweep --join {folder} --storage postgresql://...")
        url = storage or os.environ["CNNLAB_SWEEP_STORAGE"]
        name = folder.name
        from cnnlab.sweep.storage import load_study, open_storage

        meta = load_study(open_storage(url), name).user_attrs[META_KEY]
        folder.mkdir(parents=True, exist_ok=True)
        _write_folder(folder, name, url, meta)
    if not quiet:
        print(tr("sweep.join", lang, name=name, url=redact(url), workers=workers, threads=_threads(workers)), flush=True)
    code = _work(folder, name, url, workers, lang, quiet, processes)
    return finish_sweep(folder, url, lang=lang, quiet=quiet, report=report, interrupted=code == 130)


# ------------------------------------------------------------------ workers
def _work(folder: Path, name: str, url: str, workers: int, lang: str, quiet: bool, processes: bool) -> int:
    if processes:
        return run_workers(folder, name, url, workers, lang=lang, quiet=quiet)
    from cnnlab.sweep.worker import run_worker

    return run_worker(folder, name, url, _threads(1))


def _threads(workers: int) -> int:
    """Each worker's share of the cores this process may use (affinity, cgroup quota)."""
    from cnnlab.utils.cpus import split_threads

    return split_threads(workers)


def _check_workers(workers: int) -> None:
    if workers < 1:
        raise CnnlabError(f"--workers {workers}: use a whole number >= 1 (processes running trials at once)")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the worker gets SIGKILL when the sweep process dies (kill -9 included). SIGINT is reset to
    its default (a sweep started in the background ignores it) so that the forwarded Ctrl-C arrives."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_workers(folder: Path, name: str, url: str, workers: int, *, lang: str = "en", quiet: bool = False) -> int:
    """Start ``workers`` worker processes, show the live table until they exit. Returns 0, or 130 on Ctrl-C."""
    from cnnlab.sweep.storage import load_study, open_storage

    threads = _threads(workers)
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CNNLAB_SWEEP_STORAGE": url, "OMP_NUM_THREADS": str(threads)}
    src = str(Path(__file__).resolve().parents[2])  # the cnnlab this process runs, also in a source checkout
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname())
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    stop = logs / f"stop-{host}-{os.getpid()}"  # exists = start no new trial (a stop that came between trials)
    stop.unlink(missing_ok=True)
    for i in range(workers):
        log = logs / f"worker-{host}-{os.getpid()}-{i}.log"
        with open(log, "ab") as fh:
            cmd = [sys.executable, "-m", "cnnlab.sweep.worker", str(folder), "--name", name, "--threads", str(threads),
                   "--stop-file", str(stop)]
            # own session: a Ctrl-C on the terminal reaches the workers once, forwarded below (a second
            # SIGINT would make a trainer abort without saving); they still die with this process
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        procs.append((proc, log))
    study = load_study(open_storage(url), name)
    names = Space.from_dict(study.user_attrs[META_KEY]["space"]).names
    table = LiveTable(names, lang, enabled=not quiet)
    try:
        while any(p.poll() is None for p, _ in procs):
            table.update(trial_rows(study.get_trials(deepcopy=False)))
            time.sleep(1.0)
    except KeyboardInterrupt:
        stop.touch()
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # each trainer saves its state; the trial is queued to resume
        for p, _ in procs:
            p.wait()
        if not quiet:
            print(tr("sweep.interrupted", lang, path=folder), file=sys.stderr)
        return 130
    table.update(trial_rows(study.get_trials(deepcopy=False)))
    for i, (p, log) in enumerate(procs):
        if p.returncode not in (0, 130):
            print(tr("sweep.worker_failed", lang, index=i, code=p.returncode, log=log), file=sys.stderr)
            print(_tail(log), file=sys.stderr)
    return 130 if any(p.returncode == 130 for p, _ in procs) else 0


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------ the end of a sweep
def finish_sweep(folder: str | os.PathLike[str], storage: str | None = None, *, lang: str = "en",
                 quiet: bool = False, report: bool = True, interrupted: bool = False) -> SweepResult:
    """Once every trial has ended: the winner's test accuracy (once), the exports and the report."""
    result = load_sweep(folder, storage)
    if result.finished and not interrupted and result.test is None and result.best is not None:
        test = measure_test(result)
        if test is not None:
            from cnnlab.sweep.storage import load_study, open_storage

            study = load_study(open_storage(storage_url(folder, read_folder(folder), storage)), result.name)
            if TEST_KEY not in study.user_attrs:  # another machine may have measured it meanwhile
                study.set_user_attr(TEST_KEY, test)
            result = load_sweep(folder, storage)
    paths = result.write_exports()
    if report:
        from cnnlab.sweep.page import write_sweep_report

        paths.append(write_sweep_report(result, lang=lang))
    if not quiet:
        print(final_table(result, lang))
        print(tr("sweep.exports", lang, paths=", ".join(str(p) for p in paths)))
    return result


def measure_test(result: SweepResult) -> dict[str, Any] | None:
    """Evaluate the validation winner's best checkpoint on the held-out test split (None: no test split
    here, or the winner's run folder is on another machine)."""
    best = result.best
    if best is None or best.run is None or not (result.folder / best.run).is_dir():
        return None
    from cnnlab.inference import evaluate
    from cnnlab.sweep.trial import load_sweep_data
    from cnnlab.train import load_run

    bundle = load_sweep_data(result.meta)
    if bundle.test is None or not len(bundle.test):
        return None
    res = evaluate(load_run(result.folder / best.run, "best"), bundle.test)
    return {"trial": best.number, "accuracy": float(res.accuracy), "images": len(bundle.test),
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# ------------------------------------------------------------------ setting up
def _raw_spec(spec: Any) -> tuple[dict[str, Any], str]:
    """The spec as a plain dict, placeholders kept (``load_spec`` would reject them)."""
    from cnnlab.spec import Spec, load_spec

    if isinstance(spec, Spec):
        return spec.to_dict(), spec.name
    if isinstance(spec, Mapping):
        return dict(spec), str(spec.get("name", "sweep"))
    path = Path(str(spec))
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CnnlabError(f"spec file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise CnnlabError(f"spec file {path} must be a mapping with input: and layers:")
        return dict(data), str(data.get("name") or path.stem)
    loaded = load_spec(str(spec))  # a bundled name; its errors name the choices
    return loaded.to_dict(), loaded.name


def _base_config(config: Any) -> dict[str, Any]:
    from cnnlab.train import TrainConfig

    if config is None:
        cfg = TrainConfig()
    elif isinstance(config, TrainConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = TrainConfig.from_dict(config)
    else:
        cfg = TrainConfig.from_yaml(config)
    out = cfg.to_dict()
    out.pop("threads", None)
    return out


def _data_text(data: Any) -> str:
    text = str(data)
    return str(Path(text).resolve()) if Path(text).exists() else text


def _default_folder(name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "sweep"
    base, n = Path("sweeps") / safe, 1
    candidate = base
    while (candidate / "sweep.json").exists():
        n += 1
        candidate = base.with_name(f"{safe}-{n}")
    return candidate


def _create(folder: Path, name: str, url: str, meta: dict[str, Any], space: Space) -> Any:
    """The study, with every grid / random point queued (one trial each)."""
    from cnnlab.sweep.storage import create_study, open_storage

    study = create_study(open_storage(url), name, meta)
    if space.sampler == "grid":
        points = space.grid_points()
    elif space.sampler == "random":
        points = space.random_points(int(meta["trials"]), int(meta["seed"]))
    else:
        points = []
    for i, point in enumerate(points):
        study.enqueue_trial(point, user_attrs={"point": i})
    return study


def _write_folder(folder: Path, name: str, url: str, meta: dict[str, Any]) -> None:
    import json

    info = {"name": name, "storage": redact(url), "host": socket.gethostname(), "spec": meta.get("spec_name"),
            "data": meta.get("data"), "space": meta.get("space")}
    atomic_write_text(folder / "sweep.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(folder / "spec.yaml", yaml.safe_dump(meta["base_spec"], sort_keys=False))


__all__ = ["run_sweep", "join_sweep", "finish_sweep", "measure_test", "run_workers", "HEARTBEAT_S", "GRACE_FACTOR"]
