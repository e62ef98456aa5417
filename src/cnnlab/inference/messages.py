"""Per-file messages of ``predict`` in the user's language.

``predict`` keeps each file's error as an English sentence (``Prediction.error``: the JSON output and
the Python API stay stable); the table shows it through :func:`localize`, which recognises each
sentence the inference and image-reading code writes and renders it from the catalog
(``use.err.*``), its parts (a path, a did-you-mean) kept as they were.

>>> localize("no such file or folder: cat.jpg; did you mean 'cat.png'?", "pt")
"arquivo ou pasta inexistente: cat.jpg; você quis dizer 'cat.png'?"
"""

from __future__ import annotations

import re

from cnnlab.i18n import tr

_HINT = re.compile(r"; did you mean '(?P<name>[^']*)'\?$")
# (pattern, catalog key); the named groups fill the template; "reason" is localised in turn
_SENTENCES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), k) for p, k in (
    (r"^no such file or folder: (?P<path>.+)$", "use.err.missing"),
    (r"^no image files \((?P<exts>.*)\) in folder (?P<path>.+)$", "use.err.empty_folder"),
    (r"^no image files match the pattern (?P<pattern>.+)$", "use.err.no_match"),
    (r"^cannot read image '(?P<path>.*)': (?P<reason>.+)$", "use.err.cannot_read"),
    (r"^cannot read (?P<path>.+?): (?P<reason>.+)$", "use.err.cannot_read"),
    (r"^no such file$", "use.err.reason.missing"),
    (r"^is a folder, expected an image file$", "use.err.reason.folder"),
    (r"^empty file \(0 bytes\)$", "use.err.reason.empty"),
    (r"^not an image: the file holds text \((?P<size>[0-9,]+) bytes\)$", "use.err.reason.text"),
    (r"^not a valid (?P<ext>\S+) image: unknown or corrupt header \(the file holds (?P<kind>.+), (?P<size>[0-9,]+) bytes\)$",
     "use.err.reason.header"),
    (r"^truncated or corrupt image data \((?P<detail>.*)\)$", "use.err.reason.truncated"),
    (r"^unsupported image format '(?P<ext>[^']*)'; use one of (?P<exts>.*)$", "use.err.reason.format"),
))


def localize(text: str | None, lang: str) -> str:
    """``text`` in ``lang`` when it is one of the known sentences, else unchanged (English)."""
    if not text or lang == "en":
        return text or ""
    hint = ""
    found = _HINT.search(text)
    if found:
        hint = tr("use.err.did_you_mean", lang, name=found.group("name"))
        text = text[: found.start()]
    for pattern, key in _SENTENCES:
        match = pattern.match(text)
        if match:
            values = match.groupdict()
            if "reason" in values:
                values["reason"] = localize(values["reason"], lang)
            return tr(key, lang, **values) + hint
    return text + (hint if found else "")
