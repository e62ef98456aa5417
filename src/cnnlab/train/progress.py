"""What the trainer shows while it runs: a rich bar on a terminal, plain lines otherwise, or nothing.

The trainer owns *when* numbers are read from the device (at most every ``REFRESH_S`` seconds, so the
loop never waits on a host sync per batch); this module only renders them.

- ``rich``: a progress bar per epoch (batches, loss, accuracy, images/s, ETA) + one line per epoch;
- ``plain``: one line per epoch, and a progress line every ``PLAIN_EVERY_S`` seconds in long epochs;
- ``quiet``: nothing but warnings.
"""

from __future__ import annotations

import enum
import sys
import time
from typing import Any, TextIO

from cnnlab.i18n import tr

REFRESH_S = 0.5
PLAIN_EVERY_S = 15.0


class Mode(str, enum.Enum):
    RICH = "rich"
    PLAIN = "plain"
    QUIET = "quiet"


def pick_mode(quiet: bool, stream: TextIO | None = None) -> Mode:
    if quiet:
        return Mode.QUIET
    stream = stream or sys.stdout
    return Mode.RICH if getattr(stream, "isatty", lambda: False)() else Mode.PLAIN


class Progress:
    """Renders training progress; every method is a no-op on ranks other than 0 (``enabled=False``)."""

    def __init__(self, mode: Mode = Mode.PLAIN, lang: str = "en", enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.mode = mode if enabled else Mode.QUIET
        self.enabled = enabled
        self.lang = lang
        self.stream = stream or sys.stdout
        self._bar: Any = None
        self._task: Any = None
        self._last_plain = 0.0
        self._epoch = (0, 0)

    def info(self, key: str, **values: Any) -> None:
        """A translated message line (not in quiet mode)."""
        if self.mode is not Mode.QUIET:
            self._print(tr(key, self.lang, **values))

    def warn(self, key: str, **values: Any) -> None:
        """A translated warning: shown even in quiet mode, on stderr (rank 0 only)."""
        if self.enabled:
            print(tr(key, self.lang, **values), file=sys.stderr, flush=True)

    def start_epoch(self, epoch: int, epochs: int, batches: int, start_batch: int = 0) -> None:
        self._epoch = (epoch, epochs)
        self._last_plain = time.perf_counter()
        if self.mode is Mode.RICH:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), transient=True,
            )
            self._bar.start()
            label = tr("train.epoch_label", self.lang, epoch=epoch, epochs=epochs)
            self._task = self._bar.add_task(label, total=batches, completed=start_batch, stats="")

    def update(self, done: int, total: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.mode is Mode.RICH and self._bar is not None:
            stats = tr("train.bar_stats", self.lang, loss=loss, acc=acc, ips=images_per_s)
            self._bar.update(self._task, completed=done, stats=stats)
        elif self.mode is Mode.PLAIN and time.perf_counter() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.perf_counter()
            epoch, epochs = self._epoch
            self._print(tr("train.plain_progress", self.lang, epoch=epoch, epochs=epochs, done=done,
                           total=total, loss=loss, acc=acc, ips=images_per_s))

    def end_epoch(self, row: dict[str, Any], best: bool) -> None:
        self._stop_bar()
        if self.mode is not Mode.QUIET:
            mark = tr("train.best_mark", self.lang) if best else ""
            key = "train.epoch_line" if row.get("val_acc") is not None else "train.epoch_line_noval"
            self._print(tr(key, self.lang, epochs=self._epoch[1], **row) + mark)

    def close(self) -> None:
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
