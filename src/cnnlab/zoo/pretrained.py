"""Named pretrained weight sets for zoo networks, and torchvision's ResNet key layout (pure, no torch).

A named set is ``NETWORK:SET`` (``resnet18:imagenet``): the official file's URL and checksum, the
normalisation and input size its network was trained with, and how its tensor names map onto the
cnnlab network built from the zoo spec. ``cnnlab train resnet18 --init-from resnet18:imagenet``
downloads it (``cnnlab.train.init_from``).

>>> get("resnet18:imagenet").filename
'resnet18-f37072fd.pth'
>>> m = torchvision_resnet_map(["conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
...                             "layer2.0.downsample.1.bias", "fc.weight"])
>>> m["layer1.0.conv1.weight"], m["layer2.0.downsample.1.bias"], m["fc.weight"]  # blocks given: 2
('layers.3.branch.0.conv.weight', 'layers.4.shortcut.1.bias', 'layers.6.linear.weight')

The torchvision layout (``torchvision/models/resnet.py``): ``conv1``/``bn1`` (stem), then
``layer{1..4}.{block}`` each with ``conv1, bn1, conv2, bn2`` (+ ``conv3, bn3`` in a Bottleneck) and
``downsample.0`` (1x1 conv) / ``downsample.1`` (BatchNorm) on projection blocks, then ``fc``.
The cnnlab zoo spec is ``conv, batchnorm, pool, residual x N, global_pool, output``; a residual's
``branch`` alternates ``conv`` (even index) and ``batchnorm`` (odd index); its ``shortcut`` is
``Sequential(Conv2d, BatchNorm2d)``. Tensor shapes are the same on both sides (OIHW convolutions,
``(out, in)`` linear), so only names change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cnnlab.errors import CnnlabError, did_you_mean

# torchvision's ImageNet preprocessing (ImageClassification transform): resize 256, centre crop 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PretrainedSet:
    """One downloadable set of weights for a zoo network."""

    name: str  # "resnet18:imagenet"
    network: str  # the zoo spec it fits
    url: str  # official location
    filename: str  # file name in the cache ($CNNLAB_DATA/weights/)
    sha256_prefix: str  # torch.hub convention: the file name carries the first hex digits of its SHA-256
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]  # (C, H, W) the network was trained at
    classes: int
    layout: str  # "torchvision-resnet": names mapped by torchvision_resnet_map
    description: str


_TV = "https://download.pytorch.org/models/"
SETS: dict[str, PretrainedSet] = {
    s.name: s
    for s in (
        PretrainedSet("resnet18:imagenet", "resnet18", _TV + "resnet18-f37072fd.pth", "resnet18-f37072fd.pth",
                      "f37072fd", IMAGENET_MEAN, IMAGENET_STD, (3, 224, 224), 1000, "torchvision-resnet",
                      "torchvision ResNet18_Weights.IMAGENET1K_V1 (ImageNet-1k, top-1 69.8 %)"),
        PretrainedSet("resnet50:imagenet", "resnet50", _TV + "resnet50-0676ba61.pth", "resnet50-0676ba61.pth",
                      "0676ba61", IMAGENET_MEAN, IMAGENET_STD, (3, 224, 224), 1000, "torchvision-resnet",
                      "torchvision ResNet50_Weights.IMAGENET1K_V1 (ImageNet-1k, top-1 76.1 %)"),
    )
}


def names() -> list[str]:
    return sorted(SETS)


def lookup(name: str) -> PretrainedSet | None:
    """The set called ``name`` (case-insensitive), or None."""
    return SETS.get(name.strip().lower())


def get(name: str) -> PretrainedSet:
    found = lookup(name)
    if found is None:
        raise CnnlabError(f"no pretrained weight set '{name}'{did_you_mean(name.lower(), names())}; "
                          f"available: {', '.join(names())}")
    return found


def looks_named(text: str) -> bool:
    """``net:set`` form (not a Windows drive letter, no path separators)."""
    return bool(re.fullmatch(r"[A-Za-z][\w.-]+:[\w.-]+", text.strip()))


_STEM = {"conv1": "layers.0.conv", "bn1": "layers.1.bn"}
_BLOCK = re.compile(r"layer(\d+)\.(\d+)\.(.+)")


def is_torchvision_resnet(keys: Iterable[str]) -> bool:
    """True for a state dict in torchvision's ResNet layout (``conv1``, ``layer1.0...``, ``fc``)."""
    ks = set(keys)
    return "conv1.weight" in ks and "fc.weight" in ks and any(k.startswith("layer1.0.") for k in ks)


def torchvision_resnet_map(keys: Iterable[str]) -> dict[str, str]:
    """torchvision ResNet tensor name -> cnnlab zoo ResNet tensor name, for every key given.

    Blocks are numbered in order over all stages (their count per stage is read from the keys), so
    the map fits resnet18/34 (basic blocks) and resnet50/101/152 (bottlenecks) alike.
    """
    keys = list(keys)
    blocks = sorted({(int(m[1]), int(m[2])) for k in keys if (m := _BLOCK.fullmatch(k))})
    position = {sb: 3 + i for i, sb in enumerate(blocks)}  # layers 0-2: conv, batchnorm, pool
    head = 3 + len(blocks) + 1  # after the residual blocks and global_pool
    out: dict[str, str] = {}
    for key in keys:
        module, _, leaf = key.rpartition(".")
        if module in _STEM:
            out[key] = f"{_STEM[module]}.{leaf}"
        elif module == "fc":
            out[key] = f"layers.{head}.linear.{leaf}"
        elif m := _BLOCK.fullmatch(module):
            out[key] = f"layers.{position[int(m[1]), int(m[2])]}.{_block_part(m[3], key)}.{leaf}"
        else:
            raise CnnlabError(f"tensor '{key}' is not part of torchvision's ResNet layout "
                              "(conv1, bn1, layerN.B.*, fc); is this a ResNet state dict?")
    return out


def _block_part(part: str, key: str) -> str:
    """``conv2`` -> ``branch.2.conv``, ``bn2`` -> ``branch.3.bn``, ``downsample.1`` -> ``shortcut.1``."""
    if m := re.fullmatch(r"conv(\d)", part):
        return f"branch.{2 * (int(m[1]) - 1)}.conv"
    if m := re.fullmatch(r"bn(\d)", part):
        return f"branch.{2 * int(m[1]) - 1}.bn"
    if m := re.fullmatch(r"downsample\.([01])", part):
        return f"shortcut.{m[1]}"
    raise CnnlabError(f"tensor '{key}' is not part of torchvision's ResNet layout "
                      "(a block holds convN, bnN and downsample.0/1)")
