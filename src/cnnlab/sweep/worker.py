"""A worker: take trials from the study until none is left, on this machine's share of the cores.

``cnnlab sweep --workers N`` starts N of these as child processes (``python -m cnnlab.sweep.worker``);
``cnnlab sweep --join SWEEP --storage URL`` runs one (or N) on another machine. Workers only talk
through the database, so any number of them, anywhere, share a study:

- grid and random points are queued in the study when it is created; a worker pops one atomically
  (Optuna's ``WAITING`` -> ``RUNNING``), so each point runs once;
- TPE trials are created on demand; the one past ``--trials`` is recorded as surplus and not run;
- a worker that dies stops its heartbeat; after the grace period any other worker fails that trial
  and queues a retry, which continues the dead trial's run folder from its last checkpoint;
- a worker exits when nothing is queued or running (it waits for running trials: they may come back).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

POLL_S = 1.0


def pruner(meta: dict[str, Any]) -> Any:
    import optuna

    if not meta.get("prune"):
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=meta.get("prune_startup", 3), n_warmup_steps=0)


def sampler(meta: dict[str, Any]) -> Any:
    import optuna

    if meta["space"]["sampler"] == "tpe":
        return optuna.samplers.TPESampler(seed=None, n_startup_trials=min(5, int(meta["trials"])))
    return optuna.samplers.RandomSampler()  # grid/random points are queued; this only fills unset values


def open_study(name: str, url: str, heartbeat_s: int | None = None) -> optuna.Study:
    from cnnlab.sweep.storage import META_KEY, load_study, open_storage

    storage = open_storage(url, heartbeat_s)
    study = load_study(storage, name)
    meta = study.user_attrs[META_KEY]
    study.pruner = pruner(meta)
    study.sampler = sampler(meta)
    return study


def remaining(study: optuna.Study, meta: dict[str, Any]) -> tuple[int, int]:
    """(trials a worker could start now, trials running elsewhere)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if meta["space"]["sampler"] == "tpe":
        fresh = sum("continues" not in t.user_attrs and not t.user_attrs.get("surplus") for t in trials)
        waiting += max(0, int(meta["trials"]) - fresh)
    return waiting, running


def requeue_interrupted(study: optuna.Study) -> None:
    """Trials this worker stopped with Ctrl-C (their state is saved): queue a retry that resumes them."""
    from optuna.trial import TrialState

    from cnnlab.sweep.storage import retry

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if (t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.user_attrs.get("pid") == os.getpid()
                and t.number not in retried):
            retry(study, t)


def fail_unstarted(study: optuna.Study, after_s: float) -> None:
    """Trials claimed by a worker that died before its first heartbeat (Optuna never sees them stale):
    running for ``after_s`` seconds without the ``pid`` a live worker records first thing."""
    from datetime import datetime

    from optuna.trial import TrialState

    from cnnlab.sweep.storage import fail_and_retry

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        start = t.datetime_start
        if "pid" not in t.user_attrs and start is not None and (datetime.now() - start).total_seconds() > after_s:
            fail_and_retry(study, t)


def run_worker(root: Path, name: str, url: str, threads: int, heartbeat_s: int | None = None,
               stop_file: Path | None = None) -> int:
    """Run trials until the study has none left. Returns an exit code (0, or 130 after Ctrl-C)."""
    import warnings

    import optuna

    from cnnlab.sweep.storage import META_KEY, heartbeat_seconds
    from cnnlab.sweep.trial import Objective, load_sweep_data

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep's own table reports failures
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    study = open_study(name, url, heartbeat_s)
    meta = study.user_attrs[META_KEY]
    objective = Objective(root, meta, load_sweep_data(meta), threads)
    while True:
        if stop_file is not None and stop_file.exists():
            return 130
        optuna.storages.fail_stale_trials(study)  # dead workers' trials -> FAIL + a queued retry
        fail_unstarted(study, 10 * heartbeat_seconds(heartbeat_s))
        can_start, running = remaining(study, meta)
        if can_start:
            try:
                study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            except KeyboardInterrupt:
                requeue_interrupted(study)
                return 130
            except Exception as exc:  # a storage hiccup while recording a trial: log it and go on
                print(f"worker {os.getpid()}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                time.sleep(POLL_S)
            continue
        if not running:
            return 0
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnlab.sweep.worker",
                                     description="one sweep worker (started by `cnnlab sweep`)")
    parser.add_argument("folder", help="the sweep folder (trial run folders go in FOLDER/trials)")
    parser.add_argument("--name", required=True, help="study name")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for this worker's trials")
    parser.add_argument("--stop-file", type=Path, help="start no new trial once this file exists")
    args = parser.parse_args(argv)
    url = os.environ.get("CNNLAB_SWEEP_STORAGE", "")  # not on the command line: it may hold a password
    from cnnlab.errors import CnnlabError

    try:
        return run_worker(Path(args.folder), args.name, url, args.threads, stop_file=args.stop_file)
    except CnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
