"""JSON answers of the explore page: network info, thumbnails, feature-map pages, layer details, Grad-CAM,
top patches. Feature maps travel as uint8 bytes (base64) scaled per channel, with each channel's range.

The layer explanation is the one ``cnnlab summary`` prints (``cnnlab.analysis.render.explanation``).
"""

from __future__ import annotations

import base64
import contextlib
import io
from typing import Any

import numpy as np
import torch

from cnnlab.analysis.render import explanation, human_count, rf_text, shape_text
from cnnlab.errors import CnnlabError
from cnnlab.i18n import tr

PER_PAGE = 8  # feature maps per layer column and page
FLAT_PAGE = 256  # values per page of a flat (dense) layer
MAP_PIXELS = 64  # a heatmap is drawn 64 CSS pixels wide: larger maps are sent block-averaged
MAX_FILTERS = 64
TOP_WEIGHTS = 16
AUTO_CAM_MACS = 200_000_000  # below this, Grad-CAM is drawn with every image; above, on request
PATCH_IMAGES = 256  # validation images searched for a channel's top patches
UI_KEYS = ("images", "upload", "drop", "network", "input", "probabilities", "layer", "neuron", "cam", "patches",
           "page", "of", "channel", "pick_layer", "pick_neuron", "window", "kernel", "bias", "sum", "activation",
           "model_value", "partial", "rest", "correct", "wrong", "unlabelled", "filters", "weights", "class",
           "untrained", "static", "not_static", "loading", "pooled", "branch", "shortcut", "terms",
           "rf", "params", "macs", "output", "chosen", "mean", "error", "compute")


def png(pixels: np.ndarray, scale: int = 1) -> str:
    """uint8 ``(C, H, W)`` (or ``(H, W)``) -> a PNG data URI, each pixel repeated ``scale`` times."""
    from PIL import Image

    arr = pixels if pixels.ndim == 2 else (pixels[0] if pixels.shape[0] == 1 else np.transpose(pixels, (1, 2, 0)))
    if scale > 1:
        arr = np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.uint8).tobytes()).decode("ascii")


def _scaled(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else 1.0
    return np.round((values - lo) / span * 255).astype(np.uint8), lo, hi


def info(ex: Any) -> dict[str, Any]:
    a, lang = ex.analysis, ex.lang
    layers = []
    for row in a.layers:
        layers.append({"index": row.index, "kind": row.kind, "title": row.title, "shape": list(row.output_shape),
                       "shape_text": shape_text(row.output_shape), "spatial": len(row.output_shape) == 3})
    return {"name": ex.name or a.name, "untrained": ex.untrained, "notes": list(ex.notes), "classes": ex.classes,
            "input_shape": list(ex.input_shape), "lang": lang, "layers": layers,
            "auto_cam": int(a.total_macs) < AUTO_CAM_MACS,
            "strings": {k: tr(f"explore.ui.{k}", lang) for k in UI_KEYS}}


def thumb(ex: Any, key: str) -> dict[str, Any]:
    e = ex.entries[key]
    label = ex.classes[e.label] if e.label is not None else e.label_name
    pred = ex.classes[e.predicted] if e.predicted is not None else None
    scale = max(1, 56 // max(e.pixels.shape[1:]))
    small = e.pixels if max(e.pixels.shape[1:]) <= 96 else _shrink(e.pixels, 64)
    return {"id": key, "label": label, "predicted": pred, "source": e.source,
            "correct": None if e.label is None else e.label == e.predicted, "png": png(small, scale)}


def _shrink(pixels: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else np.transpose(pixels, (1, 2, 0)))
    img.thumbnail((size, size))
    arr = np.asarray(img)
    return arr[None] if arr.ndim == 2 else np.transpose(arr, (2, 0, 1))


def image(ex: Any, key: str, fwd: Any, per_page: int) -> dict[str, Any]:
    e = ex.entries[key]
    probs = fwd.probs
    scale = max(1, 112 // max(e.pixels.shape[1:]))
    return {"id": key, "input": png(e.pixels, scale), "scale": scale, "probs": [float(p) for p in probs],
            "predicted": int(probs.argmax()), "label": e.label, "source": e.source,
            "layers": [maps(out[0], i, 0, per_page) for i, out in enumerate(fwd.outs)]}


def maps(out: torch.Tensor, layer: int, page: int, per_page: int = PER_PAGE) -> dict[str, Any]:
    """One page of a layer's output: ``per_page`` channels of a map, or ``FLAT_PAGE`` values of a vector."""
    values = out.detach().float().cpu().numpy()  # (C, H, W) or (N,)
    if values.ndim == 3:
        count, size = values.shape[0], per_page
    else:
        values = values.reshape(-1)
        count, size = values.size, FLAT_PAGE
    pages = max(1, -(-count // size))
    if not 0 <= page < pages:
        raise CnnlabError(f"layer {layer} has {pages} page(s) of maps; page {page} does not exist")
    first = page * size
    chunk = values[first:first + size]
    result: dict[str, Any] = {"layer": layer, "page": page, "pages": pages, "count": count, "first": first}
    if values.ndim == 3:
        shown = _thumbnail(chunk)  # (c, dh, dw): what a 64-pixel heatmap can show
        scaled = [_scaled(ch) for ch in shown]
        result.update(spatial=True, h=int(values.shape[1]), w=int(values.shape[2]),
                      dh=int(shown.shape[1]), dw=int(shown.shape[2]),
                      data=[_b64(s) for s, _, _ in scaled], lo=[float(ch.min()) for ch in chunk],
                      hi=[float(ch.max()) for ch in chunk])
    else:
        result.update(spatial=False, values=[float(v) for v in chunk])
    return result


def _thumbnail(maps: np.ndarray, size: int = MAP_PIXELS) -> np.ndarray:
    """``(c, H, W)`` -> at most ``size`` pixels a side, each pixel the mean of its block (a smaller
    map is returned as it is). Only the picture shrinks: clicks address the full map."""
    c, h, w = maps.shape
    fh, fw = -(-h // size), -(-w // size)  # block size, rounded up
    if fh == 1 and fw == 1:
        return maps
    ph, pw = -h % fh, -w % fw
    padded = np.pad(maps, ((0, 0), (0, ph), (0, pw)), mode="edge")  # (c, H+ph, W+pw)
    return padded.reshape(c, (h + ph) // fh, fh, (w + pw) // fw, fw).mean(axis=(2, 4))


def layer(ex: Any, index: int) -> dict[str, Any]:
    row = ex.analysis.layers[index]
    lang = ex.lang
    result: dict[str, Any] = {
        "index": index, "kind": row.kind, "title": row.title, "shape_text": shape_text(row.output_shape),
        "explanation": explanation(row), "params": row.params, "macs": row.macs,
        "params_text": f"{row.params:,}".replace(",", "." if lang == "pt" else ","),
        "macs_text": human_count(row.macs, lang) if row.macs else "—", "rf": rf_text(row) or "—",
    }
    module = ex.layers[index]
    conv = _find(module, "conv")
    linear = _find(module, "linear")
    if conv is not None and row.kind == "conv":
        # a connection-table conv (LeNet-1998) has no single kernel tensor: no filters then
        with contextlib.suppress(CnnlabError):
            result["filters"] = _filters(ex, index)
    elif linear is not None:
        result["weights"] = _strongest(linear.weight.detach().float().cpu().numpy(), _source_shape(ex, index),
                                       ex.classes if row.kind == "output" else None)
    return result


def _source_shape(ex: Any, index: int) -> tuple[int, ...]:
    """The last map shape before ``index`` (what a dense layer's inputs were flattened from)."""
    shapes = [tuple(ex.input_shape)] + [tuple(r.output_shape) for r in ex.analysis.layers[:index]]
    flat = shapes[-1]
    for shape in reversed(shapes):
        if len(shape) == 3:
            return shape if int(np.prod(shape)) == int(np.prod(flat)) else flat
    return flat


def _find(module: torch.nn.Module, name: str) -> Any:
    return dict(module.named_children()).get(name) if isinstance(module, torch.nn.Sequential) else None


def _filters(ex: Any, index: int) -> dict[str, Any]:
    from cnnlab.visualize import filter_grid

    grid = filter_grid(ex.model, index, max_filters=MAX_FILTERS)
    tiles = grid.tiles()  # (F, kh, kw[, 3]) or (F, kh, C*(kw+1)-1) with NaN gaps, in [0, 1]
    data = np.where(np.isnan(tiles), -1.0, np.round(tiles, 3))
    return {"colour": grid.colour, "shown": grid.shown_filters, "total": grid.total_filters,
            "channels": grid.shown_channels, "total_channels": grid.total_channels, "tiles": data.tolist()}


def _strongest(weight: np.ndarray, in_shape: tuple[int, ...], classes: list[str] | None) -> list[dict[str, Any]]:
    """The ``TOP_WEIGHTS`` weights of largest magnitude: (output unit, input index and its map position)."""
    flat = np.abs(weight).reshape(-1)  # (m*n,)
    order = np.argsort(-flat, kind="stable")[:TOP_WEIGHTS]
    n = weight.shape[1]
    rows = []
    for k in order:
        j, i = divmod(int(k), n)
        where = list(np.unravel_index(i, in_shape)) if len(in_shape) == 3 and int(np.prod(in_shape)) == n else [i]
        rows.append({"unit": j, "unit_name": classes[j] if classes and j < len(classes) else str(j),
                     "input": i, "where": [int(w) for w in where], "weight": float(weight[j, i])})
    return rows


def cam(ex: Any, key: str, target: int | None, layer_index: int | None) -> dict[str, Any]:
    from cnnlab.visualize import grad_cam

    fwd = ex.forward(key)
    if target is not None and not 0 <= target < len(ex.classes):
        raise CnnlabError(f"unknown class {target}: the model has classes 0..{len(ex.classes) - 1}")
    res = grad_cam(ex.model, fwd.x[0], target, layer=layer_index)
    heat = np.round(res.heatmap * 255).astype(np.uint8)  # (H, W)
    return {"target": res.target, "predicted": res.predicted, "probability": res.probability, "layer": res.layer,
            "h": int(heat.shape[0]), "w": int(heat.shape[1]), "data": _b64(heat)}


def patches(ex: Any, index: int, channel: int, top: int) -> dict[str, Any]:
    """The validation images whose ``channel`` of layer ``index`` fires most, cropped to the receptive field."""
    from cnnlab.explore.arith import rf_box

    keys = [k for k in ex.entries if k.startswith("v")][:PATCH_IMAGES]
    if not keys:
        raise CnnlabError("no validation images to search: explore a run whose data can be reloaded, or pass --data")
    pixels = np.stack([ex.entries[k].pixels for k in keys])  # (n, C, H, W)
    best = []
    with torch.no_grad():
        for s in range(0, len(keys), 64):
            h = ex.preprocess(pixels[s:s + 64])
            for layer_module in ex.layers[:index + 1]:
                h = layer_module(h)
            if not 0 <= channel < h.shape[1]:
                raise CnnlabError(f"layer {index} has {h.shape[1]} channels; channel {channel} does not exist")
            ch = h[:, channel]  # (b, H', W') or (b,)
            flat = ch.reshape(ch.shape[0], -1)  # (b, H'*W')
            vals, pos = flat.max(dim=1)
            for b in range(len(vals)):
                y, x = divmod(int(pos[b]), ch.shape[2]) if ch.dim() == 3 else (0, 0)
                best.append((float(vals[b]), s + b, y, x, ch.dim() == 3))
    best.sort(key=lambda t: -t[0])
    out = []
    for value, k, y, x, spatial in best[:top]:
        t, left, b, r = rf_box(ex, index, y, x, spatial)
        crop = pixels[k][:, t:b + 1, left:r + 1]
        scale = max(1, 48 // max(crop.shape[1:]))
        out.append({"id": keys[k], "value": value, "y": y, "x": x, "box": [t, left, b, r], "png": png(crop, scale)})
    return {"layer": index, "channel": channel, "searched": len(keys), "patches": out}
