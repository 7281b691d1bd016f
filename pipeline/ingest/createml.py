"""CreateML JSON (labelImg): one file per folder listing many images.

``[{"image": name, "annotations": [{"label", "coordinates": {x, y, width, height}}]}]``
where **x, y is the box centre** in pixels (not the corner). Images of the tree
that no entry names are background images.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.ingest.candidate import AnnotationError, Candidate, Parsed, RawObject, problem
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import json_documents, list_files
from pipeline.record import Rejected


def _entry(e) -> tuple[str, Parsed]:
    if not isinstance(e, dict) or not isinstance(e.get("image"), str):
        raise AnnotationError("bad-entry", "entry needs an `image` name")
    objects, problems = [], []
    anns = e.get("annotations") or []
    if not isinstance(anns, list):
        raise AnnotationError("bad-entry", "`annotations` must be a list")
    for i, a in enumerate(anns):
        try:
            label = a["label"]
            c = a["coordinates"]
            x, y, w, h = (float(c[k]) for k in ("x", "y", "width", "height"))
            if not isinstance(label, str) or not label:
                raise TypeError
        except (KeyError, TypeError, ValueError):
            problems.append(problem("bad-annotation", f"{e['image']}: needs label and coordinates x, y, width, height", i))
            continue
        objects.append(RawObject(label, (x - w / 2, y - h / 2, x + w / 2, y + h / 2), index=i))
    return e["image"], Parsed(objects=tuple(objects), problems=tuple(problems), image=e["image"])


def parse_createml(obj) -> list[tuple[str, Parsed | AnnotationError]]:
    """One ``(image name, Parsed or the entry's error)`` per entry of a CreateML file."""
    if not isinstance(obj, list):
        raise AnnotationError("not-createml", "top level must be a list of {image, annotations}")
    out: list[tuple[str, Parsed | AnnotationError]] = []
    for e in obj:
        try:
            out.append(_entry(e))
        except AnnotationError as err:
            out.append(("", err))
    return out


def read_createml(root: Path, keep_background: bool = True, prefix: str = "") -> Iterator[Candidate | Rejected]:
    root = Path(root)
    files = list_files(root)
    entries, ann_files = [], set()
    for r, obj, error in json_documents(root, files):
        if obj is None:
            ann_files.add(r)
            yield Rejected(path=r, reason="malformed-json", detail=error, source=str(root))
            continue
        try:
            parsed = parse_createml(obj)
        except AnnotationError:
            continue  # not a CreateML file: it stays an ordinary file (quarantined as not-an-image)
        ann_files.add(r)
        base = str(PurePosixPath(r).parent)
        for i, (name, p) in enumerate(parsed):
            entries.append(Entry(ann=r, parsed=p, refs=(name,) if name else (), base=base, index=i))
    yield from assemble(root, "createml", files, entries, keep_background, prefix, annotation_files=ann_files)
