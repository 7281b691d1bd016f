"""CIFAR-10 and CIFAR-100: the "python version" tar.gz -> ImageFolder ``train/`` and ``test/``.

Layout (https://www.cs.toronto.edu/~kriz/cifar.html): ``cifar-10-batches-py/``
holds ``data_batch_1..5``, ``test_batch`` and ``batches.meta``;
``cifar-100-python/`` holds ``train``, ``test`` and ``meta``. Each batch is a
pickled dict with ``data`` (uint8 ``(N, 3072)``: the red, green and blue 32x32
planes) and ``labels`` (CIFAR-100: ``fine_labels``). Class names come from the meta
file (CIFAR-100: the 100 fine labels). Pickles are loaded with an unpickler that
only builds numpy arrays, so a hostile archive cannot run code.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

from pipeline.core.atomic import atomic_dir
from pipeline.download import inputs_of
from pipeline.download.archive import safe_extract
from pipeline.download.imagetree import write_split
from pipeline.download.remote import BadDownload, FetchOptions, Remote, obtain
from pipeline.download.upstream import torchvision_attr

TORCHVISION_CLASS = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}
# What a CIFAR pickle may reference: numpy's array reconstruction (and, in protocol-2
# pickles written by Python 3, the bytes codec), nothing else. The files were written
# by numpy 1.x (numpy.core); numpy 2 names it numpy._core.
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def load_batch(path: Path, name: str) -> dict:
    """Read one CIFAR pickle (a dict) with keys as ``str``."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise BadDownload(f"{name}: missing from the archive; it is not the official CIFAR archive") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise BadDownload(f"{name}: not a CIFAR batch ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise BadDownload(f"{name}: not a CIFAR batch (a {type(obj).__name__}, expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _field(batch: dict, key: str, name: str):
    if key not in batch:
        raise BadDownload(f"{name}: no {key!r} entry (has {sorted(batch)})")
    return batch[key]


def _images(batch: dict, name: str):
    import numpy as np

    data = np.asarray(_field(batch, "data", name))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise BadDownload(f"{name}: data is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> HWC


def remotes(dataset: str) -> list[Remote]:
    cls = TORCHVISION_CLASS[dataset]
    return [Remote(torchvision_attr("cifar", cls, "filename"), (torchvision_attr("cifar", cls, "url"),),
                   "md5:" + torchvision_attr("cifar", cls, "tgz_md5"))]


def fetch(dataset: str, out: Path, opts: FetchOptions) -> Path:
    """Download (or take from cache/--from), verify, and write ``out/{train,test}/<class>/<n>.png``."""
    import numpy as np

    cls = TORCHVISION_CLASS[dataset]
    (remote,) = remotes(dataset)
    archive = obtain(dataset, [remote], opts)[remote.name]
    folder = torchvision_attr("cifar", cls, "base_folder")
    meta = torchvision_attr("cifar", cls, "meta")
    batches = {"train": [n for n, _ in torchvision_attr("cifar", cls, "train_list")],
               "test": [n for n, _ in torchvision_attr("cifar", cls, "test_list")]}
    with atomic_dir(Path(out), "download", inputs_of(opts)) as tmp:
        scratch = safe_extract(archive, tmp / ".archive") / folder
        meta_name = f"{folder}/{meta['filename']}"
        names = [str(n) for n in _field(load_batch(scratch / meta["filename"], meta_name), meta["key"], meta_name)]
        for split, files in batches.items():
            parts = [load_batch(scratch / f, f"{folder}/{f}") for f in files]
            images = np.concatenate([_images(b, f) for b, f in zip(parts, files)])
            labels = np.concatenate([np.asarray(b.get("labels", b.get("fine_labels", [])), dtype=np.int64)
                                     for b in parts])
            write_split(tmp, split, names, images, labels, f"{folder}/{'+'.join(files)}")
        shutil.rmtree(tmp / ".archive")
    return Path(out)
