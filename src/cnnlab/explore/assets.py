"""The page's own files (``static/``): the only files the explore server ever reads for a request."""

from __future__ import annotations

from importlib import resources
from typing import Any

STATIC_FILES = ("index.html", "app.js", "style.css")


def static_file(name: str) -> Any:
    """A file of the package's ``static/`` folder; ``name`` must be one of ``STATIC_FILES``."""
    if name not in STATIC_FILES:
        raise KeyError(name)
    return resources.files("cnnlab.explore") / "static" / name
