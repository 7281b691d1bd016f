"""Walking a source tree and resolving the image an annotation names, safely.

Shared by every reader (ImageFolder and the paired-annotation readers: VOC,
YOLO, CreateML, labelme, COCO). Every file found is accounted for exactly once:
a sample, a quarantine row, an annotation file read, ``unlisted`` (a file the
format's index does not name) or ``hidden``.

* **Hidden entries** (a name starting with ``.``, and ``__MACOSX``: ``.DS_Store``,
  ``.ipynb_checkpoints/``, ``.readme/``) are never read: each file under one is
  counted in ``Walk.hidden`` (``skipped_hidden`` in ``report.json``), not listed
  as a sample or a quarantine row.
* **Links to directories** are not walked (no loops, no file counted twice) and
  never skipped silently: each is a row, ``linked-directory`` (its target lies
  inside the tree and is read at its real path) or ``path-outside-root``.
* **File names that are not UTF-8** (``caf<0xE9>.png`` from a Latin-1 system)
  come from ``os.walk`` as surrogate escapes; their root-relative path, which
  ids, manifests and quarantine rows use, writes each such byte as ``%XX``
  (``caf%E9.png``, ``printable``): stable, and valid text in every output.
* **Annotation files are read through** ``pipeline.core.inputfile`` (regular files
  only, a size cap per kind, UTF-8, JSON depth and finite numbers); a refusal
  carries its own reason (``not-a-regular-file``, ``dangling-link``,
  ``file-too-large``, ``not-utf8``, ``json-too-deep``, ...).

An image reference that resolves outside the source root (``../``, an absolute
path, a symlink pointing out) is refused: ingest never reads outside the tree it
was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterator

from pipeline.config import IngestParams
from pipeline.core.errors import InputError
from pipeline.core.inputfile import LIMITS, InputRefused, parse_json, read_bytes
from pipeline.record import Rejected, printable

# Folder names that give a split, in every format that reads splits from folders.
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Files no one takes for an image: the READMEs, notes, scripts, label lists and archives
# real trees hold beside their images. Unless a format reads them (annotations, index
# and names files), they are ``ignored`` with why, never quarantined as a broken image:
# they are not lost data, and would count against ``ingest.max_loss``. Anything else
# that is not an image (no extension, a misnamed file) is decoded and quarantined.
NOT_IMAGE_EXTS = {".md", ".markdown", ".txt", ".rst", ".pdf", ".doc", ".docx", ".odt", ".rtf", ".html", ".htm",
                  ".py", ".ipynb", ".sh", ".bat", ".ps1", ".js", ".r", ".m",
                  ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".csv", ".tsv", ".xml",
                  ".log", ".names", ".data", ".cache", ".license", ".lic",
                  ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar",
                  ".pt", ".pth", ".onnx", ".pkl", ".npy", ".npz", ".h5", ".mat"}


def not_an_image(path: str) -> str | None:
    """Why a file is passed over as not being an image (``NOT_IMAGE_EXTS``), or None."""
    suffix = PurePosixPath(path).suffix.lower()
    return f"not an image: a {suffix} file" if suffix in NOT_IMAGE_EXTS else None


@dataclass(frozen=True)
class ReadLimits:
    """Caps for the files a reader opens (``ingest.max_annotation_bytes`` and friends)."""

    annotation_bytes: int = LIMITS["annotation"]  # one XML / labelme JSON / YOLO txt
    index_bytes: int = LIMITS["index"]  # COCO / CreateML JSON covering many images
    config_bytes: int = LIMITS["config"]  # classes.txt, data.yaml
    max_pixels: int = IngestParams.model_fields["max_pixels"].default  # largest mask an annotation may declare


HIDDEN_NAMES = ("__MACOSX",)  # macOS zip resource forks: hidden, though not dot-named


def is_hidden(name: str) -> bool:
    """A file or folder name users never mean as data (dot files, ``__MACOSX``)."""
    return name.startswith(".") or name in HIDDEN_NAMES


@dataclass(frozen=True)
class Walk:
    """The files of a tree in a stable order, the linked directories not read, and
    the hidden files skipped (root-relative, printable)."""

    files: list[Path]
    skipped: list[Rejected]
    hidden: list[str] = field(default_factory=list)


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
    hidden: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False: no loops
        dirnames.sort()
        for d in [d for d in dirnames if is_hidden(d)]:
            dirnames.remove(d)
            hidden.extend(_entries(Path(dirpath) / d, root))
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
        base = Path(dirpath)
        for f in sorted(filenames):
            if is_hidden(f):
                hidden.append(rel(base / f, root))
            else:
                files.append(base / f)
    return Walk(files, skipped, sorted(hidden))


def _entries(top: Path, root: Path) -> list[str]:
    """Every entry under ``top`` that is not a real directory (a link to one counts), not followed."""
    if os.path.islink(top):
        return [rel(top, root)]
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        out.extend(rel(Path(dirpath) / n, root) for n in links + filenames)
    return out


def hidden_rows(found: Walk) -> list:
    """The hidden files of a walk as ``Skipped`` records (counted, never read)."""
    from pipeline.ingest.candidate import Skipped

    return [Skipped(path=r, kind="hidden") for r in found.hidden]


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
    p, r = os.fspath(path), os.fspath(root)
    if (os.sep == "/" and r and p.startswith(r + "/") and "//" not in p and "/./" not in p
            and not p.endswith(("/", "/."))):
        # The paths ``walk`` gives, joined onto the root as given: the string itself
        # (pathlib's relative_to cost ~25 us a file, a fifth of ingest's serial start).
        return printable(p[len(r) + 1:])
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
