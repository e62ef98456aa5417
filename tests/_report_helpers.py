"""A real, tiny run folder for the report tests: trained for one short epoch on synthetic squares.

Not a test module. ``tiny_run(path)`` returns ``(run_path, bundle)``.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np

SPEC = {
    "name": "tiny-squares",
    "description": "two classes: a bright square somewhere, or nothing",
    "input": [3, 16, 16],
    "layers": [
        {"conv": {"filters": 4, "kernel": 3, "padding": 1}},
        {"pool": 2},
        {"conv": {"filters": 6, "kernel": 3, "padding": 1}},
        "flatten",
        {"dense": 8},
        {"output": 2},
    ],
}


def squares_bundle(n: int = 96, seed: int = 0):  # -> DataBundle
    from cnnlab.data import DataBundle, ImageSet

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(n, 3, 16, 16), dtype=np.uint8)
    labels = np.arange(n) % 2
    for i in np.flatnonzero(labels):
        r, c = rng.integers(0, 11, 2)
        images[i, :, r:r + 5, c:c + 5] = 230
    sources = [f"img{i}.png" for i in range(n)]
    cut = n * 3 // 4
    train = ImageSet(images[:cut], labels[:cut], ["empty", "square"], sources[:cut])
    val = ImageSet(images[cut:], labels[cut:], ["empty", "square"], sources[cut:])
    return DataBundle(train=train, val=val, test=None, classes=["empty", "square"], mean=(0.2, 0.2, 0.2),
                      std=(0.3, 0.3, 0.3), input_shape=(3, 16, 16), description="synthetic squares")


def tiny_run(folder: Path) -> tuple[Path, object]:
    """Train SPEC for 2 short epochs into ``folder`` (no report) and return the run folder and the data."""
    from cnnlab.workflows import train

    bundle = squares_bundle()
    train(SPEC, bundle, out=folder, quiet=True, report=False, epochs=2, batch_size=24, lr=0.01, threads=1)
    return folder, bundle


class PageParser(HTMLParser):
    """Collects the facts the report tests check: layer rows, images, links, ids."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_rows: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.scripts = 0
        self.html_lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.html_lang = a.get("lang", "")
        if tag == "tr" and "layer" in a.get("class", "").split():
            self.layer_rows.append(a)
        if tag == "img":
            self.images.append(a)
        if tag == "script":
            self.scripts += 1
        for key in ("href", "src"):
            if key in a and not a[key].startswith(("#", "data:")):
                self.links.append(a[key])


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    return parser
