"""``run_study``: train every arm of a study (one ``cnnlab.sweep`` grid per arm, over the seeds), measure
each run's final weights on the test split (a split that chose nothing), then write ``study.json`` and
``study.html``.

The study folder::

    STUDY/study.json      the numbers (per run and per arm) and the verdict
    STUDY/study.html      the page (paper, claim, setup, differences, measurement, plots, verdict)
    STUDY/arms/<arm>/     one sweep folder per arm (its trials are ordinary run folders)

An interrupted study continues where it stopped (finished trials are not rerun): run the same command.

>>> from cnnlab.studies import run_study
>>> r = run_study("increase-batch", "mnist", quick=True, out="studies/ib")     # doctest: +SKIP
>>> r["verdict"]["text"]                                                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.i18n import resolve_lang, tr
from cnnlab.studies.defs import FULL, QUICK, Arm, Plan, Study, get_study, planned_updates
from cnnlab.utils.io import atomic_write_text

VERSION = 1


def run_study(name: str | Study, data: str, *, quick: bool = False, out: str | os.PathLike[str] | None = None,
              seeds: int | None = None, workers: int = 1, lang: str | None = None, quiet: bool = False,
              processes: bool = True) -> dict[str, Any]:
    """Run (or continue) the study and return what ``study.json`` holds."""
    lang = resolve_lang(lang)
    study = name if isinstance(name, Study) else get_study(name)
    plan = study.plan(QUICK if quick else FULL, seeds)
    folder = Path(out) if out is not None else Path("studies") / f"{study.name}-{plan.size}"
    _check_folder(folder, study, plan)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    for arm in plan.arms:
        if not quiet:
            print(tr("study.arm", lang, study=study.name, arm=arm.key, label=arm.label,
                     n=_arm_trials(plan, arm)), flush=True)
        result = _run_arm(folder / "arms" / arm.key, arm, plan, data, workers, lang, quiet, processes)
        arm_rows, arm_info = measure_arm(result, arm, plan)
        rows += arm_rows
        info[arm.key] = arm_info
    from cnnlab.studies.analysis import summarise

    doc: dict[str, Any] = {"version": VERSION, "study": study.name, "size": plan.size, "data": str(data), "paper": study.paper,
           "seeds": plan.seeds, "limit": plan.limit, "epochs": plan.epochs, "workers": workers,
           "arms": [{"key": a.key, "label": a.label, "config": a.config, "grid": list(a.grid),
                     "spec": a.spec if isinstance(a.spec, str) else a.spec.get("name"), **info[a.key]}
                    for a in plan.arms],
           "runs": rows, "wall_s": round(time.perf_counter() - start, 1), "load_avg": _loadavg()}
    doc["summary"] = summarise(study, doc)
    write_study(folder, doc, lang)
    if not quiet:
        print(doc["summary"]["verdict"]["en" if lang == "en" else "pt"])
        print(tr("study.written", lang, path=folder / "study.html", json=folder / "study.json"))
    return doc


def write_study(folder: Path, doc: dict[str, Any], lang: str) -> None:
    """``study.json`` then ``study.html`` (each written atomically)."""
    from cnnlab.studies.page import render_study_page

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "study.json", json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(folder / "study.html", render_study_page(doc, lang))


def load_study_result(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``STUDY/study.json`` as a dict; a missing or broken one is a ``CnnlabError``."""
    path = Path(folder) / "study.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CnnlabError(f"{folder} holds no study.json; run a study first: cnnlab study NAME --data mnist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CnnlabError(f"{path} is not valid JSON ({exc}); run the study again with another --out") from None


def write_study_page(folder: str | os.PathLike[str], lang: str = "en") -> Path:
    """Rewrite ``STUDY/study.html`` from ``STUDY/study.json`` (e.g. in the other language)."""
    from cnnlab.studies.page import render_study_page

    path = Path(folder) / "study.html"
    atomic_write_text(path, render_study_page(load_study_result(folder), lang))
    return path


def _check_folder(folder: Path, study: Study, plan: Plan) -> None:
    done = folder / "study.json"
    if done.is_file():
        raise CnnlabError(f"{folder} already holds a finished study ({done}); choose another --out, "
                          "or delete the folder to run it again")
    if folder.exists() and any(folder.iterdir()) and not (folder / "arms").is_dir():
        raise CnnlabError(f"{folder} exists and is not a study folder; choose another --out")


def _arm_trials(plan: Plan, arm: Arm) -> int:
    return Plan(plan.study, plan.size, plan.seeds, plan.limit, plan.epochs, [arm]).trials()


def _run_arm(folder: Path, arm: Arm, plan: Plan, data: str, workers: int, lang: str, quiet: bool,
             processes: bool) -> Any:
    from cnnlab.sweep import join_sweep, run_sweep

    if (folder / "sweep.json").is_file():  # an interrupted study: continue this arm (finished trials stay)
        return join_sweep(folder, workers=workers, lang=lang, quiet=True, report=False, processes=processes)
    result = run_sweep(arm.spec, data, plan.sweep_params(arm), out=folder, workers=workers, config=arm.config,
                       val_split=plan.val_split, limit=plan.limit, seed=plan.data_seed, lang=lang, quiet=True,
                       report=False, processes=processes)
    if not result.finished or any(t.state != "complete" for t in result.trials):
        bad = [f"trial {t.number}: {t.state}" + (f" ({t.error})" if t.error else "") for t in result.trials
               if t.state != "complete"]
        raise CnnlabError(f"study arm {arm.key}: not every run completed ({'; '.join(bad)}); see {folder}/logs, "
                          "then run the same command again to continue")
    return result


def measure_arm(result: Any, arm: Arm, plan: Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each complete trial's final weights on the test split, its updates (measured and planned), its curve."""
    from cnnlab.inference import evaluate
    from cnnlab.sweep.trial import load_sweep_data
    from cnnlab.train import load_run

    bundle = load_sweep_data(result.meta)
    if bundle.test is None or not len(bundle.test):
        raise CnnlabError(f"study arm {arm.key}: the data has no test split to measure on; use a named data set "
                          "(mnist) or a folder with a test/ sub-folder")
    n_train = len(bundle.train)
    rows = []
    for t in result.trials:
        if t.state != "complete" or not t.run:
            continue
        run = load_run(result.folder / t.run, "last")
        res = evaluate(run, bundle.test)
        options = {**arm.config, **t.params}
        rows.append({
            "arm": arm.key, "seed": int(t.params.get("seed", 0)), "params": dict(t.params), "trial": t.number,
            "test_acc": float(res.accuracy), "val_acc_best": t.value, "curve": [[e, a] for e, a in t.curve],
            "epochs": int(run.checkpoint.get("epoch", t.epochs or 0)),
            "updates": int(run.checkpoint.get("step", 0)),
            "planned_updates": planned_updates(n_train, int(options["epochs"]), int(options["batch_size"]),
                                               options.get("batch_schedule") or []),
            "time_s": t.time_s, "run": str(Path("arms") / arm.key / t.run)})
    info = {"train_images": n_train, "val_images": len(bundle.val) if bundle.val is not None else 0,
            "test_images": len(bundle.test)}
    return rows, info


def _loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["run_study", "load_study_result", "write_study_page", "measure_arm", "write_study"]
