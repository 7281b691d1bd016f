"""Walking a source tree and resolving the image an annotation names, safely.

Shared by every reader (ImageFolder and the paired-annotation readers: VOC,
YOLO, CreateML, labelme, COCO). Every file found is accounted for: an image
becomes a candidate, an annotation is read, anything else becomes a candidate
too (decode quarantines it as ``not-an-image``), so accepted + quarantined
always equals the files found.

* **Links to directories** are not walked (no loops, no file counted twice) and
  never skipped silently: each is a row, ``linked-directory`` (its target lies
  inside the tree and is read at its real path) or ``path-outside-root``.
* **File names that are not UTF-8** (``caf<0xE9>.png`` from a Latin-1 system)
  come from ``os.walk`` as surrogate escapes; their root-relative path, which
  ids, manifests and quarantine rows use, writes each such byte as ``%XX``
  (``caf%E9.png``, ``printable``): stable, and valid text in every output.
* **Annotation files are read through** ``pipeline.inputfile`` (regular files
  only, a size cap per kind, UTF-8, JSON depth and finite numbers); a refusal
  carries its own reason (``not-a-regular-file``, ``dangling-link``,
  ``file-too-large``, ``not-utf8``, ``json-too-deep``, ...).

An image reference that resolves outside the source root (``../``, an absolute
path, a symlink pointing out) is refused: ingest never reads outside the tree it
was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterator

from pipeline.config import IngestParams
from pipeline.errors import InputError
from pipeline.inputfile import LIMITS, InputRefused, parse_json, read_bytes
from pipeline.record import Rejected, printable

IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class ReadLimits:
    """Caps for the files a reader opens (``ingest.max_annotation_bytes`` and friends)."""

    annotation_bytes: int = LIMITS["annotation"]  # one XML / labelme JSON / YOLO txt
    index_bytes: int = LIMITS["index"]  # COCO / CreateML JSON covering many images
    config_bytes: int = LIMITS["config"]  # classes.txt, data.yaml
    max_pixels: int = IngestParams.model_fields["max_pixels"].default  # largest mask an annotation may declare


@dataclass(frozen=True)
class Walk:
    """The files of a tree in a stable order, and the linked directories not read."""

    files: list[Path]
    skipped: list[Rejected]


def walk(root: Path) -> Walk:
    """Every file under ``root`` in a stable order; links to directories are reported, not walked.

    A link to a directory inside the root would only name files already found at
    their real path (or form a loop), so each such link is one ``linked-directory``
    row; a link out of the root is ``path-outside-root``. Neither is silently skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found")
    real_root = os.path.realpath(root)
    files: list[Path] = []
    skipped: list[Rejected] = []
    for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False: no loops
        dirnames.sort()
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                continue
            real = os.path.realpath(full)
            if _within(real, real_root):
                where = printable(os.path.relpath(real, real_root).replace(os.sep, "/"))
                skipped.append(Rejected(path=rel(Path(full), root), reason="linked-directory",
                                        detail=f"a link to the directory {where!r} of this tree, whose files are "
                                               "read there (each file is counted once; links can loop)"))
            else:
                skipped.append(Rejected(path=rel(Path(full), root), reason="path-outside-root",
                                        detail="a link to a directory outside the source root; not read"))
        files.extend(Path(dirpath) / f for f in sorted(filenames))
    return Walk(files, skipped)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def json_documents(root: Path, files: list[Path], limit: int = LIMITS["annotation"],
                   kind: str = "annotation") -> Iterator[tuple[str, Any | None, InputRefused | None]]:
    """``(root-relative path, parsed JSON or None, refusal)`` for every ``*.json`` file.

    The one place JSON annotation files are read (labelme, CreateML, COCO), through
    the guarded reader: a file that cannot be read or is not valid JSON comes back
    with ``None`` and the refusal, for the reader to quarantine with its reason.
    """
    for f in files:
        if f.suffix.lower() != ".json":
            continue
        try:
            yield rel(f, root), parse_json(read_bytes(f, kind, limit)), None
        except InputRefused as err:
            yield rel(f, root), None, err


def rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, posix, as printable text (see ``printable``)."""
    return printable(Path(path).relative_to(root).as_posix())


def normalize_ref(ref: str) -> str:
    """An annotation's image reference as a posix path (Windows backslashes too, labelme #1725)."""
    ref = ref.strip()
    if "\\" in ref or (len(ref) > 1 and ref[1] == ":"):
        return PureWindowsPath(ref).as_posix()
    return PurePosixPath(ref).as_posix()


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside ``root``."""
    return _within(os.path.realpath(path), os.path.realpath(root))


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
