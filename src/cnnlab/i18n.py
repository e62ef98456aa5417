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


# ---------------------------------------------------------------- numbers in the message language
# The one home for number formatting (en: 61,706 · 94.60 % · 0.5; pt: 61.706 · 94,60 % · 0,5).


def integer(n: int, lang: str = "en") -> str:
    """Integer with thousands separators.

    >>> integer(61706, "en"), integer(61706, "pt")
    ('61,706', '61.706')
    """
    text = f"{int(n):,}"
    return text.replace(",", ".") if lang == "pt" else text


def point(text: str, lang: str = "en") -> str:
    """A number already formatted with a decimal point, with the language's decimal mark (pt: comma)."""
    return text.replace(".", ",") if lang == "pt" else text


def percent(x: float, lang: str = "en", digits: int = 2) -> str:
    """``x`` (a fraction) as a percentage: ``percent(0.946, "pt") == '94,60 %'``."""
    return point(f"{100 * float(x):.{digits}f} %", lang)


def decimal(x: Any, lang: str = "en", digits: int = 4) -> str:
    """A float with ``digits`` decimals (general form below 1e-3); ``—`` for NaN, inf or non-numbers.

    >>> decimal(0.18181, "pt"), decimal(float("nan"), "en")
    ('0,1818', '—')
    """
    import math

    try:
        value = float(x)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return point(text, lang)


def short(x: float, lang: str = "en") -> str:
    """Shortest decimal (``:g``): 0.5 (en) or 0,5 (pt)."""
    return point(f"{x:g}", lang)


def count(n: int, noun: str, lang: str = "en") -> str:
    """``n`` and its noun, singular or plural from the catalog (``count.<noun>.one`` / ``.other``).

    >>> count(1, "epoch"), count(14, "epoch", "pt"), count(10000, "image", "pt")
    ('1 epoch', '14 épocas', '10.000 imagens')
    """
    form = "one" if int(n) == 1 else "other"
    return tr(f"count.{noun}.{form}", lang, n=integer(n, lang))
