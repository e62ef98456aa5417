"""``--init-from SOURCE``: start a network from existing weights (transfer learning).

SOURCE is one of:

- a cnnlab run folder: its ``best`` checkpoint (``last`` when there is no best), with the run's
  normalisation (``data.json``) and classes;
- a ``.safetensors`` file, or a PyTorch state-dict file that ``torch.load(weights_only=True)`` reads
  (``.pt``/``.pth``); a file that needs full unpickling is refused with the command that converts it;
- a named pretrained set, ``resnet18:imagenet`` (``cnnlab.zoo.pretrained``): downloaded once into
  ``$CNNLAB_DATA/weights/`` with the datasets' downloader (resumable, checksummed, atomic).

Tensors in torchvision's ResNet layout are renamed to the zoo network's. ``match`` pairs every tensor
of the network with the source's: same name and shape -> ``loaded``; the classifier head with another
shape (another class count) -> ``replaced`` (kept freshly initialised); absent from the source ->
``fresh``. Any other shape mismatch is a ``CnnlabError`` naming the layer and both shapes.

>>> import torch, cnnlab                                                      # doctest: +SKIP
>>> model = cnnlab.build("resnet18")                                          # doctest: +SKIP
>>> report = apply(model, resolve("resnet18:imagenet"))                       # doctest: +SKIP
>>> report.counts()                                                           # doctest: +SKIP
{'loaded': 122, 'replaced': 0, 'fresh': 0}
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnlab.errors import CnnlabError, RunError
from cnnlab.zoo import pretrained

if TYPE_CHECKING:
    from cnnlab.spec import Spec

STATUSES = ("loaded", "replaced", "fresh")
_LAYER = re.compile(r"layers\.(\d+)\.")


@dataclass
class SourceWeights:
    """Tensors (already named as cnnlab names them) plus the preprocessing they were trained with."""

    source: str  # as the user gave it
    kind: str  # "run" | "safetensors" | "state_dict" | "named"
    path: Path
    tensors: dict[str, torch.Tensor]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: tuple[int, int, int] | None = None
    classes: list[str] | None = None
    layout: str = "cnnlab"  # or "torchvision-resnet" (renamed on reading)

    def preprocessing(self) -> dict[str, Any] | None:
        """What ``RUN/data.json`` records under ``"pretrained"`` (None: the source brings none)."""
        if self.mean is None or self.std is None:
            return None
        return {"source": self.source, "mean": list(self.mean), "std": list(self.std),
                "input_size": list(self.input_size) if self.input_size else None}


@dataclass
class InitRow:
    """One tensor of the network and what happened to it."""

    name: str
    layer: int | None  # spec layer index (``model.layers[i]``)
    status: str  # loaded | replaced | fresh
    shape: list[int]
    source_shape: list[int] | None
    numel: int


@dataclass
class InitReport:
    """What ``apply`` did, tensor by tensor; recorded as ``RUN/init_from.json``."""

    source: str
    kind: str
    path: str
    head: int
    rows: list[InitRow]
    unused: list[str] = field(default_factory=list)  # source tensors the network has no place for

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.rows if r.status == s) for s in STATUSES}

    def by_layer(self) -> list[dict[str, Any]]:
        """One entry per spec layer with tensors: layer, status (or "mixed"), tensors, parameters."""
        out: dict[int | None, dict[str, Any]] = {}
        for r in self.rows:
            e = out.setdefault(r.layer, {"layer": r.layer, "statuses": set(), "tensors": 0, "numel": 0})
            e["statuses"].add(r.status)
            e["tensors"] += 1
            e["numel"] += r.numel
        rows = []
        for e in out.values():
            statuses = e.pop("statuses")
            e["status"] = statuses.pop() if len(statuses) == 1 else "mixed"
            rows.append(e)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "path": self.path, "head": self.head,
                "counts": self.counts(), "layers": self.by_layer(), "unused": self.unused,
                "tensors": [dataclasses.asdict(r) for r in self.rows]}


# ----------------------------------------------------------------------------- resolve SOURCE
def resolve(source: str, *, download: bool = True, progress: Any = None) -> SourceWeights:
    """Read SOURCE (run folder, weights file or named set) into CPU tensors with cnnlab names."""
    text = str(source).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        return _from_run(text, path)
    if path.is_file():
        return _from_file(text, path)
    if pretrained.looks_named(text):
        return from_named(pretrained.get(text), download=download, progress=progress)
    raise CnnlabError(f"--init-from {text!r}: no such run folder or weights file, and not a named set "
                      f"(NETWORK:SET, one of: {', '.join(pretrained.names())}); check the path")


def _from_run(text: str, folder: Path) -> SourceWeights:
    from cnnlab.train.checkpoint import read_weights

    ckpt = folder / "checkpoints"
    which = "best" if (ckpt / "best.safetensors").is_file() else "last"
    if not (ckpt / f"{which}.safetensors").is_file():
        raise RunError(f"--init-from {text}: {folder} is a folder but not a run with a checkpoint "
                       "(checkpoints/best.safetensors or last.safetensors); give a run folder or a weights file")
    tensors, _ = read_weights(ckpt / which)
    mean = std = classes = None
    try:
        data = json.loads((folder / "data.json").read_text(encoding="utf-8"))
        mean, std = tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"])
        shape = tuple(int(v) for v in data["input_shape"])
        classes = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        shape = None
    size = (shape[0], shape[1], shape[2]) if shape and len(shape) == 3 else None
    return SourceWeights(text, "run", ckpt / f"{which}.safetensors", tensors, mean, std, size, classes)


def _from_file(text: str, path: Path) -> SourceWeights:
    with path.open("rb") as fh:
        head = fh.read(9)  # safetensors: 8-byte header length, then "{"
    if head[8:9] == b"{" or path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CnnlabError(f"--init-from {text}: not a readable safetensors file ({exc})") from None
        return _named_source(text, "safetensors", path, tensors)
    return _named_source(text, "state_dict", path, load_state_dict_file(path), _known_set(path))


def _known_set(path: Path) -> pretrained.PretrainedSet | None:
    """The named set whose official file this is (same name and checksum): its normalisation applies."""
    from cnnlab.data.download import sha256_file

    for ps in pretrained.SETS.values():
        if path.name == ps.filename and sha256_file(path).startswith(ps.sha256_prefix):
            return ps
    return None


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``'d state dict read with ``weights_only=True``; anything needing pickle is refused."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "it holds Python objects"
        raise CnnlabError(
            f"--init-from {path}: this file needs full unpickling, which can run arbitrary code, so cnnlab "
            f"refuses it ({first[:160]}). If you trust the file, convert it once to safetensors:\n"
            f"  python -c \"import torch; from safetensors.torch import save_file; "
            f"sd = torch.load('{path}', weights_only=False); sd = sd.get('state_dict', sd); "
            f"save_file({{k: v.contiguous() for k, v in sd.items()}}, '{path.with_suffix('.safetensors')}')\"\n"
            f"then pass --init-from {path.with_suffix('.safetensors')}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CnnlabError(f"--init-from {path}: not a PyTorch state-dict or safetensors file ({exc})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CnnlabError(f"--init-from {path}: expected a state dict (tensor name -> tensor), got "
                          f"{type(obj).__name__}; save model.state_dict() instead")
    return {str(k): v for k, v in obj.items()}


def _named_source(text: str, kind: str, path: Path, tensors: dict[str, torch.Tensor],
                  ps: pretrained.PretrainedSet | None = None) -> SourceWeights:
    """Strip DDP/compile prefixes and rename torchvision ResNet keys to cnnlab's."""
    for prefix in ("module.", "_orig_mod."):
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    layout = "cnnlab"
    if pretrained.is_torchvision_resnet(tensors):
        names = pretrained.torchvision_resnet_map(tensors)
        tensors = {names[k]: v for k, v in tensors.items()}
        layout = "torchvision-resnet"
    if ps is None:
        return SourceWeights(text, kind, path, tensors, layout=layout)
    return SourceWeights(text, kind, path, tensors, ps.mean, ps.std, ps.input_size, None, layout)


def weights_folder() -> Path:
    """``$CNNLAB_DATA/weights``: the named sets live in the datasets' cache."""
    from cnnlab.data.named import data_home

    return data_home() / "weights"


def from_named(ps: pretrained.PretrainedSet, *, download: bool = True, progress: Any = None,
               folder: Path | None = None) -> SourceWeights:
    """Download (once) and read a named set; offline, the error says which file to put where."""
    from cnnlab.data import download as dl
    from cnnlab.data.datasets import RemoteFile

    folder = folder or weights_folder()
    dest = folder / ps.filename
    remote = RemoteFile(ps.filename, md5="", sha256_prefix=ps.sha256_prefix)
    urls = dl.urls_for("weights", ps.filename) + [ps.url]
    if not dest.is_file():
        if not download:
            raise CnnlabError(offline_message(ps, folder, urls[0], "downloads are off"))
        try:
            dl.fetch_any(urls, dest, remote, progress=progress)
        except dl.FetchError as exc:
            raise CnnlabError(offline_message(ps, folder, urls[0], str(exc))) from None
    else:  # put there by hand, or by an older download: check it like a fresh one
        digest = dl.sha256_file(dest)
        if not digest.startswith(ps.sha256_prefix.lower()):
            raise CnnlabError(f"{dest} is not the file of {ps.name}: its sha256 starts with {digest[:8]}, not "
                              f"{ps.sha256_prefix}; delete it (it is downloaded again) or put {ps.url} there")
    return _named_source(ps.name, "named", dest, load_state_dict_file(dest), ps)


def offline_message(ps: pretrained.PretrainedSet, folder: Path, url: str, reason: str) -> str:
    """The file, its checksum and where to put it (like ``cnnlab.data.download.offline_message``)."""
    return "\n".join([
        f"{ps.name} is not in '{folder}' and could not be downloaded ({reason}).",
        f"Put this file in '{folder}/' (or set CNNLAB_DATA to a folder holding weights/):",
        f"  {ps.filename}  (sha256 starts with {ps.sha256_prefix}) from {url}",
    ])


# ----------------------------------------------------------------------------- match and load
def layer_of(name: str) -> int | None:
    """Spec layer index of a ``CnnlabNet`` tensor name (``layers.5.branch.0.conv.weight`` -> 5)."""
    m = _LAYER.match(name)
    return int(m[1]) if m else None


def head_index(model: torch.nn.Module) -> int:
    """Index of the last spec layer holding tensors: the classifier head."""
    indices = [i for n in model.state_dict() if (i := layer_of(n)) is not None]
    return max(indices) if indices else -1


def match(model: torch.nn.Module, weights: SourceWeights,
          replace_head: bool = False) -> tuple[InitReport, dict[str, torch.Tensor]]:
    """Pair the model's tensors with the source's: (report, the tensors to load).

    ``replace_head``: keep the head fresh even when its shape fits (other classes, same count).
    """
    target = model.state_dict()
    head = head_index(model)
    head_differs = replace_head or any(
        layer_of(n) == head and n in weights.tensors and tuple(weights.tensors[n].shape) != tuple(t.shape)
        for n, t in target.items()
    )
    rows: list[InitRow] = []
    load: dict[str, torch.Tensor] = {}
    for name, t in target.items():
        layer, src = layer_of(name), weights.tensors.get(name)
        shape, src_shape = list(t.shape), (list(src.shape) if src is not None else None)
        if src is None:
            status = "fresh"
        elif layer == head and head_differs:
            status = "replaced"
        elif src_shape == shape:
            status = "loaded"
            load[name] = src
        else:
            raise CnnlabError(_mismatch(weights.source, model, name, layer, src_shape, shape, head))
        rows.append(InitRow(name, layer, status, shape, src_shape, int(t.numel())))
    if not load:
        sample = ", ".join(list(weights.tensors)[:3])
        mine = ", ".join(list(target)[:3])
        raise CnnlabError(f"--init-from {weights.source}: none of its {len(weights.tensors)} tensors fits this network "
                          f"(the source has {sample}...; the network has {mine}...); is it the same network?")
    unused = [k for k in weights.tensors if k not in target]
    return InitReport(weights.source, weights.kind, str(weights.path), head, rows, unused), load


def _mismatch(source: str, model: Any, name: str, layer: int | None, src: list[int] | None, dst: list[int],
              head: int) -> str:
    kind = ""
    analysis = getattr(model, "analysis", None)
    if analysis is not None and layer is not None and layer < len(analysis.layers):
        kind = f" ({analysis.layers[layer].kind})"
    return (f"--init-from {source}: layer {layer}{kind} tensor '{name}' has shape {tuple(src or ())} in the source "
            f"but {tuple(dst)} in this network. Only the classifier head (layer {head}) may differ; make layer "
            f"{layer} of the spec match the source network")


def apply(model: torch.nn.Module, weights: SourceWeights, replace_head: bool = False) -> InitReport:
    """Load every matching tensor into ``model`` (in place, any device); returns what was done."""
    report, load = match(model, weights, replace_head)
    with torch.no_grad():
        state = model.state_dict()
        for name, tensor in load.items():
            state[name].copy_(tensor.to(dtype=state[name].dtype))
    return report


def adapt_head(spec: Spec, classes: int) -> tuple[Spec, int | None]:
    """The spec with its ``output`` layer set to ``classes`` units: (spec, the old count or None if unchanged)."""
    from cnnlab.spec import Output

    last = spec.layers[-1] if spec.layers else None
    if not isinstance(last, Output) or last.classes == classes:
        return spec, None
    new_last = dataclasses.replace(last, classes=classes)
    return dataclasses.replace(spec, layers=(*spec.layers[:-1], new_last)), last.classes
