"""Number formatting for the report in the page's language (``en``: 61,706 · 94.60 %; ``pt``: 61.706 · 94,60 %).

>>> integer(61706, "pt"), percent(0.946, "pt"), decimal(0.18181, "en")
('61.706', '94,60 %', '0.1818')
"""

from __future__ import annotations

import math
from typing import Any


def integer(n: int, lang: str) -> str:
    text = f"{int(n):,}"
    return text.replace(",", ".") if lang == "pt" else text


def percent(x: float, lang: str, digits: int = 2) -> str:
    text = f"{100 * float(x):.{digits}f} %"
    return text.replace(".", ",") if lang == "pt" else text


def decimal(x: Any, lang: str, digits: int = 4) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "pt" else text
