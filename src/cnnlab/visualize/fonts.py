"""Text in figures that any class name can reach: CJK, Arabic, emoji... drawn or cleanly replaced.

Class names come from folder names and CSV labels, so a figure may have to draw any script.
:func:`prepare_text` runs on every figure before it is encoded (``_common.figure_png``):

- every text uses the first installed fonts of :data:`FALLBACKS` as one family list, so matplotlib
  (3.6+) takes each glyph from the first font that has it (DejaVu Sans, then Noto Sans CJK, ...);
- a character no installed font has is written as ``[U+732B]`` instead of an empty box, and
  matplotlib prints no "Glyph missing" warning;
- ``$`` is never read as math, so a class named ``$x`` cannot break the drawing.

Installing a CJK font (Debian: ``apt-get install fonts-noto-cjk``) makes the names draw as such.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# tried in order; only installed ones are used (matplotlib warns about missing family names)
FALLBACKS = (
    "DejaVu Sans", "Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Source Han Sans", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Noto Sans Arabic",
    "Noto Sans Hebrew", "Noto Sans Devanagari", "Noto Sans Thai", "Arial Unicode MS", "Microsoft YaHei",
    "PingFang SC", "Hiragino Sans", "Apple SD Gothic Neo", "Malgun Gothic", "Noto Color Emoji",
)


@functools.cache
def _installed() -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """(family names, one FT2Font per family) of the FALLBACKS that are installed."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    by_name: dict[str, str] = {}
    for entry in font_manager.fontManager.ttflist:
        if entry.name in FALLBACKS and (entry.name not in by_name or entry.weight == 400 and entry.style == "normal"):
            by_name[entry.name] = entry.fname
    names, fonts = [], []
    for name in FALLBACKS:
        if name in by_name:
            try:
                fonts.append(FT2Font(by_name[name]))
                names.append(name)
            except (OSError, RuntimeError):  # an unreadable font file: skip it
                continue
    return tuple(names) or ("DejaVu Sans",), tuple(fonts)


def families() -> list[str]:
    """The installed fallback families, in order (at least DejaVu Sans, which matplotlib ships)."""
    return list(_installed()[0])


@functools.lru_cache(maxsize=65536)
def covered(char: str) -> bool:
    """Whether an installed fallback font has a glyph for ``char``."""
    if char.isspace() or not char.isprintable():
        return char.isspace()
    return any(font.get_char_index(ord(char)) for font in _installed()[1])


def drawable(text: str) -> str:
    """``text`` with each character no font can draw written as ``[U+XXXX]``."""
    if all(covered(c) for c in text):
        return text
    return "".join(c if covered(c) else f"[U+{ord(c):04X}]" for c in text)


def prepare_text(fig: Figure) -> None:
    """Make every text of ``fig`` drawable with the installed fonts (see the module docstring)."""
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    from cnnlab.visualize.fit import text_artists

    family = families()
    for ax in fig.axes:
        if not ax.axison:  # its ticks are never drawn (and asking for them would create them all)
            continue
        for axis in (ax.xaxis, ax.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(formatter, FixedFormatter):  # tick labels given as strings (class names)
                    formatter.seq = [drawable(str(s)) for s in formatter.seq]
                elif isinstance(formatter, FuncFormatter) and not getattr(formatter.func, "_drawable", False):
                    formatter.func = _drawable_func(formatter.func)
        ax.tick_params(labelfontfamily=family)
    for text in text_artists(fig):
        text.set_fontfamily(family)
        text.set_parse_math(False)
        content = text.get_text()
        if content:
            text.set_text(drawable(content))


def _drawable_func(func: Any) -> Any:
    def wrapped(x: Any, pos: Any = None) -> str:
        return drawable(str(func(x, pos)))

    wrapped._drawable = True  # type: ignore[attr-defined]
    return wrapped
