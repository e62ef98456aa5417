"""A progress reporter for long data steps (decode, download) that knows nothing about training.

``make_progress(True)`` draws a bar on stderr when it is a terminal (rich), ``False`` is silent,
and a callable ``f(done, total, label)`` receives every update.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

ProgressFn = Callable[[int, int, str], None]


class Progress(Protocol):
    def update(self, done: int) -> None: ...
    def close(self) -> None: ...


class _Silent:
    def update(self, done: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Callback:
    def __init__(self, fn: ProgressFn, total: int, label: str) -> None:
        self.fn, self.total, self.label = fn, total, label

    def update(self, done: int) -> None:
        self.fn(done, self.total, self.label)

    def close(self) -> None:
        pass


class _RichBar:
    def __init__(self, total: int, label: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
        if label.startswith("download"):
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn()]
        columns.append(TimeRemainingColumn())
        self._bar = Progress(*columns, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def update(self, done: int) -> None:
        self._bar.update(self._task, completed=done)

    def close(self) -> None:
        self._bar.stop()


def make_progress(progress: bool | ProgressFn | None, total: int, label: str) -> Progress:
    """The reporter for ``progress`` (see the module docstring)."""
    if callable(progress):
        return _Callback(progress, total, label)
    if progress and sys.stderr.isatty():
        return _RichBar(total, label)
    return _Silent()
