"""The explore session: one model, its analysis, a set of images and their activations (torch).

Everything the page asks is answered here as plain JSON-ready dicts; the server and the static
export only move them. Activations of the last few images are cached, so a layer page or a neuron
click costs no new forward pass.

>>> ex = open_explorer("keras-mnist")          # a spec: random weights, marked untrained
>>> ex.untrained, len(ex.image_ids())
(True, 0)
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError, DataError, RunError
from cnnlab.explore import arith, payload
from cnnlab.i18n import tr

MAX_IMAGES = 48  # validation thumbnails on the page
MAX_UPLOADS = 32  # uploaded images kept (oldest dropped)
CACHE = 4  # images whose activations are kept
CHANNELS_LAST_MACS = 100_000_000  # from this many MACs per image on, the model runs channels-last


@dataclass
class Entry:
    """One image the page can show: uint8 pixels ``(C, H, W)`` as the network sees them."""

    pixels: np.ndarray
    label: int | None
    source: str
    predicted: int | None = None
    label_name: str | None = None  # the data's own class name (also when the model has no such class)


@dataclass
class Forward:
    """Input ``(1, C, H, W)`` and every layer's output for one image (``outs[i]`` is ``(1, ...)``)."""

    x: torch.Tensor
    outs: list[torch.Tensor]
    probs: np.ndarray


@dataclass
class Explorer:
    """A model to explore plus what it is explained with (see :func:`open_explorer`)."""

    model: torch.nn.Module
    analysis: Any
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    resize: str = "crop"
    untrained: bool = False
    notes: list[str] = field(default_factory=list)
    name: str = ""
    run_path: Path | None = None
    lang: str = "en"
    entries: OrderedDict[str, Entry] = field(default_factory=OrderedDict)
    _cache: OrderedDict[str, Forward] = field(default_factory=OrderedDict)
    _uploads: int = 0
    channels_last: bool = False

    def __post_init__(self) -> None:
        # large conv nets run ~30 % faster on CPU in channels-last layout; values are the same model's
        self.channels_last = int(getattr(self.analysis, "total_macs", 0) or 0) >= CHANNELS_LAST_MACS
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ images

    def add_images(self, images: Any, max_images: int = MAX_IMAGES) -> None:
        """Add up to ``max_images`` evenly spaced images of an ``ImageSet`` and predict them."""
        n = len(images.labels)
        if n == 0:
            return
        idx = np.linspace(0, n - 1, min(n, max_images)).round().astype(np.int64)
        idx = np.unique(idx)
        pixels = np.asarray(images.images[idx])  # (n, C, H, W) uint8
        probs = self._predict(pixels)  # (n, K)
        names = list(images.classes)
        for k, i in enumerate(idx):
            name = names[int(images.labels[i])] if names else str(int(images.labels[i]))
            label = self._class_of(name) if names else int(images.labels[i])
            self.entries[f"v{k}"] = Entry(pixels[k], label, str(images.sources[i]), int(probs[k].argmax()), name)

    def _class_of(self, name: str) -> int | None:
        return self.classes.index(name) if name in self.classes else None

    def add_upload(self, data: bytes, filename: str = "upload") -> str:
        """Decode an uploaded file with the training image guards and the run's resize; returns its id."""
        from cnnlab.data import load_image

        suffix = Path(filename).suffix[:10] if Path(filename).suffix.isascii() else ""
        fd, tmp = tempfile.mkstemp(prefix="cnnlab-upload-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                pixels = load_image(tmp, self.input_shape, self.resize)
            except DataError as exc:
                raise DataError(str(exc).replace(tmp, filename)) from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        self._uploads += 1
        key = f"u{self._uploads}"
        probs = self._predict(pixels[None])
        self.entries[key] = Entry(pixels, None, filename, int(probs[0].argmax()))
        uploads = [k for k in self.entries if k.startswith("u")]
        for old in uploads[:-MAX_UPLOADS]:
            del self.entries[old]
            self._cache.pop(old, None)
        return key

    def image_ids(self) -> list[str]:
        return list(self.entries)

    def entry(self, image: str) -> Entry:
        if image not in self.entries:
            raise CnnlabError(f"unknown image {image!r}: pick one of the thumbnails or upload an image")
        return self.entries[image]

    # ------------------------------------------------------------------ compute

    def preprocess(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` -> float32 ``(x/255 - mean)/std``, exactly as the run trained."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).float().div_(255)  # (N, C, H, W)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _predict(self, pixels: np.ndarray, batch: int = 64) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(pixels), batch):
                logits = self.model(self.preprocess(pixels[i:i + batch]))  # (b, K)
                out.append(torch.softmax(logits.float(), dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def forward(self, image: str) -> Forward:
        """Every layer's output for ``image`` (cached for the last few images)."""
        if image in self._cache:
            self._cache.move_to_end(image)
            return self._cache[image]
        x = self.preprocess(self.entry(image).pixels[None])  # (1, C, H, W)
        outs = []
        with torch.inference_mode():
            h = x
            for layer in self.layers:
                h = layer(h)
                outs.append(h)
        probs = torch.softmax(outs[-1].float(), dim=1)[0].numpy()  # (K,)
        self._cache[image] = Forward(x, outs, probs)
        while len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return self._cache[image]

    @property
    def layers(self) -> list[torch.nn.Module]:
        return list(self.model.layers)  # type: ignore[arg-type]

    def layer_input(self, fwd: Forward, layer: int) -> torch.Tensor:
        return fwd.x if layer == 0 else fwd.outs[layer - 1]

    def check_layer(self, layer: int) -> int:
        count = len(self.layers)
        if not 0 <= layer < count:
            raise CnnlabError(f"unknown layer {layer}: this network has layers 0..{count - 1}")
        return layer

    # ------------------------------------------------------------------ answers (JSON-ready)

    def info(self) -> dict[str, Any]:
        return payload.info(self)

    def images(self) -> list[dict[str, Any]]:
        return [payload.thumb(self, key) for key in self.entries]

    def image(self, image: str, per_page: int = payload.PER_PAGE) -> dict[str, Any]:
        """The forward pass of one image: probabilities and the first page of every layer's maps."""
        fwd = self.forward(image)
        return payload.image(self, image, fwd, per_page)

    def maps(self, image: str, layer: int, page: int, per_page: int = payload.PER_PAGE) -> dict[str, Any]:
        fwd = self.forward(image)
        return payload.maps(fwd.outs[self.check_layer(layer)][0], layer, page, per_page)

    def layer(self, layer: int) -> dict[str, Any]:
        return payload.layer(self, self.check_layer(layer))

    def neuron(self, image: str, layer: int, channel: int, y: int = 0, x: int = 0) -> dict[str, Any]:
        """The arithmetic of one output value of ``layer`` for ``image``, equal to the model's own output."""
        fwd = self.forward(image)
        self.check_layer(layer)
        return arith.neuron(self, fwd, layer, channel, y, x)

    def cam(self, image: str, target: int | None = None, layer: int | None = None) -> dict[str, Any]:
        return payload.cam(self, image, target, layer)

    def patches(self, layer: int, channel: int, top: int = 9) -> dict[str, Any]:
        return payload.patches(self, self.check_layer(layer), channel, top)


def choose_threads(requested: int = 0) -> int:
    """Set and return torch's CPU threads: ``requested``, or (0) one per free core (``cnnlab.utils.cpus``):
    on a busy machine intra-op threads wait on each other far longer than they save: ResNet-18 at
    224x224 took 0.55-1.3 s with 2 threads and 0.14 s with 1 at load 8 on 2 cores."""
    from cnnlab.utils.cpus import auto_threads

    threads = auto_threads(requested if requested > 0 else None).threads
    torch.set_num_threads(threads)
    return threads


def open_explorer(target: str | os.PathLike[str] | dict[str, Any] | Any, *, data: Any = None, lang: str = "en",
                  max_images: int = MAX_IMAGES, checkpoint: str | None = None, seed: int = 0) -> Explorer:
    """A run folder (trained; a run still training uses its latest checkpoint) or a spec (random weights).

    ``data``: an ``ImageSet`` / ``DataBundle`` (its ``.val``) or a data source string for the images;
    default: the run's own validation split, when it can be reloaded.
    """
    if not isinstance(target, (str, os.PathLike)):  # a spec dict or Spec object
        return _from_spec(target, data, lang, max_images, seed)
    path = Path(target)
    if path.is_dir():
        return _from_run(path, data, lang, max_images, checkpoint)
    looks_like_path = any(sep in str(target) for sep in "/\\") or path.suffix.lower() in (".yaml", ".yml", ".json")
    if looks_like_path and not path.is_file():
        raise RunError(f"{path} does not exist: give a run folder written by `cnnlab train`, "
                       "a spec file, or a bundled spec name (see `cnnlab models`)")
    return _from_spec(str(target), data, lang, max_images, seed)


def _from_run(path: Path, data: Any, lang: str, max_images: int, checkpoint: str | None) -> Explorer:
    from cnnlab.train import load_run

    notes = []
    status = _read_status(path)
    which = checkpoint or "best"
    if status.get("state") == "running" and checkpoint is None:
        which = "last"
        notes.append(tr("explore.note.running", lang, epoch=status.get("epoch", "?")))
    run = load_run(path, which)
    if which == "last" and notes:
        notes[-1] = tr("explore.note.running", lang, epoch=run.checkpoint.get("epoch", status.get("epoch", "?")))
    ex = Explorer(run.model, run.analysis if lang == "en" else _analysis(run.spec, lang), list(run.classes),
                  tuple(run.mean), tuple(run.std), tuple(run.input_shape), run.resize, notes=notes,
                  name=run.spec.name, run_path=path, lang=lang)
    images = _images_for_run(run, data, notes, lang)
    if images is not None:
        ex.add_images(images, max_images)
    return ex


def _read_status(path: Path) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads((path / "status.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _analysis(spec: Any, lang: str) -> Any:
    from cnnlab.analysis import analyze

    return analyze(spec, lang=lang)


def _images_for_run(run: Any, data: Any, notes: list[str], lang: str) -> Any:
    from cnnlab.data import load_data

    if data is not None and not isinstance(data, str):
        return getattr(data, "val", data)
    source = data or dict(run.data or {}).get("source")
    if not source or source == "in-memory":
        notes.append(tr("explore.note.no_images", lang))
        return None
    cfg = run.config
    try:
        bundle = load_data(str(source), tuple(run.input_shape), val_split=float(getattr(cfg, "val_split", 0.2)),
                           seed=int(getattr(cfg, "seed", 0)), resize=run.resize, progress=False, download=False)
    except CnnlabError as exc:
        notes.append(tr("explore.note.data_failed", lang, source=source, error=str(exc)))
        return None
    return bundle.val if bundle.val is not None and len(bundle.val.labels) else bundle.train


def _from_spec(name: Any, data: Any, lang: str, max_images: int, seed: int) -> Explorer:
    from cnnlab.model import build
    from cnnlab.spec import load_spec

    spec = load_spec(name, lang=lang)
    torch.manual_seed(seed)
    model = build(spec).eval()
    analysis = _analysis(spec, lang)
    classes = [str(i) for i in range(int(analysis.num_classes or analysis.layers[-1].output_shape[0]))]
    c, h, w = (int(v) for v in spec.input)
    ex = Explorer(model, analysis, classes, (0.5,) * c, (0.25,) * c, (c, h, w), untrained=True,
                  notes=[tr("explore.note.untrained", lang)], name=spec.name, lang=lang)
    if data is not None:
        images = data if not isinstance(data, str) else _load_source(data, (c, h, w))
        images = getattr(images, "val", images)
        if images is not None and len(images.classes):
            ex.classes = list(images.classes) if len(images.classes) == len(classes) else classes
        ex.add_images(images, max_images)
    return ex


def _load_source(source: str, shape: tuple[int, int, int]) -> Any:
    from cnnlab.data import load_data

    return load_data(source, shape, progress=False, download=False)
