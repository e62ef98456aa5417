"""Message catalog: every user-facing explanation in English (``en``) and Brazilian Portuguese (``pt``).

Catalogs live in ``cnnlab/locales/<area>.<lang>.json`` (one file per area, e.g. ``analysis.pt.json``),
so each part of the package owns its own messages. Keys are dotted names; values are
``str.format`` templates.

>>> tr("common.yes", "pt")
'sim'
>>> resolve_lang(None, env={"LANG": "pt_BR.UTF-8"})
'pt'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

LANGS = ("en", "pt")


def resolve_lang(lang: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Pick ``en`` or ``pt``: an explicit value wins, then ``CNNLAB_LANG``, ``LC_ALL``, ``LANG``."""
    if lang:
        code = lang.lower().replace("-", "_")
        if code.startswith("pt"):
            return "pt"
        if code.startswith("en"):
            return "en"
        from cnnlab.errors import CnnlabError

        raise CnnlabError(f"unknown language {lang!r}; use one of: {', '.join(LANGS)}")
    env = os.environ if env is None else env
    for var in ("CNNLAB_LANG", "LC_ALL", "LANG"):
        value = env.get(var, "")
        if value:
            return "pt" if value.lower().startswith("pt") else "en"
    return "en"


@cache
def _catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    folder = resources.files("cnnlab") / "locales"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(f".{lang}.json"):
            merged.update(json.loads(entry.read_text(encoding="utf-8")))
    return merged


def tr(key: str, lang: str = "en", /, **values: Any) -> str:
    """Translate ``key`` into ``lang`` and fill in ``values``; falls back to English, then the key."""
    template = _catalog(lang).get(key) or _catalog("en").get(key) or key
    return template.format(**values) if values else template
