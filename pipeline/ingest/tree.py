"""Walking a source tree and resolving the image an annotation names, safely.

Shared by the paired-annotation readers (VOC, YOLO, CreateML, labelme, COCO).
Every file found is accounted for: an image becomes a candidate, an annotation
is read, anything else becomes a candidate too (decode quarantines it as
``not-an-image``), so accepted + quarantined always equals the files found.

An image reference that resolves outside the source root (``../``, an absolute
path, a symlink pointing out) is refused: ingest never reads outside the tree it
was given.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterator

from pipeline.errors import InputError

IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def list_files(root: Path) -> list[Path]:
    """Every file under ``root`` in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / f for f in sorted(filenames))
    return out


def json_documents(root: Path, files: list[Path]) -> Iterator[tuple[str, Any | None, str]]:
    """``(root-relative path, parsed JSON or None, error)`` for every ``*.json`` file.

    The one place JSON annotation files are read (labelme, CreateML, COCO): a BOM is
    tolerated, and a file that is not valid JSON comes back with ``None`` and the
    parser's message, for the reader to quarantine as ``malformed-json``.
    """
    for f in files:
        if f.suffix.lower() != ".json":
            continue
        try:
            yield rel(f, root), json.loads(f.read_text(encoding="utf-8-sig")), ""
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            yield rel(f, root), None, str(err)


def rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, posix, as valid Unicode (see ``printable``)."""
    return printable(Path(path).relative_to(root).as_posix())


_UNDECODED = re.compile("[\udc80-\udcff]")


def printable(name: str) -> str:
    """A file name as valid Unicode: the bytes of a name that is not UTF-8 (held by
    Python as lone surrogates, ``caf\\xe9.png``) written ``%XX`` (``caf%E9.png``), so
    the sample gets a stable id that JSON files can hold. The file itself is still
    opened by its real name."""
    return _UNDECODED.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", name)


def normalize_ref(ref: str) -> str:
    """An annotation's image reference as a posix path (Windows backslashes too, labelme #1725)."""
    ref = ref.strip()
    if "\\" in ref or (len(ref) > 1 and ref[1] == ":"):
        return PureWindowsPath(ref).as_posix()
    return PurePosixPath(ref).as_posix()


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside ``root``.

    ``realpath`` rather than ``Path.resolve``: a link loop resolves to itself
    instead of raising, and reading it is then refused as ``link-loop``.
    """
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    return True


class ImageIndex:
    """The image files of a tree, looked up by path, by case and without extension."""

    def __init__(self, root: Path, files: list[Path]):
        self.root = Path(root)
        self.by_rel = {rel(f, root): f for f in files}
        self.by_lower: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for r in self.by_rel:
            self.by_lower.setdefault(r.lower(), []).append(r)
            p = PurePosixPath(r)
            if p.suffix.lower() in IMAGE_EXTS:
                self.by_stem.setdefault(str(p.with_suffix("")).lower(), []).append(r)

    def find(self, base: str, ref: str) -> tuple[str | None, str]:
        """Resolve ``ref`` written in a file under directory ``base`` (both posix, root-relative).

        Returns ``(relative image path or None, why not)``. Tries the exact path, then
        a case-insensitive match, then the same name with any image extension (VOC
        ``filename`` without its extension).
        """
        ref = normalize_ref(ref)
        if PurePosixPath(ref).is_absolute() or ref[1:2] == ":":
            # Someone else's machine (C:\\Users\\...): never read it; look for the
            # same file name beside the annotation instead.
            name = PurePosixPath(ref).name
            found, _ = self.find(base, name) if name else (None, "")
            return (found, "") if found else (None, f"absolute image path {ref!r} is not read; "
                                             f"no {name!r} beside the annotation")
        joined = os.path.normpath(os.path.join(base, ref)).replace(os.sep, "/")
        if joined == ".." or joined.startswith("../"):
            return None, f"image path {ref!r} resolves outside the source root"
        if joined in self.by_rel:
            return self._safe(joined)
        hits = self.by_lower.get(joined.lower(), [])
        if len(hits) == 1:
            return self._safe(hits[0])
        stem = str(PurePosixPath(joined).with_suffix("") if PurePosixPath(joined).suffix.lower()
                   in IMAGE_EXTS else PurePosixPath(joined)).lower()
        hits = self.by_stem.get(stem, [])
        if len(hits) == 1:
            return self._safe(hits[0])
        if len(hits) > 1:
            return None, f"image {ref!r} is ambiguous: {', '.join(sorted(hits))}"
        return None, f"image {ref!r} not found"

    def _safe(self, r: str) -> tuple[str | None, str]:
        if not inside(self.root, self.by_rel[r]):
            return None, f"image {r!r} is a link pointing outside the source root"
        return r, ""
