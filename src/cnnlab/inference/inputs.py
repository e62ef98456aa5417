"""What the Python API accepts where the CLI takes a string: a run folder path, a data source name.

``cnnlab.evaluate("runs/x", "mnist")`` does what ``cnnlab evaluate runs/x --data mnist`` does:
the run is loaded, the source is loaded and split the way training did, and ``split="auto"``
picks the test split when there is one (else the run's held-out validation split).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from cnnlab.errors import DataError

if TYPE_CHECKING:
    from cnnlab.inference.common import RunLike


def as_run(run: Any) -> RunLike:
    """A run folder path (``str`` / ``PathLike``) loaded with ``load_run``; anything else unchanged."""
    if isinstance(run, (str, os.PathLike)):
        from cnnlab.train import load_run

        return load_run(run)
    return run


def as_images(run: Any, data: Any, split: str = "auto") -> Any:
    """The ``ImageSet`` to evaluate: ``data`` may be an ``ImageSet``, a ``DataBundle``, a source
    (folder, CSV, ``mnist``, ``sample``...) or ``None`` (the run's own source), as in the CLI."""
    if data is None or isinstance(data, (str, os.PathLike)):
        from cnnlab.inference.dataset import resolve_split

        images, _source, _split = resolve_split(run, None if data is None else os.fspath(data), split)
        return images
    if hasattr(data, "train") and hasattr(data, "val"):  # a DataBundle
        if split == "auto":
            split = "test" if data.test is not None and len(data.test.labels) else "val"
        if split not in ("train", "val", "test") or getattr(data, split) is None:
            raise DataError(f"this DataBundle has no {split!r} split; use split='train', 'val' or 'test'")
        return getattr(data, split)
    if not hasattr(data, "labels"):
        raise DataError(f"cannot evaluate on a {type(data).__name__}: give an ImageSet, a DataBundle, or a data "
                        "source such as 'mnist', 'sample' or a folder path")
    return data
