"""Image data for cnnlab: sources, decoding, cache, splits, and fast deterministic batches.

>>> from cnnlab.data import load_data, BatchLoader
>>> bundle = load_data("sample", (1, 28, 28), progress=False)
>>> loader = BatchLoader(bundle.train, 128, shuffle=True, seed=0, mean=bundle.mean, std=bundle.std)
>>> x, y = next(iter(loader))
>>> tuple(x.shape), y.dtype
((128, 1, 28, 28), torch.int64)

Names are imported on first use, so ``import cnnlab.data`` does not import torch.
"""

from __future__ import annotations

from cnnlab.utils.lazy import lazy_exports

_EXPORTS = {
    "load_data": "cnnlab.data.api",
    "load_split": "cnnlab.data.api",
    "DataBundle": "cnnlab.data.types",
    "ImageSet": "cnnlab.data.types",
    "Resize": "cnnlab.data.types",
    "BatchLoader": "cnnlab.data.loader",
    "Augment": "cnnlab.data.augment",
    "load_image": "cnnlab.data.decode",
    "inspect_data": "cnnlab.data.inspect",
    "data_home": "cnnlab.data.named",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
