"""Atomic directory outputs.

A stage writes into a temporary directory beside its destination and renames it
into place only when everything succeeded, so an interrupted or failed run never
leaves a directory that looks complete (and that DVC could cache).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``dest``.

    On any exception the temporary directory is removed and ``dest`` is left as it
    was. The temporary directory sits beside ``dest`` (same filesystem) so the final
    rename is atomic.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
