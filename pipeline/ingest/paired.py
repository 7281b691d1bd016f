"""Pair annotation files with images, for every format that keeps them apart.

A format reader parses its annotation files into ``Entry`` values (one per image
the annotations describe); ``assemble`` resolves each entry's image, and yields:

* a ``Candidate`` per annotated image, with the parser's line/shape problems as
  ``Rejected`` records carrying their index;
* ``Rejected`` ``annotation-unusable`` for an image whose annotation was refused, or
  whose every object was (it is never taken for a background image);
* ``Rejected`` for an unusable annotation file (the reason the parser gave), an
  annotation whose image is missing (``annotation-without-image``; labelme falls
  back to its embedded ``imageData`` first), a reference outside the source root
  (``path-outside-root``) and a second annotation of the same image
  (``duplicate-annotation``);
* a background ``Candidate`` per image no annotation names (``ingest.keep_background``),
  or ``Rejected`` ``image-without-annotation`` when backgrounds are not kept, or
  ``annotation-unusable`` when a COCO/CreateML file of the tree could not be read
  (the image may be described there).

Any other file becomes a candidate too, so decode quarantines it with its real
reason (``not-an-image``, ...), unless the format's index does not name it: then
it is counted as ``unlisted`` (``Skipped``). The annotation and index files read
are counted too (``Skipped`` ``annotation`` / ``index``), and files the format
passes over on purpose (``ignored``, with why). Every file found is accounted for.

Every entry of a parsed annotation is counted once (``Tally``): refused (its
problem row), ignored (crowd regions, labelme region shapes), gone with a
quarantined input (the annotation or its image), or left on its candidate for the
decode step to count as an object or refused.
The split is the one the format's index gives (``Entry.split``), else a directory
component named train/val/valid/validation/test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from pipeline.ingest.candidate import CROWD_REGION, AnnotationError, Candidate, Parsed, Skipped, Tally, located
from pipeline.ingest.tree import IMAGE_EXTS, SPLIT_NAMES, ImageIndex, inside, normalize_ref, not_an_image, rel
from pipeline.record import Rejected, Source


@dataclass(frozen=True)
class Entry:
    ann: str  # annotation file, root-relative posix
    parsed: Parsed | AnnotationError
    refs: tuple[str, ...]  # image references to try in order, relative to ``base``
    base: str = ""  # directory the references are relative to
    index: int | None = None  # entry position inside a file that describes many images
    normalized: bool = False
    split: str | None = None  # the split the format's index gives (else from the path)
    missing: str = ""  # the detail when no reference is found (where the format looks)
    notes: tuple[str, ...] = ()


def split_of(path: str) -> str | None:
    for part in PurePosixPath(path).parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[part.lower()]
    return None


def _reject(path: str, reason: str, detail: str, root: Path, index: int | None = None) -> Rejected:
    return Rejected(path=path, reason=reason, detail=detail, index=index)


def _entries(p: Parsed) -> int:
    """Every entry the parser looked at: its objects (a labelme group counts its shapes),
    problems, ignored shapes and the entry that gave the image its label."""
    return sum(o.entries for o in p.objects) + len(p.problems) + p.ignored + p.label_entry


def _settled(p: Parsed) -> Tally:
    """The entries of ``p`` settled while reading: the refused and the ignored ones."""
    crowd = sum(1 for r in p.problems if r.reason == CROWD_REGION)
    return Tally(refused=len(p.problems) - crowd, ignored=crowd + p.ignored)


def assemble(root: Path, fmt: str, files: list[Path], entries: list[Entry], keep_background: bool,
             prefix: str = "", annotation_files: set[str] = frozenset(),
             auxiliary: set[str] = frozenset(), refused: tuple[str, ...] = (),
             ignored: dict[str, str] | None = None,
             unlisted: Callable[[str], bool] = lambda r: False,
             split_of_path: Callable[[str], str | None] = split_of) -> Iterator[Candidate | Rejected | Skipped]:
    """Yield candidates and rejections for a tree; see the module docstring.

    ``unlisted(path)`` is true for a file the format's index does not name (COCO,
    VOC ``ImageSets``, ``data.yaml`` splits): when no annotation claims it, it is
    counted as ``Skipped`` ``unlisted`` instead of becoming a background image or an
    input quarantined as ``not-an-image``. ``split_of_path`` gives an image's split
    when its entry does not (default: a split folder in its path).

    ``refused`` lists files describing many images (COCO, CreateML) that could not
    be read at all: any image they might describe is unknown, so no image nobody
    else annotates is taken for a background image; each is ``annotation-unusable``.

    ``annotation_files`` (annotations) and ``auxiliary`` (index, names and list files,
    or files the reader quarantined itself) are never images; each is counted as
    read (``Skipped`` ``annotation`` / ``index``). ``ignored`` maps files the format
    passes over on purpose to why.
    """
    ignored = ignored or {}
    index = ImageIndex(root, [f for f in files
                              if (r := rel(f, root)) not in annotation_files and r not in auxiliary
                              and r not in ignored])
    claimed: dict[str, str] = {}
    for e in entries:
        where = f" (entry {e.index})" if e.index is not None else ""
        if isinstance(e.parsed, AnnotationError):
            yield _reject(e.ann, e.parsed.reason, e.parsed.detail + where, root, e.index)
            # Its image is not a background image: its objects are unknown, so it waits too.
            image = next((f for ref in e.refs for f in [index.find(e.base, ref)[0]] if f), None)
            if image is not None and image not in claimed:  # (its entries are unknown: not counted)
                claimed[image] = e.ann
                yield _reject(image, "annotation-unusable",
                              f"its annotation {e.ann} was refused ({e.parsed.reason})", root)
            continue
        p = e.parsed
        found, why, outside = None, "", False
        for k, ref in enumerate(e.refs):
            found, why = index.find(e.base, ref)
            # The file's own reference pointing out of the tree is refused outright;
            # later references are our fallbacks (the annotation's stem, images/).
            outside = k == 0 and "outside the source root" in why
            if found or outside:
                break
        gone = Tally(with_quarantined_input=_entries(p))  # when the annotation is quarantined
        if outside:
            yield _reject(e.ann, "path-outside-root", why + where, root, e.index)
            yield gone
            continue
        if found is not None and found in claimed:
            yield _reject(e.ann, "duplicate-annotation",
                          f"image {found!r} is already annotated by {claimed[found]}{where}", root, e.index)
            yield gone
            continue
        problems = located(p.problems, e.ann)
        if found is None and p.image_data is None:
            yield _reject(e.ann, "annotation-without-image", (e.missing or why) + where, root, e.index)
            yield gone
            continue
        if found is not None:
            claimed[found] = e.ann
            image_rel, path, data, notes = found, str(index.by_rel[found]), None, p.notes
        else:  # labelme: the image exists only inside the JSON
            ref = normalize_ref(e.refs[0]) if e.refs else PurePosixPath(e.ann).stem + ".png"
            image_rel = str(PurePosixPath(e.base) / PurePosixPath(ref).name)
            path, data, notes = "", p.image_data, p.notes + ("image-from-imageData",)
        yield from problems
        yield _settled(p)
        if problems and not p.objects and p.label is None:
            # Every object it described was refused: the image is not a background image
            # (its objects are unknown to the dataset), so it waits with them.
            reasons = ", ".join(sorted({r.reason for r in problems}))
            yield _reject(image_rel, "annotation-unusable", f"every object of its annotation {e.ann} was "
                          f"refused ({reasons}){where}", root)
            continue
        yield Candidate(
            id=prefix + image_rel, path=path,
            source=Source(format=fmt, path=image_rel, annotation=e.ann),
            label=p.label, split=e.split or split_of_path(image_rel), raw=p.objects, normalized=e.normalized,
            declared_size=p.size, data=data, notes=notes + e.notes, label_entry=p.label_entry,
        )
    for kind, paths in (("annotation", annotation_files), ("index", auxiliary)):
        yield from (Skipped(path=r, kind=kind) for r in sorted(paths) if r not in ignored)
    yield from (Skipped(path=r, kind="ignored", why=why) for r, why in sorted(ignored.items()))
    for r, path in index.by_rel.items():
        if r in claimed:
            continue
        if not inside(root, path):
            yield _reject(r, "path-outside-root", "a link pointing outside the source root; not read", root)
            continue
        is_image = PurePosixPath(r).suffix.lower() in IMAGE_EXTS
        if is_image and refused:
            yield _reject(r, "annotation-unusable", f"the annotation file {', '.join(refused)} was refused; "
                          "this image may be described there, so it is not taken for a background image", root)
            continue
        if unlisted(r):
            yield Skipped(path=r, kind="unlisted")
            continue
        if is_image and not keep_background:
            yield _reject(r, "image-without-annotation",
                          "no annotation names this image (ingest.keep_background is false)", root)
            continue
        if (why := not_an_image(r)) is not None:
            yield Skipped(path=r, kind="ignored", why=why)
            continue
        yield Candidate(id=prefix + r, path=str(path),
                        source=Source(format=fmt, path=r), split=split_of_path(r),
                        notes=("background",) if is_image else ())
