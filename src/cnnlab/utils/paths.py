"""Paths as the user typed them: shown unresolved, shortened in the middle, and a did-you-mean when missing.

>>> shorten_middle("runs/cats/very/long/folder/name/cat.1234.jpg", 24)
'runs/ca…ame/cat.1234.jpg'
>>> shorten_middle("short.png", 24)
'short.png'
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

ELLIPSIS = "…"


def shown(path: str | os.PathLike[str], cwd: str | None = None) -> str:
    """``path`` as the user would type it: never resolved through symlinks; an absolute path inside
    the current folder (the run remembers its data absolutely) is shown relative to it.

    >>> shown("/home/ana/project/data/cats/1.jpg", cwd="/home/ana/project")
    'data/cats/1.jpg'
    >>> shown("/srv/data/cats/1.jpg", cwd="/home/ana/project")
    '/srv/data/cats/1.jpg'
    """
    text = os.fspath(path)
    if os.path.isabs(text):
        here = os.path.abspath(cwd if cwd is not None else os.getcwd())
        if text.startswith(here.rstrip(os.sep) + os.sep):
            return text[len(here.rstrip(os.sep)) + 1:]
    return text


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with ``…``.

    The end (a file name) matters most: the tail gets two thirds of the room, or the whole last
    path component when that fits; the head keeps the start of the path so the folder stays
    recognisable.
    """
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    room = width - 1
    tail = max(1, (2 * room + 2) // 3)
    cut = max(text.rfind("/"), text.rfind("\\"))
    if cut >= 0 and tail < len(text) - cut <= room:  # keep "/name.jpg" whole
        tail = len(text) - cut
    head = room - tail
    return text[:head] + ELLIPSIS + text[len(text) - tail:]


def missing_path_hint(path: str | os.PathLike[str]) -> str:
    """``"; did you mean 'runs/cats'?"`` for a path that does not exist, or ``""``.

    Walks from the first missing part: the closest name among the deepest existing folder's
    entries replaces it, so ``runs/cast/report.html`` suggests ``runs/cats/report.html``.
    """
    p = Path(os.fspath(path))
    parts = p.parts
    for i in range(len(parts)):
        here = Path(*parts[: i + 1])
        if here.exists():
            continue
        parent = Path(*parts[:i]) if i else Path(".")
        if not parent.is_dir():
            return ""
        try:
            names = [e.name for e in parent.iterdir() if not e.name.startswith(".")]
        except OSError:
            return ""
        close = difflib.get_close_matches(parts[i], names, n=1, cutoff=0.6)
        if not close:
            return ""
        fixed = Path(*parts[:i], close[0], *parts[i + 1:]) if i else Path(close[0], *parts[1:])
        return f"; did you mean '{fixed}'?"
    return ""
