"""MNIST and Fashion-MNIST: four gzip'd IDX files -> ImageFolder ``train/`` and ``test/``.

IDX (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code (0x08 =
unsigned byte), the number of dimensions, each dimension as a big-endian uint32,
then the data in C order. Class names: MNIST ``"0"``..``"9"``; Fashion-MNIST
torchvision's names with ``/`` written ``_`` (``T-shirt_top``).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from pipeline.core.atomic import atomic_dir
from pipeline.download import inputs_of
from pipeline.download.imagetree import write_split
from pipeline.download.remote import BadDownload, FetchOptions, Remote, obtain
from pipeline.download.upstream import torchvision_attr

SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def parse_idx(data: bytes, name: str, ndim: int):
    """Decode an uncompressed IDX file of unsigned bytes with ``ndim`` dimensions."""
    import numpy as np

    if len(data) < 4 or data[:2] != b"\0\0":
        raise BadDownload(f"{name}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise BadDownload(f"{name}: IDX type code 0x{data[2]:02x}; only 0x08 (unsigned byte) is used by MNIST")
    if data[3] != ndim:
        raise BadDownload(f"{name}: IDX file has {data[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise BadDownload(f"{name}: IDX header is truncated")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != size:
        raise BadDownload(f"{name}: IDX header {dims} needs {size} bytes of data, file has "
                          f"{len(data) - header}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_gz(path: Path, name: str, ndim: int):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise BadDownload(f"{name}: truncated or corrupt gzip file ({type(err).__name__}: {err}); "
                          "fetch it again", Path(path)) from None
    try:
        return parse_idx(data, name, ndim)
    except BadDownload as err:
        err.path = Path(path)
        raise


def remotes(dataset: str) -> list[Remote]:
    cls = TORCHVISION_CLASS[dataset]
    mirrors = torchvision_attr("mnist", cls, "mirrors")
    return [Remote(name, tuple(m + name for m in mirrors), f"md5:{md5}")
            for name, md5 in torchvision_attr("mnist", cls, "resources")]


def class_names(dataset: str) -> list[str]:
    if dataset == "mnist":
        return [str(d) for d in range(10)]
    return list(torchvision_attr("mnist", TORCHVISION_CLASS[dataset], "classes"))


def fetch(dataset: str, out: Path, opts: FetchOptions) -> Path:
    """Download (or take from cache/--from), verify, and write ``out/{train,test}/<class>/<n>.png``."""
    files = obtain(dataset, remotes(dataset), opts)
    names = class_names(dataset)
    with atomic_dir(Path(out), "download", inputs_of(opts)) as tmp:
        for split, (images_name, labels_name) in SPLITS.items():
            images = read_idx_gz(files[images_name], images_name, 3)
            labels = read_idx_gz(files[labels_name], labels_name, 1)
            write_split(tmp, split, names, images, labels, f"{images_name} + {labels_name}")
    return Path(out)
