"""ImageFolder trees: ``root/<class>/<image>`` or ``root/<split>/<class>/<image>``.

A tree whose top-level directories are all split names (train, val/valid/
validation, test) keeps that split. Files outside a class directory, and files
nested below one, are quarantined rather than guessed at; non-images are
quarantined too (the decode step names the reason). Hidden files and folders
(``.DS_Store``, ``__MACOSX/``) are skipped and counted (``tree.walk``), so that
accepted + quarantined + hidden always equals what was in the tree. Linked class
directories are followed inside the root and reported otherwise (``tree.walk``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pipeline.errors import InputError
from pipeline.ingest.candidate import Candidate, Layout
from pipeline.ingest.tree import inside, rel, hidden_rows, is_hidden, walk
from pipeline.record import Rejected, Source

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def read_imagefolder(root: Path, source_name: str = "") -> Iterator[Candidate | Rejected]:
    """Yield a Candidate per file under a class directory, a Rejected for the rest."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found (ImageFolder needs root/<class>/<image>)")
    tops = [p for p in sorted(root.iterdir()) if p.is_dir() and not is_hidden(p.name)]
    has_splits = bool(tops) and all(p.name.lower() in SPLIT_NAMES for p in tops)
    prefix = f"{source_name}/" if source_name else ""
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    yield Layout("imagefolder")
    for path in found.files:
        r = rel(path, root)
        parts = r.split("/")  # root-relative and normalized: no empty or "." parts
        split = SPLIT_NAMES[parts[0].lower()] if has_splits and len(parts) > 1 else None
        class_parts = parts[1:] if split else parts
        if len(class_parts) != 2:
            where = "at the top of the tree" if len(class_parts) < 2 else "nested below a class directory"
            layout = "root/<split>/<class>/<image>" if has_splits else "root/<class>/<image>"
            yield Rejected(path=r, reason="outside-class-dir", detail=f"file {where}; expected {layout}")
            continue
        # Linked directories are only followed inside the root (``walk``), so only the
        # file itself can point out; resolving every path would cost a realpath per file.
        if path.is_symlink() and not inside(root, path):
            yield Rejected(path=r, reason="path-outside-root",
                           detail="a link pointing outside the source root; not read")
            continue
        yield Candidate(
            id=prefix + r,
            path=str(path),
            source=Source(format="imagefolder", path=r),
            label=class_parts[0],
            split=split,
        )
