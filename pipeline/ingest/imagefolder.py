"""ImageFolder trees: ``root/<class>/<image>`` or ``root/<split>/<class>/<image>``.

A tree whose top-level directories are all split names (train, val/valid/
validation, test) keeps that split. A class folder named like a layout folder
(``images``, ``labels``, ``annotations``, ``JPEGImages``, any case) is refused with
the format the tree looks like: it is an annotated tree read the wrong way. Files outside a class directory, and files
nested below one, are quarantined rather than guessed at; non-images are
quarantined too (the decode step names the reason). Hidden files and folders
(``.DS_Store``, ``__MACOSX/``) are skipped and counted (``tree.walk``), so that
accepted + quarantined + hidden always equals what was in the tree. Linked class
directories are followed inside the root and reported otherwise (``tree.walk``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pipeline.core.errors import InputError
from pipeline.ingest.candidate import Candidate, Layout, Skipped
from pipeline.ingest.tree import SPLIT_NAMES, hidden_rows, inside, is_hidden, not_an_image, rel, walk
from pipeline.record import Rejected, Source

# Folders annotated layouts are made of; as ImageFolder classes they would turn a YOLO,
# VOC or COCO tree into a classification set of "images" and "labels".
LAYOUT_NAMES = {"images", "labels", "annotations", "jpegimages", "imagesets", "labeltxt", "segmentationclass",
                "segmentationobject"}


def _refuse_layout_folders(root: Path, classes: set[str]) -> None:
    """``InputError`` when a would-be class is a layout folder, saying which format the tree looks like."""
    from pipeline.core.formats import INGEST_FORMATS
    from pipeline.ingest.detect import evidence
    from pipeline.ingest.sniff import unsupported

    found = sorted(c for c in classes if c.lower() in LAYOUT_NAMES)
    if not found:
        return
    rels = {rel(f, root): f for f in walk(root).files}
    ev = {k: [v] for k, v in unsupported(rels).items()} or evidence(root, rels)
    names = {c.lower() for c in classes}
    guess = ("; ".join(f"{k}: {', '.join(v)}" for k, v in ev.items()) if ev else
             "YOLO (images/ beside labels/, no label file paired with an image)" if "labels" in names else
             "Pascal VOC or COCO (annotations beside images)" if names & {"annotations", "jpegimages", "imagesets"}
             else "an annotated layout's image folder, without its annotations")
    folders = ", ".join(f"{c}/" for c in found)
    raise InputError(f"{root}: {folders} {'is a layout folder' if len(found) == 1 else 'are layout folders'}, "
                     f"not {'a class' if len(found) == 1 else 'classes'}: the tree looks like {guess}, not "
                     f"ImageFolder (root/<class>/<image>); name its format with --format "
                     f"({', '.join(INGEST_FORMATS)}), or rename the folder if it really is a class")


def read_imagefolder(root: Path, source_name: str = "") -> Iterator[Candidate | Rejected]:
    """Yield a Candidate per file under a class directory, a Rejected for the rest."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found (ImageFolder needs root/<class>/<image>)")
    tops = [p for p in sorted(root.iterdir()) if p.is_dir() and not is_hidden(p.name)]
    has_splits = bool(tops) and all(p.name.lower() in SPLIT_NAMES for p in tops)
    prefix = f"{source_name}/" if source_name else ""
    found = walk(root)
    rels = [rel(path, root) for path in found.files]
    placed = []  # (split, the path below it): root-relative and normalized, no empty or "." parts
    for r in rels:
        parts = r.split("/")
        split = SPLIT_NAMES[parts[0].lower()] if has_splits and len(parts) > 1 else None
        placed.append((split, parts[1:] if split else parts))
    # Every first folder a file sits in (a class, or deeper), before anything is yielded.
    _refuse_layout_folders(root, {p[0] for _, p in placed if len(p) > 1})
    yield from found.skipped
    yield from hidden_rows(found)
    named = {(SPLIT_NAMES[p.name.lower()], f"{p.name}/") for p in tops} if has_splits else set()
    yield Layout("imagefolder", splits=tuple(sorted(named)))
    for path, r, (split, class_parts) in zip(found.files, rels, placed):
        if (why := not_an_image(r)) is not None:
            yield Skipped(path=r, kind="ignored", why=why)
            continue
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
