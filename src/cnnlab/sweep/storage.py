"""Where a study lives: an Optuna ``RDBStorage`` (SQLite in the sweep folder by default, or any
SQLAlchemy URL such as ``postgresql://user:pw@host/db``), with heartbeats so that a killed worker's
trial is failed and retried, and the sweep's settings stored in the study itself (``--join`` needs
nothing but the URL and the study name).

>>> default_url("/data/sweeps/lr")
'sqlite:////data/sweeps/lr/study.db'
>>> redact("postgresql://me:secret@db.example:5432/cnn")
'postgresql://me:***@db.example:5432/cnn'
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CnnlabError

if TYPE_CHECKING:
    import optuna

META_KEY = "cnnlab_sweep"  # study user attribute holding the sweep's settings (Sweep.meta)
TEST_KEY = "cnnlab_test"  # study user attribute: the winner's test accuracy, measured once
HEARTBEAT_S = 10  # a running trial writes a heartbeat this often ...
GRACE_FACTOR = 3  # ... and is declared dead after this many missed beats


def default_url(folder: str | os.PathLike[str]) -> str:
    """SQLite in the sweep folder, by absolute path (workers may start elsewhere)."""
    return f"sqlite:///{Path(folder).resolve().as_posix()}/study.db"


def redact(url: str) -> str:
    """The URL without its password (for messages, sweep.json and the report)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def heartbeat_seconds(given: int | None = None) -> int:
    """The heartbeat interval: ``given``, else ``$CNNLAB_SWEEP_HEARTBEAT``, else 10 s."""
    return int(given or os.environ.get("CNNLAB_SWEEP_HEARTBEAT") or HEARTBEAT_S)


def open_storage(url: str, heartbeat_s: int | None = None) -> optuna.storages.RDBStorage:
    """Connect (creating the tables on first use); an unreachable or unknown URL is a ``CnnlabError``."""
    import logging

    try:
        import optuna
        import sqlalchemy.exc
    except ImportError as exc:
        raise CnnlabError(f"cnnlab sweep needs Optuna and SQLAlchemy ({exc.name} is missing); install them with: "
                          "pip install 'cnnlab[sweep]'") from None

    optuna.logging.set_verbosity(logging.WARNING)
    beat = heartbeat_seconds(heartbeat_s)
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}  # workers wait for each other's short write locks
    else:
        engine["pool_pre_ping"] = True
        engine["connect_args"] = {"connect_timeout": 10} if url.startswith("postgres") else {}
    import inspect
    import warnings

    url = _driver(url)

    params = inspect.signature(optuna.storages.RDBStorage).parameters
    callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=beat, grace_period=beat * GRACE_FACTOR,
                **{callback: retry})  # type: ignore[arg-type]  # the keyword's name depends on the version
        if url.startswith("sqlite"):
            _serialize_sqlite(storage.engine)
        return storage
    except ImportError as exc:
        raise CnnlabError(f"storage {redact(url)}: the database driver is missing ({exc.name or exc}); for "
                          "PostgreSQL install it with: pip install 'cnnlab[sweep]' (psycopg)") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnlabError(f"cannot open the study storage {redact(url)}: {first}; check that the database "
                          "server runs and accepts connections, and the URL (e.g. "
                          "postgresql://user:password@host:5432/dbname or sqlite:///path/study.db)") from None


def _driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 when only that one is installed."""
    import importlib.util

    if url.startswith("postgresql://") and not importlib.util.find_spec("psycopg") and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _serialize_sqlite(engine: Any) -> None:
    """Every SQLite transaction takes the write lock when it begins (``BEGIN IMMEDIATE``).

    pysqlite starts a transaction only at the first write, so two workers could both read a queued
    trial as ``WAITING`` and both claim it (Optuna's ``SELECT ... FOR UPDATE`` is a no-op in SQLite).
    Serialized transactions make the read-then-claim atomic; PostgreSQL's row locks already do.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below open the transaction
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made while creating the tables lack the hooks


MAX_ATTEMPTS = 3  # a trial is retried at most this many times (then it stays failed)


def retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a copy of ``trial`` (killed, or stopped with Ctrl-C) that continues its run folder.

    Called by exactly one process: the one whose update marked ``trial`` failed. The copy carries the
    trial's values: its params, or, for a trial killed before it read them, its queued grid/random point.
    """
    attempt = int(trial.user_attrs.get("attempt", 0)) + 1
    if attempt > MAX_ATTEMPTS:
        return
    params = dict(trial.params)
    if not params and "point" in trial.user_attrs:
        from cnnlab.sweep.space import Space

        meta = study.user_attrs[META_KEY]
        space = Space.from_dict(meta["space"])
        points = (space.grid_points() if space.sampler == "grid"
                  else space.random_points(int(meta["trials"]), int(meta["seed"])))
        params = points[int(trial.user_attrs["point"])]
    attrs = {k: v for k, v in trial.user_attrs.items() if k == "point"}
    attrs.update(continues=int(trial.user_attrs.get("continues", trial.number)), retry_of=trial.number,
                 attempt=attempt)
    study.enqueue_trial(params, user_attrs=attrs)


def fail_and_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Mark a running trial failed and queue its retry; False when another process got there first."""
    import optuna

    try:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        return False
    retry(study, trial)
    return True


def create_study(storage: optuna.storages.RDBStorage, name: str, meta: dict[str, Any]) -> optuna.Study:
    """A new study named ``name`` holding ``meta``; a name that is taken is a ``CnnlabError``."""
    import optuna

    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        raise CnnlabError(f"a sweep named {name!r} already exists in this storage; continue it with "
                          f"`cnnlab sweep --join {name}` or choose another --out folder name") from None
    study.set_user_attr(META_KEY, meta)
    return study


def load_study(storage: optuna.storages.RDBStorage, name: str, pruner: Any = None) -> optuna.Study:
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        from cnnlab.errors import did_you_mean

        raise CnnlabError(f"no sweep named {name!r} in the storage {redact(storage.url)}"
                          f"{did_you_mean(name, names)}; sweeps there: {', '.join(names) or 'none'}") from None
    if META_KEY not in study.user_attrs:
        raise CnnlabError(f"study {name!r} in {redact(storage.url)} was not made by `cnnlab sweep`")
    return study
