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
from typing import Any

WAIT_S = 300.0  # the child's pictures take about a second; past this it is presumed stuck and killed

_JOBS: dict[str, Callable[[], Any]] = {}  # read by the forked child (set just before the fork)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _child(conn: Any) -> None:
    try:
        conn.send({name: job() for name, job in _JOBS.items()})
    finally:
        conn.close()


class Pending:
    """Results of ``in_background``: ``results()`` waits for the child, or runs the jobs here."""

    def __init__(self, jobs: dict[str, Callable[[], Any]], proc: Any = None, conn: Any = None) -> None:
        self._jobs, self._proc, self._conn = jobs, proc, conn

    def results(self) -> dict[str, Any]:
        got: dict[str, Any] | None = None
        if self._proc is not None:
            try:
                if self._conn.poll(WAIT_S):  # data, or end of file if the child died
                    got = self._conn.recv()
            except Exception:  # noqa: BLE001 - a broken child (killed, unpicklable result): draw here instead
                got = None
            finally:
                self._conn.close()
                if self._proc.is_alive():
                    self._proc.kill()  # stuck (e.g. a lock held by another thread at fork time)
                self._proc.join()
                self._proc = None
        if isinstance(got, dict) and set(got) == set(self._jobs):
            return got
        return {name: job() for name, job in self._jobs.items()}


def in_background(jobs: dict[str, Callable[[], Any]]) -> Pending:
    """Start ``jobs`` (name -> function of no arguments) in a forked child when that can help."""
    if usable_cores() < 2 or "fork" not in mp.get_all_start_methods():
        return Pending(jobs)
    ctx = mp.get_context("fork")
    _JOBS.clear()
    _JOBS.update(jobs)
    try:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child,), daemon=True)
        proc.start()
        child.close()
    except Exception:  # noqa: BLE001 - no process could be started: serial
        return Pending(jobs)
    finally:
        _JOBS.clear()  # the child has its own copy; the parent keeps none
    return Pending(jobs, proc, parent)
