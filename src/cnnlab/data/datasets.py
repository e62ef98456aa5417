"""The files of each named dataset: official URLs, mirrors and checksums.

``md5`` is the checksum of the file as distributed; ``raw_md5`` is that of its decompressed
content (gzip), so a re-compressed copy with the same content is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in ``$CNNLAB_DATA/<dataset>/``, where to get it, checksums."""

    name: str
    md5: str
    raw_md5: str = ""
    size: int = 0
    extract: bool = False  # a .tar.gz whose members are unpacked into the dataset folder
    sha256_prefix: str = ""  # when set, checked instead of md5 (torch.hub files: leading SHA-256 hex digits)

    def checksum_text(self) -> str:
        return f"sha256 {self.sha256_prefix}..." if self.sha256_prefix else f"md5 {self.md5}"


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)
_CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)

FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb", 9912422),
        RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624", 28881),
        RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea", 1648877),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637", 4542),
    ),
    "fashion-mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", size=26421880),
        RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", size=29515),
        RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", size=4422102),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", size=5148),
    ),
    "cifar10": (RemoteFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", size=170052171, extract=True),),
    "cifar100": (RemoteFile("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", size=168513733, extract=True),),
}

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": _MNIST_MIRRORS,
    "fashion-mnist": _FASHION_MIRRORS,
    "cifar10": _CIFAR_MIRRORS,
    "cifar100": _CIFAR_MIRRORS,
}
