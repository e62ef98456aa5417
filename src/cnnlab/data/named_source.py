"""Named datasets (``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``) from ``$CNNLAB_DATA``.

Missing files are downloaded (see :mod:`cnnlab.data.download`) unless ``download=False``; when
that fails the error lists exactly which files to put where.
"""

from __future__ import annotations

from cnnlab.data.named import NamedDataset, data_home
from cnnlab.data.progress import ProgressFn
from cnnlab.data.raw import RawData


def load_named(ds: NamedDataset, *, download: bool, progress: bool | ProgressFn | None) -> RawData:
    """Read ``ds`` from ``$CNNLAB_DATA/<name>/``, downloading missing files first when allowed."""
    from cnnlab.data.download import ensure_files

    folder = data_home() / ds.folder
    ensure_files(ds, folder, download=download, progress=progress)
    if ds.kind == "idx":
        from cnnlab.data.idx_source import load_idx_folder

        raw = load_idx_folder(folder, ds.name, list(ds.classes))
    else:
        from cnnlab.data.cifar import load_cifar_path

        raw = load_cifar_path(folder)
    raw.source = ds.name
    raw.description = f"{ds.name} from '{folder}' ({', '.join(f'{k} {len(v.labels):,}' for k, v in raw.splits.items())})"
    return raw
