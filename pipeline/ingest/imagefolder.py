"""ImageFolder trees: ``root/<class>/<image>`` or ``root/<split>/<class>/<image>``.

A tree whose top-level directories are all split names (train, val/valid/
validation, test) keeps that split. Files outside a class directory, and files
nested below one, are quarantined rather than guessed at; hidden files and
non-images are quarantined too (the decode step names the reason), so that
accepted + quarantined always equals what was in the tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from pipeline.errors import InputError
from pipeline.ingest.candidate import Candidate
from pipeline.ingest.tree import inside, printable
from pipeline.record import Rejected, Source

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / f for f in sorted(filenames))
    return out


def read_imagefolder(root: Path, source_name: str = "") -> Iterator[Candidate | Rejected]:
    """Yield a Candidate per file under a class directory, a Rejected for the rest."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found (ImageFolder needs root/<class>/<image>)")
    tops = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    has_splits = bool(tops) and all(p.name.lower() in SPLIT_NAMES for p in tops)
    prefix = f"{source_name}/" if source_name else ""
    for path in _files(root):
        rel = path.relative_to(root)
        rel_name = printable(rel.as_posix())  # the id and record path; the file is opened by its real name
        parts = rel.parts
        split = SPLIT_NAMES[parts[0].lower()] if has_splits and len(parts) > 1 else None
        class_parts = parts[1:] if split else parts
        if len(class_parts) != 2:
            where = "at the top of the tree" if len(class_parts) < 2 else "nested below a class directory"
            layout = "root/<split>/<class>/<image>" if has_splits else "root/<class>/<image>"
            yield Rejected(path=rel_name, reason="outside-class-dir",
                           detail=f"file {where}; expected {layout}", source=str(root))
            continue
        # os.walk does not descend into linked directories, so only the file itself can
        # be a link; resolving every path would cost a realpath per file.
        if path.is_symlink() and not inside(root, path):
            yield Rejected(path=rel_name, reason="path-outside-root",
                           detail="a link pointing outside the source root; not read", source=str(root))
            continue
        yield Candidate(
            id=prefix + rel_name,
            path=str(path),
            source=Source(format="imagefolder", path=rel_name, root=str(root)),
            label=printable(class_parts[0]),
            split=split,
        )
