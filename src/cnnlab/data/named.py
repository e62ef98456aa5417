"""Named datasets: where their files live and what their classes are.

``$CNNLAB_DATA`` (default ``~/.cache/cnnlab``) holds one folder per dataset with the official
file names, e.g. ``$CNNLAB_DATA/mnist/train-images-idx3-ubyte.gz``. ``sample`` is the MNIST test
set shipped inside the package (``cnnlab/data/sample``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import DataError, did_you_mean
from cnnlab.utils.paths import missing_path_hint

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass(frozen=True)
class NamedDataset:
    """A dataset known by name: its folder under ``$CNNLAB_DATA`` and its format."""

    name: str
    folder: str
    kind: str  # "idx" | "cifar10" | "cifar100"
    classes: tuple[str, ...]


NAMED: dict[str, NamedDataset] = {
    "mnist": NamedDataset("mnist", "mnist", "idx", tuple(MNIST_CLASSES)),
    "fashion-mnist": NamedDataset("fashion-mnist", "fashion-mnist", "idx", tuple(FASHION_CLASSES)),
    "cifar10": NamedDataset("cifar10", "cifar10", "cifar10", tuple(CIFAR10_CLASSES)),
    "cifar100": NamedDataset("cifar100", "cifar100", "cifar100", ()),
}
ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100", "cifar_10": "cifar10", "cifar_100": "cifar100"}
ALL_NAMES = ["sample", *NAMED]


def data_home(env: dict[str, str] | None = None) -> Path:
    """``$CNNLAB_DATA`` or ``~/.cache/cnnlab``."""
    env = dict(os.environ) if env is None else env
    value = env.get("CNNLAB_DATA", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "cnnlab"


def sample_folder() -> Path:
    """The folder of the bundled MNIST sample inside the installed package."""
    return Path(__file__).resolve().parent / "sample"


def lookup(name: str) -> NamedDataset | None:
    """The dataset called ``name`` (case-insensitive, common spellings accepted), or None."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return NAMED.get(key)


def unknown_source(source: str) -> DataError:
    """The error for a source that is neither an existing path nor a dataset name."""
    return DataError(
        f"data source '{source}' is not an existing file or folder, nor a dataset name"
        f"{did_you_mean(source.lower(), ALL_NAMES) or missing_path_hint(source) or '.'} Give a folder of class sub-folders, IDX/CIFAR "
        f"files, a CSV of path,label, or one of: {', '.join(ALL_NAMES)}"
    )
