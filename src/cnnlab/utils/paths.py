"""Paths as the user typed them: shown unresolved, shortened in the middle, and a did-you-mean when missing.

>>> shorten_middle("runs/cats/very/long/folder/name/cat.1234.jpg", 24)
'runs/ca…ame/cat.1234.jpg'
>>> shorten_middle("short.png", 24)
'short.png'

Output paths are checked before any work: a run folder, a figure, a CSV or a model file must be
creatable where it is named, so a typo costs a message at once, not after the data has loaded.

>>> import tempfile, pathlib
>>> base = pathlib.Path(tempfile.mkdtemp())
>>> check_output_folder(base / "runs" / "a")   # may be created
>>> check_output_folder(base / ("x" * 300))
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: cannot write to ...: the name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' has 300 bytes, more than this filesystem's limit of 255; choose a shorter name
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from cnnlab.errors import CnnlabError

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


def check_output_folder(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Raise ``CnnlabError`` unless ``path`` is an existing writable folder or can be created as one."""
    p = Path(path)
    _check_names(p, option)
    if p.exists() and not p.is_dir():
        raise CnnlabError(f"cannot write to {option} {_show(p)}: it is a file, not a folder; choose a folder name")
    _check_writable_ancestor(p if p.is_dir() else p.parent, p, option)


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Raise ``CnnlabError`` unless the file ``path`` can be written (replacing a file is fine)."""
    p = Path(path)
    _check_names(p, option)
    if p.is_dir():
        raise CnnlabError(f"cannot write to {option} {_show(p)}: it is a folder; name a file inside it")
    if p.exists() and not os.access(p, os.W_OK):
        raise CnnlabError(f"cannot write to {option} {_show(p)}: the file is read-only; choose another path")
    _check_writable_ancestor(p.parent, p, option)


def _check_names(p: Path, option: str) -> None:
    anchor = _nearest_existing(p)
    name_max, path_max = _limits(anchor)
    for part in p.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            short = part if len(part) <= 80 else part[:73] + "..."
            raise CnnlabError(f"cannot write to {option} {_show(p)}: the name '{short}' has {size} bytes, more than "
                              f"this filesystem's limit of {name_max}; choose a shorter name")
    size = len(os.fsencode(str(p.absolute())))
    if size >= path_max:
        raise CnnlabError(f"cannot write to {option} {_show(p)}: the path has {size} bytes, more than the limit of "
                          f"{path_max - 1}; choose a shorter path")


def _check_writable_ancestor(folder: Path, p: Path, option: str) -> None:
    anchor = _nearest_existing(folder)
    if not anchor.is_dir():
        raise CnnlabError(f"cannot write to {option} {_show(p)}: {_show(anchor)} is a file, so no folder can be made "
                          "inside it; choose another path")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise CnnlabError(f"cannot write to {option} {_show(p)}: the folder {_show(anchor)} is not writable; "
                          "choose a folder you can write to")


def _nearest_existing(p: Path) -> Path:
    q = p.absolute()
    while not _exists(q) and q != q.parent:
        q = q.parent
    return q


def _exists(p: Path) -> bool:
    try:
        os.stat(p)
    except (OSError, ValueError):  # missing, a name too long, a loop, a NUL byte
        return False
    return True


def _limits(anchor: Path) -> tuple[int, int]:
    folder = anchor if anchor.is_dir() else anchor.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or an odd filesystem
        return 255, 4096


def _show(p: Path) -> str:
    return shorten_middle(shown(p), 120)
