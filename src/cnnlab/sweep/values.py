"""The text of ``VALUES`` in ``-p NAME=VALUES``: separators, quotes, and the options whose one value is
itself a comma list (``batch_schedule``, ``lr_steps``: ``cnnlab.train.config.MILESTONE_FIELDS``).

``|`` separates the values when the text has one outside quotes, else ``,`` does; a quoted value
(``'...'`` or ``"..."``) keeps its separators, as in Hydra's choice sweeps. A schedule is read by the
trainer's own ``parse_milestones`` and kept as text (``"10:5,20:5"``, ``"none"``): an Optuna categorical
choice; ``config_options`` turns it back into the config-file form.

>>> split_values("none|10:5,20:5", list_valued=True)
[('none', False), ('10:5,20:5', False)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.train.config import MILESTONE_FIELDS, milestones_text, parse_milestones

QUOTES = "'\""


def split_values(text: str, list_valued: bool = False, where: str = "--param") -> list[tuple[str, bool]]:
    """``VALUES`` text -> ``[(value text, quoted?)]``: split on ``|`` when the text has one outside quotes,
    else on ``,`` outside quotes (for a ``list_valued`` option, whose one value is a comma list, only when
    some value is quoted); quotes and the spaces around each value are removed.

    >>> split_values("0.1, 0.2"), split_values("10:5,20:5|none", list_valued=True)
    ([('0.1', False), ('0.2', False)], [('10:5,20:5', False), ('none', False)])
    >>> split_values("'10:5,20:5',none", list_valued=True)  # Hydra style: commas outside quotes separate
    [('10:5,20:5', True), ('none', False)]
    """
    probe = _split(text, "|", where, strict=False)
    if len(probe) > 1 or (list_valued and not any(quoted for _, quoted in _split(text, ",", where, strict=False))):
        return _split(text, "|", where)
    return _split(text, ",", where)


def _split(text: str, sep: str, where: str, strict: bool = True) -> list[tuple[str, bool]]:
    """Split on ``sep`` outside quotes; a quote opens only at the start of a value. ``strict=False``
    (a probe) accepts text after a closing quote."""
    items: list[tuple[str, bool]] = []
    current, quote, quoted = "", "", False
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                current += ch
        elif ch == sep:
            items.append((current if quoted else current.strip(), quoted))
            current, quoted = "", False
        elif quoted and strict:
            if not ch.isspace():
                raise CnnlabError(f"{where}: {text!r}: {ch!r} after a closing quote; put the separator "
                                  f"{sep!r} right after the quoted value")
        elif ch in QUOTES and not current.strip():
            quote, quoted, current = ch, True, ""
        else:
            current += ch
    if quote:
        raise CnnlabError(f"{where}: {text!r}: the quote {quote} is not closed; close it, or separate values "
                          "that contain commas with | (e.g. batch_schedule='none|10:5,20:5')")
    items.append((current if quoted else current.strip(), quoted))
    return items


def schedule_value(name: str, value: Any, where: str = "--param") -> str:
    """One value of a list-valued option (``batch_schedule``, ``lr_steps``), read by the trainer's own
    parser and written back as text (``"10:5,20:5"``, ``"none"``): an Optuna categorical choice.

    >>> schedule_value("batch_schedule", " 10:5, 20:2.5 "), schedule_value("lr_steps", None)
    ('10:5,20:2.5', 'none')
    """
    if value is None:
        return "none"
    try:
        return milestones_text(parse_milestones(name, value, where=where))
    except CnnlabError as exc:
        raise CnnlabError(f"{exc} (the value {value!r}; separate several values of {name} with |, "
                          f"e.g. -p {name}='none|10:5,20:5')") from None


def config_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's training options as a config file writes them (``"10:5,20:5"`` -> ``[[10, 5], [20, 5]]``,
    ``"none"`` -> None); spec paths are left out.

    >>> config_options({"lr": 0.1, "batch_schedule": "1:2", "lr_steps": "none", "layers.0.filters": 8})
    {'lr': 0.1, 'batch_schedule': [[1, 2]], 'lr_steps': None}
    """
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("layers"):
            continue
        if name in MILESTONE_FIELDS and isinstance(value, str):
            value = [list(pair) for pair in parse_milestones(name, value)] or None
        out[name] = value
    return out
