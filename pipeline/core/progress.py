"""Progress bars for long work (tqdm on stderr; quiet when not a terminal under CI)."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def bar(desc: str, total: int | None = None, unit: str = "it", show: bool = True, **kw):
    """A progress bar: call ``.update(n)``, then ``.close()``. The one policy: under DVC
    the stage output is not a TTY, so progress still shows but updates rarely (logs stay
    readable); ``PIPELINE_NO_PROGRESS=1`` (or ``show=False``) hides it."""
    from tqdm import tqdm

    return tqdm(desc=desc, total=total, unit=unit, mininterval=0.1 if sys.stderr.isatty() else 2.0,
                disable=not show or os.environ.get("PIPELINE_NO_PROGRESS") == "1", dynamic_ncols=True, **kw)


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    yield from bar(desc, total, unit, iterable=items)


def byte_progress(desc: str, total: int | None, initial: int = 0):
    """A progress bar counted in bytes (for downloads): call ``.update(n)``, then ``.close()``."""
    return bar(desc, total, "B", initial=initial, unit_scale=True, unit_divisor=1024)
