"""``cnnlab explore RUN --static DIR``: the explore page as plain files that work without a server.

The page's answers are precomputed for the session's images (``--static-images``) and stored in
``DIR/static/data.js`` as ``window.CNNLAB_STATIC = {"answers": {"/api/...": ...}}``; the page reads
them instead of calling a server. Precomputed: the network, every image's forward pass (feature-map
pages up to ``max_pages`` per layer), every layer's explanation, filters and weights, and Grad-CAM
for every class (up to ``max_cam_classes``). Not precomputed: single-neuron arithmetic, top patches
and uploads (the page says so and names ``cnnlab explore`` for them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.explore.assets import STATIC_FILES, static_file
from cnnlab.utils.io import atomic_write_text

DATA_SCRIPT = '<script src="static/data.js"></script>\n<script src="static/app.js"></script>'


def static_answers(ex: Any, *, max_pages: int = 4, max_cam_classes: int = 10) -> dict[str, Any]:
    """Every answer the static page can give, keyed by the API path the server would serve it on."""
    answers: dict[str, Any] = {"/api/info": ex.info(), "/api/images": ex.images()}
    for i in range(len(ex.layers)):
        answers[f"/api/layer/{i}"] = ex.layer(i)
    for key in ex.image_ids():
        page = ex.image(key)
        answers[f"/api/image/{key}"] = page
        for i, first in enumerate(page["layers"]):
            for p in range(min(first["pages"], max_pages)):
                answers[f"/api/maps/{key}/{i}/{p}"] = first if p == 0 else ex.maps(key, i, p)
        classes = range(len(ex.classes)) if len(ex.classes) <= max_cam_classes else [page["predicted"]]
        for k in classes:
            try:
                answers[f"/api/cam/{key}?class={k}"] = ex.cam(key, k)
            except CnnlabError:  # no conv layer: the page shows the message of the live server instead
                break
    return answers


def export_static(ex: Any, out: str | os.PathLike[str], **limits: Any) -> Path:
    """Write ``out/index.html`` and ``out/static/`` (app, style, data); returns the index path."""
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise CnnlabError(f"--static {root}: this is a file; give a folder (it is created if missing)")
    (root / "static").mkdir(parents=True, exist_ok=True)
    answers = static_answers(ex, **limits)
    data = "window.CNNLAB_STATIC = " + json.dumps({"answers": answers}, separators=(",", ":")) + ";\n"
    atomic_write_text(root / "static" / "data.js", data)
    for name in STATIC_FILES:
        text = static_file(name).read_text(encoding="utf-8")
        if name == "index.html":
            text = text.replace('<script src="static/app.js"></script>', DATA_SCRIPT)
            atomic_write_text(root / name, text)
        else:
            atomic_write_text(root / "static" / name, text)
    return root / "index.html"
