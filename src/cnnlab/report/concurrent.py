"""Draw the report's torch-free pictures in a second process while this one draws the model's own.

The curves, the confusion matrix and the mistakes grid need only numbers and pixels (matplotlib and
numpy); the filters, feature maps and Grad-CAM need the model. On a machine with two or more usable
cores, ``in_background(jobs)`` forks one child (Linux: it inherits the data, nothing is sent) that
runs ``jobs`` and sends back their results (``Picture`` objects: PNG bytes and texts), while the caller
goes on. The child runs the very same functions on the very same inputs, so the page is identical
to a serial one (tests/test_report_concurrent.py compares the bytes). Without ``fork``, on one core,
or if the child fails in any way, the jobs simply run here, serially.

>>> pending = in_background({"two": lambda: 1 + 1})
>>> pending.results()
{'two': 2}
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

_JOBS: dict[str, Callable[[], Any]] = {}  # read by the forked child (set just before the fork)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _run_jobs() -> dict[str, Any]:
    return {name: job() for name, job in _JOBS.items()}


class Pending:
    """Results of ``in_background``: ``results()`` waits for the child, or runs the jobs here."""

    def __init__(self, jobs: dict[str, Callable[[], Any]], pool: ProcessPoolExecutor | None,
                 future: Future[dict[str, Any]] | None) -> None:
        self._jobs, self._pool, self._future = jobs, pool, future

    def results(self) -> dict[str, Any]:
        try:
            if self._future is not None:
                return self._future.result()
        except Exception:  # noqa: BLE001 - a broken child (killed, unpicklable result): draw here instead
            pass
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            _JOBS.clear()
        return {name: job() for name, job in self._jobs.items()}


def in_background(jobs: dict[str, Callable[[], Any]]) -> Pending:
    """Start ``jobs`` (name -> function of no arguments) in a forked child when that can help."""
    if usable_cores() < 2 or "fork" not in mp.get_all_start_methods() or _JOBS:
        return Pending(jobs, None, None)
    _JOBS.update(jobs)
    try:
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
        return Pending(jobs, pool, pool.submit(_run_jobs))
    except Exception:  # noqa: BLE001 - no process could be started: serial
        _JOBS.clear()
        return Pending(jobs, None, None)
