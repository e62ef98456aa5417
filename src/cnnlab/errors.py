"""Errors a user can fix. The CLI prints them without a traceback and exits with ``exit_code``.

Every message says what is wrong, where (layer index, file, key), what was received, and the fix.

>>> raise SpecError("layer 3 (conv): unknown key 'filter'; did you mean 'filters'?")
Traceback (most recent call last):
...
cnnlab.errors.SpecError: layer 3 (conv): unknown key 'filter'; did you mean 'filters'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CnnlabError(Exception):
    """Base class of every error meant for the user (exit code 2 unless a subclass says otherwise)."""

    exit_code: int = 2


class SpecError(CnnlabError):
    """The network spec cannot work (one or several problems, each with a layer index)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems if problems is not None else [message]


class DataError(CnnlabError):
    """A dataset or image cannot be read, or its structure is wrong."""


class RunError(CnnlabError):
    """A run folder is missing, incomplete, unsafe (pickled) or in the wrong state."""


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close.

    >>> did_you_mean("dense", ["conv", "dense", "pool"])
    "; did you mean 'dense'?"
    >>> did_you_mean("xyz", ["conv"])
    ''
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
