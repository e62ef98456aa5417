"""Plain-text rendering of a :class:`~cnnlab.data.inspect.DataReport` (English or Portuguese).

Compute lives in :mod:`cnnlab.data.inspect`; this module only formats.
"""

from __future__ import annotations

from cnnlab.data.inspect import DataReport, split_text
from cnnlab.i18n import integer, tr

SHOW = 20  # skipped files and duplicate groups listed in text mode


def render_text(r: DataReport, lang: str = "en", show: int = SHOW) -> str:
    """The ``cnnlab data`` report as lines of text."""
    t = lambda key, **kw: tr(f"data.inspect.{key}", lang, **kw)  # noqa: E731
    note = split_text(r.split_plan, lang) if r.split_plan else r.split_note
    lines = [f"{t('source')}: {r.description}", f"{t('splits')}: {note}", ""]
    lines += _table(r, t("class"), t("total"), lang)
    w, h = r.sizes["width"], r.sizes["height"]
    if w["min"] == w["max"] and h["min"] == h["max"]:
        sizes = f"{t('sizes')}: {w['min']}x{h['min']}"
    else:
        sizes = (f"{t('sizes')}: {t('width')} {w['min']}-{w['max']} ({t('median')} {w['median']}), "
                 f"{t('height')} {h['min']}-{h['max']} ({t('median')} {h['median']})")
    lines += [
        "",
        f"{t('images')}: {integer(r.total, lang)}",
        sizes,
        f"{t('modes')}: " + ", ".join(f"{k} {integer(v, lang)}" for k, v in r.modes.items()),
        f"{t('formats')}: " + ", ".join(f"{k} {integer(v, lang)}" for k, v in r.formats.items()),
    ]
    lines += _listing(t("skipped"), r.skipped, t("skipped_none"), show, lang)
    if r.ignored:
        lines += _listing(t("ignored"), r.ignored, "", show, lang)
    if r.duplicates:
        groups = [(_group_text(g), "") for g in r.duplicates]
        lines += _listing(t("duplicates"), groups, "", show, lang)
    else:
        lines.append(t("duplicates_none"))
    if r.duplicates_within:
        lines.append(t("duplicates_within", n=r.duplicates_within))
    lines += [f"{t('warning')}: {w}" for w in r.warnings] or [t("ok")]
    return "\n".join(lines)


def _table(r: DataReport, class_label: str, total_label: str, lang: str) -> list[str]:
    splits = list(r.counts)
    width = max([len(class_label), len(total_label)] + [len(c) for c in r.classes[:200]])
    head = f"{class_label:<{width}}" + "".join(f"{s:>10}" for s in splits)
    out = [head]
    for c in r.classes:
        out.append(f"{c:<{width}}" + "".join(f"{integer(r.counts[s].get(c, 0), lang):>10}" for s in splits))
    out.append(f"{total_label:<{width}}" + "".join(f"{integer(sum(r.counts[s].values()), lang):>10}" for s in splits))
    return out


def _listing(title: str, items: list[tuple[str, str]], empty: str, show: int, lang: str) -> list[str]:
    if not items:
        return [empty] if empty else []
    out = [f"{title}: {integer(len(items), lang)}"]
    out += [f"  {p}" + (f"  ({reason})" if reason else "") for p, reason in items[:show]]
    if len(items) > show:
        out.append("  " + tr("data.inspect.more", lang, n=len(items) - show))
    return out


def _group_text(group: list[tuple[str, str]]) -> str:
    """``train:a.jpg = val:b.jpg (+3 more copies)``: one member per split, then a count."""
    shown: dict[str, str] = {}
    for split, path in group:
        shown.setdefault(split, path)
    text = " = ".join(f"{s}:{p}" for s, p in shown.items())
    extra = len(group) - len(shown)
    return text + (f" (+{extra} more copies)" if extra else "")
