"""Pascal VOC XML (labelImg): one file per image.

Coordinate convention (docs/ARCHITECTURE.md): VOC writes 1-based, inclusive pixel
indices, so ``xmin=1, xmax=W`` covers the whole width. In our continuous
coordinates (pixel i spans [i, i+1)) that is ``(xmin - 1, ymin - 1, xmax, ymax)``;
export writes the inverse with integers. Floats ("91.0") are accepted, parsed
strictly (``numbers.py``: no ``1_0``, full-width digits, non-breaking spaces or
``nan``); missing or empty ``difficult``/``truncated``/``pose`` and extra tags
(``occluded``, ``part``, ``actions``) are ignored; ``part`` boxes never become
objects.

Security: any DOCTYPE or ENTITY declaration is refused before the tree is built
(what defusedxml does), so XXE and billion-laughs files are quarantined as
``unsafe-xml`` and nothing is fetched or expanded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.parsers.expat
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.ingest.candidate import AnnotationError, Candidate, Parsed, RawObject, guarded, problem
from pipeline.ingest.numbers import ASCII_SPACE, parse_number, shown
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import ReadLimits, rel, walk
from pipeline.inputfile import read_bytes
from pipeline.record import Rejected

MAX_SIDE = 1 << 20  # largest image side a <size> may declare; larger is ignored like 0


def _refuse_declarations(raw: bytes) -> None:
    def refuse(*_args):
        raise AnnotationError("unsafe-xml", "DOCTYPE/ENTITY declarations are refused "
                              "(external entities and entity expansion are never processed)")

    p = xml.parsers.expat.ParserCreate()
    p.StartDoctypeDeclHandler = refuse
    p.EntityDeclHandler = refuse
    p.ExternalEntityRefHandler = refuse
    try:
        p.Parse(raw, True)
    except xml.parsers.expat.ExpatError as err:
        raise AnnotationError("malformed-xml", str(err)) from None


def _text(el, tag: str) -> str:
    child = el.find(tag)
    return (child.text or "").strip(ASCII_SPACE) if child is not None else ""


def _int(text: str) -> int | None:
    try:
        v = parse_number(text)
    except ValueError:
        return None
    return int(v) if v.is_integer() and 0 < v <= MAX_SIDE else None


def parse_voc(data: bytes | str) -> Parsed:
    """Parse one VOC annotation; raise AnnotationError when the file is unusable."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    _refuse_declarations(raw)
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as err:
        raise AnnotationError("malformed-xml", str(err)) from None
    if root.tag != "annotation":
        raise AnnotationError("not-voc", f"root element is <{root.tag}>, expected <annotation>")
    size_el = root.find("size")
    size = None
    if size_el is not None:
        w, h = _int(_text(size_el, "width")), _int(_text(size_el, "height"))
        size = (w, h) if w and h else None
    objects, problems = [], []
    for i, obj in enumerate(root.findall("object")):
        name = _text(obj, "name").strip()
        box = obj.find("bndbox")
        if not name:
            problems.append(problem("missing-label", "<object> without <name>", i))
            continue
        if box is None:
            problems.append(problem("missing-box", f"{name!r}: <object> without <bndbox>", i))
            continue
        try:
            xmin, ymin, xmax, ymax = (parse_number(_text(box, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as err:
            problems.append(problem("bad-coordinate", f"{shown(name)}: bndbox {err}", i))
            continue
        objects.append(RawObject(name, (xmin - 1.0, ymin - 1.0, xmax, ymax), index=i))
    return Parsed(objects=tuple(objects), problems=tuple(problems),
                  image=_text(root, "filename") or None, size=size)


def read_voc(root: Path, keep_background: bool = True, prefix: str = "",
             limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    """Pair each ``*.xml`` with its image (``filename``, else the XML's own stem)."""
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    entries = []
    for f in found.files:
        if f.suffix.lower() != ".xml":
            continue
        r = rel(f, root)
        base = str(PurePosixPath(r).parent)
        stem_ref = PurePosixPath(r).stem
        parsed = guarded(lambda f=f: parse_voc(read_bytes(f, "annotation", limits.annotation_bytes)))
        refs = [parsed.image] if isinstance(parsed, Parsed) and parsed.image else []
        entries.append(Entry(ann=r, parsed=parsed, refs=tuple(refs) + (stem_ref,), base=base))
    yield from assemble(root, "voc", found.files, entries, keep_background, prefix,
                        annotation_files={e.ann for e in entries})
