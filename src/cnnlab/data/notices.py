"""One-line notices for what cnnlab does to images that a newcomer would not expect.

Colour photos read as grey because the network's input has one channel, 500×375 photos shrunk to
28×28, grey digits copied to three channels: all correct, all silent until now. ``shape_notices``
compares the shape the images have (``natural``) with the network's input and says, in one line
each, what will happen and how to change it.

>>> shape_notices((3, 375, 500), (1, 28, 28), "crop")[0]
'notice: the images are colour, the network takes grey 1×28×28 input: each is converted to grey; to keep colour, give the spec input: [3, 28, 28]'
"""

from __future__ import annotations

import os

from cnnlab.i18n import tr

SMALLER = 0.5  # images more than twice the input's size (or less than half) get the resize notice


def shape_notices(native: tuple[int, int, int] | None, input_shape: tuple[int, int, int], resize: str,
                  lang: str = "en") -> list[str]:
    """The notices for images of typical shape ``native`` fed to a network taking ``input_shape``."""
    if native is None:
        return []
    c, h, w = (int(v) for v in input_shape)
    nc, nh, nw = native
    out = []
    if nc == 3 and c == 1:
        out.append(tr("notice.to_grey", lang, h=h, w=w))
    elif nc == 1 and c == 3:
        out.append(tr("notice.to_colour", lang, h=h, w=w))
    if (nh, nw) != (h, w):
        shrink = nh * nw > (h * w) / SMALLER ** 2
        grow = nh * nw < (h * w) * SMALLER ** 2
        reshaped = abs(nh / max(nw, 1) - h / w) > 0.01  # another aspect ratio: crop, pad or stretch shows
        if shrink or grow or reshaped:
            out.append(tr("notice.resize", lang, nh=nh, nw=nw, h=h, w=w, how=tr(f"notice.resize.{resize}", lang)))
    return [tr("notice.line", lang, text=text) for text in out]


def sample_notice(source: object, val_split: float, test_split: float | None = None, seed: int | None = None,
                  lang: str = "en") -> list[str]:
    """The bundled sample ignores the split options (its held-out digits never change): say so when one
    was set to something else (``None``: the command has no such option)."""
    from cnnlab.data.api import SAMPLE_SEED, SAMPLE_SPLIT

    if str(source).strip().lower() != "sample" or os.path.exists(str(source)):
        return []
    test = SAMPLE_SPLIT[1] if test_split is None else test_split
    if (val_split, test) == SAMPLE_SPLIT and seed in (None, SAMPLE_SEED):
        return []
    return [tr("notice.line", lang, text=tr("notice.sample_split", lang, val=SAMPLE_SPLIT[0], test=SAMPLE_SPLIT[1],
                                              seed=SAMPLE_SEED))]


def data_notices(source: str | os.PathLike[str], input_shape: tuple[int, int, int], resize: str,
                 lang: str = "en") -> list[str]:
    """``shape_notices`` for a data source: its typical image read from file headers or array shapes."""
    from cnnlab.data.api import native_shape

    try:
        native = native_shape(source)
    except Exception:  # noqa: BLE001 - a notice must never stop anything; load_data reports real problems
        return []
    return shape_notices(native, input_shape, resize, lang)


def file_notices(files: list[str], input_shape: tuple[int, int, int], resize: str, lang: str = "en") -> list[str]:
    """``shape_notices`` for image files about to be predicted."""
    from cnnlab.data.natural import typical_shape

    return shape_notices(typical_shape(files), input_shape, resize, lang)
