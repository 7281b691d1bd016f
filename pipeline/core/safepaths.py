"""Labels never become paths: safe file names for class names, and joins that stay inside.

Writers build file paths from data: class names, split names, sample ids. Data is
not trusted to be a path: a class called ``..`` or ``../../x``, a name with a
separator, a control character or a Windows device name would write outside the
output directory, or somewhere unexpected.

* ``safe_names`` maps names to file names deterministically: separators, control
  characters and characters Windows refuses become ``_``; names that are empty,
  start with a dot (``.``, ``..``, hidden) or are reserved device names (``CON``,
  ``NUL``, ``COM1``...) get a ``_`` prefix; a name
  that had to change, or that collides with another (also case-insensitively, as
  on macOS and Windows), gets a short hash of the real name appended. Unchanged
  names stay as they are. The real names stay in the written annotations.
* ``join_inside`` joins path parts under a root and raises if the result is not
  strictly inside it (absolute parts, ``..``, NUL, nothing), checked on the normalized path.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Iterable

from pipeline.core.errors import PipelineError

_BAD = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_NAME = 120  # bytes, well under every filesystem's 255


class UnsafePath(PipelineError):
    """A path built from data would leave the output directory."""


def _tag(name: str) -> str:
    return hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def _cleaned(name: str) -> str:
    safe = _BAD.sub("_", unicodedata.normalize("NFC", name)).strip(" ")
    safe = safe.rstrip(".") if safe not in (".", "..") else safe  # Windows drops trailing dots
    if safe.startswith(".") or not safe or safe.split(".")[0].lower() in _RESERVED:
        safe = "_" + safe  # no hidden folders (tools skip them), no "." or "..", no device names
    while len(safe.encode("utf-8", "surrogatepass")) > MAX_NAME:
        safe = safe[:-1]
    return safe


def safe_names(names: Iterable[str]) -> dict[str, str]:
    """``{name: file name}`` for every distinct name: safe, unique (also ignoring case), deterministic."""
    names = sorted(set(names))
    first = {n: _cleaned(n) for n in names}
    count: dict[str, int] = {}
    for safe in first.values():
        count[safe.lower()] = count.get(safe.lower(), 0) + 1
    out = {}
    for n in names:
        safe = first[n]
        if safe != n or count[safe.lower()] > 1:
            safe = f"{safe}-{_tag(n)}"
        out[n] = safe
    taken = [s.lower() for s in out.values()]
    if len(set(taken)) != len(taken):  # a hash collision between two changed names: vanishingly rare
        raise UnsafePath(f"names {names!r} cannot be given distinct file names")
    return out


def join_inside(root: Path, *parts: str) -> Path:
    """``root / parts...``, proven to lie strictly inside ``root``; else ``UnsafePath``."""
    rel = PurePosixPath(*parts) if parts else PurePosixPath()
    text = str(rel)
    if not parts or "\x00" in text or rel.is_absolute() or ".." in rel.parts or text in ("", "."):
        raise UnsafePath(f"{'/'.join(parts)!r}: not a relative path inside {root}; refusing to write it")
    path = Path(root).joinpath(*rel.parts)
    base = os.path.normpath(os.path.abspath(root))
    norm = os.path.normpath(os.path.abspath(path))
    if not norm.startswith(base.rstrip(os.sep) + os.sep):
        raise UnsafePath(f"{'/'.join(parts)!r}: resolves outside {root}; refusing to write it")
    return path
