"""Every piece of text inside its canvas: ``fit_text(fig)`` shrinks, then shortens, what would be clipped.

Figures are sized from the number of classes, but names and titles have any length (a class called
``golden_retriever_puppies``, a Portuguese title). Before a figure is encoded, each text artist is
measured on the real renderer; one that crosses the canvas edge gets a smaller font (down to
``MIN_SIZE`` points) and, if that is not enough, its middle replaced by ``…``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnlab.utils.paths import shorten_middle

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Text

MIN_SIZE = 5.0  # points: smaller is not readable at the report's resolution
ROUNDS = 6  # layout passes (constrained layout moves things after each change)
SLACK = 0.5  # pixels of tolerance at the canvas edge (antialiasing)


def outside(fig: Figure) -> list[Text]:
    """The visible, non-empty text artists of ``fig`` that cross its canvas edge (after a draw)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = fig.bbox
    hidden = _undrawn_tick_labels(fig)
    out = []
    for text in text_artists(fig):
        if not text.get_visible() or not text.get_text().strip() or id(text) in hidden:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        bb = text.get_window_extent(renderer)
        if bb.x0 < box.x0 - SLACK or bb.y0 < box.y0 - SLACK or bb.x1 > box.x1 + SLACK or bb.y1 > box.y1 + SLACK:
            out.append(text)
    return out


def fit_text(fig: Figure) -> Figure:
    """Shrink, then shorten, every text of ``fig`` that would be clipped; returns ``fig``.

    On return the canvas holds a fresh drawing of the final state (``fig.canvas.buffer_rgba()``).
    """
    for attempt in range(ROUNDS + 1):
        bad = outside(fig)  # draws
        if not bad or attempt == ROUNDS:
            break
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for text in bad:
            bb = text.get_window_extent(renderer)
            room = _room(text, fig)
            need = max(bb.width, 1.0) if bb.width >= bb.height else max(bb.height, 1.0)
            ratio = max(0.5, min(0.92, room / need))
            size = float(text.get_fontsize())
            if size > MIN_SIZE:
                text.set_fontsize(max(MIN_SIZE, size * ratio))
            else:
                label = text.get_text()
                text.set_text(shorten_middle(label, max(1, int(len(label) * ratio) - 1)))
    return fig


def text_artists(fig: Figure) -> list[Text]:
    """Every ``Text`` of ``fig`` that a drawing can show: ``fig.findobj(Text)`` minus the axis texts (tick
    labels, axis labels) of axes whose axis is switched off, which ``Axes.draw`` never draws. Walking
    those makes matplotlib create every tick of every image axes, most of a grid figure's cost.
    """
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.text import Text

    out: list[Text] = []

    def walk(artist: Any) -> None:
        children = artist.get_children()
        if isinstance(artist, Axes) and not artist.axison:
            children = [c for c in children if not isinstance(c, Axis)]
        for child in children:
            walk(child)
        if isinstance(artist, Text):
            out.append(artist)

    walk(fig)
    return out


def _room(text: Text, fig: Figure) -> float:
    """Pixels available along the text's reading direction: from its anchor to the canvas edge it runs into."""
    bb = text.get_window_extent(fig.canvas.get_renderer())  # type: ignore[attr-defined]
    box = fig.bbox
    if bb.width >= bb.height:  # horizontal-ish
        lost = max(0.0, box.x0 - bb.x0) + max(0.0, bb.x1 - box.x1) + max(0.0, box.y0 - bb.y0) + max(0.0, bb.y1 - box.y1)
        return max(1.0, bb.width - lost)
    lost = max(0.0, box.y0 - bb.y0) + max(0.0, bb.y1 - box.y1) + max(0.0, box.x0 - bb.x0) + max(0.0, bb.x1 - box.x1)
    return max(1.0, bb.height - lost)


def _undrawn_tick_labels(fig: Figure) -> set[int]:
    """Tick labels matplotlib keeps but does not draw (ticks outside the view limits)."""
    hidden: set[int] = set()
    for ax in fig.axes:
        if not ax.axison:  # text_artists leaves its axes' texts out already
            continue
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            drawn = {id(t) for t in axis._update_ticks()}  # type: ignore[union-attr]  # what Axis.draw draws
            for tick in ticks:
                if id(tick) not in drawn or not axis.get_visible() or not ax.axison:
                    hidden.update((id(tick.label1), id(tick.label2)))
    return hidden
