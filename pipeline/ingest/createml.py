"""CreateML JSON (labelImg): one file per folder listing many images.

``[{"image": name, "annotations": [{"label", "coordinates": {x, y, width, height}}]}]``
where **x, y is the box centre** in pixels (not the corner). Images of the tree
that no entry names are background images; an image whose entry is refused
(``bad-entry``) is quarantined as ``annotation-unusable``. Coordinates must be
JSON numbers (``bad-annotation`` with the annotation's index otherwise).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.ingest.candidate import AnnotationError, Candidate, Layout, Parsed, RawObject, guarded, problem
from pipeline.ingest.numbers import json_number, shown
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import ReadLimits, json_documents, hidden_rows, walk
from pipeline.record import Rejected


def _entry(e) -> tuple[str, Parsed]:
    if not isinstance(e, dict) or not isinstance(e.get("image"), str) or not e["image"]:
        raise AnnotationError("bad-entry", "entry needs an `image` name")
    objects, problems = [], []
    anns = e.get("annotations")
    if anns is None:
        anns = []
    if not isinstance(anns, list):
        raise AnnotationError("bad-entry", f"{shown(e['image'])}: `annotations` is {shown(anns)}, not a list")
    for i, a in enumerate(anns):
        try:
            if not isinstance(a, dict):
                raise ValueError(f"annotation {shown(a)} is not an object")
            label, c = a.get("label"), a.get("coordinates")
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"label {shown(label)} is not a non-empty string")
            if not isinstance(c, dict):
                raise ValueError(f"coordinates {shown(c)} is not an object")
            x, y, w, h = (json_number(c.get(k)) for k in ("x", "y", "width", "height"))
        except ValueError as err:
            problems.append(problem("bad-annotation", f"{shown(e['image'])}: needs label and coordinates "
                                    f"x, y, width, height: {err}", i))
            continue
        objects.append(RawObject(label, (x - w / 2, y - h / 2, x + w / 2, y + h / 2), index=i))
    return e["image"], Parsed(objects=tuple(objects), problems=tuple(problems), image=e["image"])


def parse_createml(obj) -> list[tuple[str, Parsed | AnnotationError]]:
    """One ``(image name, Parsed or the entry's error)`` per entry of a CreateML file.

    A refused entry keeps its image name when it has one, so the image is
    quarantined (``annotation-unusable``) rather than taken for a background image.
    """
    if not isinstance(obj, list):
        raise AnnotationError("not-createml", "top level must be a list of {image, annotations}")
    out: list[tuple[str, Parsed | AnnotationError]] = []
    for e in obj:
        try:
            out.append(_entry(e))
        except AnnotationError as err:
            name = e.get("image") if isinstance(e, dict) and isinstance(e.get("image"), str) else ""
            out.append((name, err))
    return out


def read_createml(root: Path, keep_background: bool = True, prefix: str = "",
                  limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    yield Layout("createml")
    entries, ann_files, refused_files = [], set(), []
    for r, obj, refused in json_documents(root, found.files, limits.index_bytes, "index"):
        if refused is not None:
            ann_files.add(r)
            refused_files.append(r)
            yield Rejected(path=r, reason=refused.reason, detail=refused.detail)
            continue
        parsed = guarded(parse_createml, obj)
        if isinstance(parsed, AnnotationError):
            if parsed.reason == "not-createml":
                continue  # not a CreateML file: it stays an ordinary file (quarantined as not-an-image)
            ann_files.add(r)
            refused_files.append(r)
            yield Rejected(path=r, reason=parsed.reason, detail=parsed.detail)
            continue
        ann_files.add(r)
        base = str(PurePosixPath(r).parent)
        for i, (name, p) in enumerate(parsed):
            entries.append(Entry(ann=r, parsed=p, refs=(name,) if name else (), base=base, index=i))
    yield from assemble(root, "createml", found.files, entries, keep_background, prefix,
                        annotation_files=ann_files, refused=tuple(refused_files))
