"""Progress bars for long work (tqdm on stderr; quiet when not a terminal under CI)."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    from tqdm import tqdm

    # Under DVC the stage output is not a TTY; still show progress, but update
    # rarely so logs stay readable.
    interval = 0.1 if sys.stderr.isatty() else 2.0
    disable = os.environ.get("PIPELINE_NO_PROGRESS") == "1"
    yield from tqdm(items, desc=desc, total=total, unit=unit, mininterval=interval,
                    disable=disable, dynamic_ncols=True)


def byte_progress(desc: str, total: int | None, initial: int = 0):
    """A progress bar counted in bytes (for downloads): call ``.update(n)``, then ``.close()``."""
    from tqdm import tqdm

    interval = 0.1 if sys.stderr.isatty() else 2.0
    disable = os.environ.get("PIPELINE_NO_PROGRESS") == "1"
    return tqdm(desc=desc, total=total, initial=initial, unit="B", unit_scale=True,
                unit_divisor=1024, mininterval=interval, disable=disable, dynamic_ncols=True)
