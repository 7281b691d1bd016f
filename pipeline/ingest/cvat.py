"""CVAT for images 1.1 XML: one ``annotations.xml`` describing every image of a task or project.

The document, as CVAT writes it::

    <annotations><version>1.1</version><meta>...</meta>
      <image id="0" name="a.jpg" width="640" height="480" subset="Train">
        <box label="car" xtl="1.5" ytl="2" xbr="30" ybr="40" occluded="0" rotation="0" z_order="0">
          <attribute name="color">red</attribute></box>
        <polygon label="car" points="1,2;30,2;15,40"/>  <mask label="car" rle="3, 2, 5" left top width height/>
        <ellipse label="wheel" cx cy rx ry/>  <polyline/> <points/> <cuboid/> <skeleton/>  <tag label="day"/>
      </image>
      <track>...</track>   (CVAT for video)

Mapped to the record (coordinates are CVAT's continuous pixels, used as they are):

* ``box`` -> box; with a ``rotation`` (degrees, clockwise about its centre) -> the
  4-point polygon of the rotated box, so its axis-aligned box is the tight one.
* ``polygon`` -> polygon; ``ellipse`` -> a 32-gon; ``mask`` (runs of background,
  foreground, ... along each row of its ``width`` x ``height`` box at ``left, top``)
  -> the outer contours of its blobs (``masks.py``), checked against the image and
  ``ingest.max_pixels`` before anything is decoded (``bad-mask``).
* ``tag`` -> the image's class label; several tags on one image cannot be one label:
  each is ``several-tags``.
* ``polyline``, ``points``, ``cuboid``, ``skeleton`` have no place in the record
  (no keypoints or lines): each is ``unsupported-shape`` with its index.
* ``<attribute>`` values, ``occluded`` and ``z_order`` have no field either: the
  attributes are counted (note ``cvat-attributes-not-kept:N``, and per file in the
  report), never silently dropped.
* ``<track>`` (CVAT for video: shapes per frame, no ``<image>``) is refused: a file
  with only tracks is ``cvat-video``; a track beside images is ``video-track``.

A problem's index is the element's position among the file's annotation elements
(the children of every ``<image>``, then ``<track>``), in document order, 0-based.
The ``subset`` (``Train``, ``Validation``, ``Test``; ``default`` is none) gives the
split. Images are found where CVAT's exports put them, relative to the XML:
``images/<subset>/<name>`` (project), ``images/<name>`` (task), ``<name>``. The XML
is read with the same hardening as VOC (``safexml``) and the index size cap.
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.core.errors import InputError
from pipeline.ingest.candidate import AnnotationError, Candidate, Layout, Parsed, RawObject, Tally, guarded, problem
from pipeline.ingest.masks import MaskError
from pipeline.ingest.numbers import parse_number, shown
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.safexml import parse_xml
from pipeline.ingest.tree import SPLIT_NAMES, ReadLimits, hidden_rows, normalize_ref, rel, walk
from pipeline.core.inputfile import read_bytes
from pipeline.record import Rejected

MAX_SIDE = 1 << 20  # largest image side an <image> may declare
ELLIPSE_VERTICES = 32
UNSUPPORTED = ("polyline", "points", "cuboid", "skeleton")  # no place in the record: refused by name
NO_SPLIT = ("default",)  # CVAT's subset when none was set
ATTRIBUTES_NOTE = "cvat-attributes-not-kept:"


def _number(el, key: str) -> float:
    v = el.get(key)
    if v is None:
        raise ValueError(f"no {key}")
    return parse_number(v.strip())


def _points(text: str | None) -> tuple[float, ...]:
    """``"x1,y1;x2,y2;..."`` as a flat tuple; ``ValueError`` when a pair is not two numbers."""
    if not text:
        raise ValueError("no points")
    out: list[float] = []
    for pair in text.split(";"):
        xy = pair.split(",")
        if len(xy) != 2:
            raise ValueError(f"{shown(pair)} is not x,y")
        out += (parse_number(xy[0].strip()), parse_number(xy[1].strip()))
    return tuple(out)


def _rotated(x1: float, y1: float, x2: float, y2: float, degrees: float) -> tuple[float, ...]:
    """The corners of a box turned ``degrees`` clockwise (y down) about its centre."""
    cx, cy, a = (x1 + x2) / 2, (y1 + y2) / 2, math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return tuple(v for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))
                 for v in (cx + c * (x - cx) - s * (y - cy), cy + s * (x - cx) + c * (y - cy)))


def _ellipse(el) -> tuple[float, ...]:
    cx, cy, rx, ry = (_number(el, k) for k in ("cx", "cy", "rx", "ry"))
    a = math.radians(_number(el, "rotation")) if el.get("rotation") else 0.0
    c, s = math.cos(a), math.sin(a)
    out: list[float] = []
    for k in range(ELLIPSE_VERTICES):
        t = 2 * math.pi * k / ELLIPSE_VERTICES
        x, y = rx * math.cos(t), ry * math.sin(t)
        out += (cx + c * x - s * y, cy + s * x + c * y)
    return tuple(out)


def _mask(el, size: tuple[int, int] | None, max_pixels: int) -> tuple[tuple[float, ...], ...]:
    """A ``<mask>``'s blobs as polygon parts; its box is checked before anything is decoded."""
    from pipeline.ingest.masks import mask_polygons, runs_to_mask

    try:
        left, top, w, h = (int(_number(el, k)) for k in ("left", "top", "width", "height"))
    except ValueError as err:
        raise MaskError(f"left, top, width, height: {err}") from None
    if w <= 0 or h <= 0 or left < 0 or top < 0:
        raise MaskError(f"mask box {w}x{h} at {left},{top} is empty or outside the image")
    if size is not None and (left + w > size[0] or top + h > size[1]):
        raise MaskError(f"mask box {w}x{h} at {left},{top} exceeds the {size[0]}x{size[1]} image")
    if w * h > max_pixels:
        raise MaskError(f"mask box {w}x{h} exceeds ingest.max_pixels = {max_pixels}")
    try:
        runs = [int(parse_number(v.strip())) for v in (el.get("rle") or "").split(",")]
    except ValueError as err:
        raise MaskError(f"rle: {err}") from None
    parts = mask_polygons(runs_to_mask(runs, h, w, column_major=False), float(left), float(top))
    if not parts:
        raise MaskError("mask is empty")
    return parts


def _size(image) -> tuple[int, int] | None:
    w, h = image.get("width"), image.get("height")
    if w is None and h is None:
        return None
    try:
        vw, vh = parse_number((w or "").strip()), parse_number((h or "").strip())
    except ValueError as err:
        raise AnnotationError("bad-image-entry", f"width/height: {err}") from None
    if not (vw.is_integer() and vh.is_integer() and 0 < vw <= MAX_SIDE and 0 < vh <= MAX_SIDE):
        raise AnnotationError("bad-image-entry", f"size {shown(w)}x{shown(h)} is not two whole numbers "
                              f"in 1..{MAX_SIDE}")
    return int(vw), int(vh)


def _shape(el, i: int, size, max_pixels: int) -> RawObject | Rejected:
    """One annotation element of an ``<image>`` (not a tag) as a raw object, or its problem."""
    label = (el.get("label") or "").strip()
    if el.tag in UNSUPPORTED:
        return problem("unsupported-shape", f"<{el.tag}> {label!r}: the record holds boxes, polygons and masks "
                       "only (no keypoints, lines or 3D)", i)
    if not label:
        return problem("missing-label", f"<{el.tag}> without a label", i)
    try:
        if el.tag == "box":
            x1, y1, x2, y2 = (_number(el, k) for k in ("xtl", "ytl", "xbr", "ybr"))
            turn = _number(el, "rotation") if el.get("rotation") else 0.0
            if turn % 360:
                return RawObject(label, None, (_rotated(x1, y1, x2, y2, turn),), index=i)
            return RawObject(label, (x1, y1, x2, y2), index=i)
        if el.tag == "polygon":
            return RawObject(label, None, (_points(el.get("points")),), index=i)
        if el.tag == "ellipse":
            return RawObject(label, None, (_ellipse(el),), index=i)
        if el.tag == "mask":
            return RawObject(label, None, _mask(el, size, max_pixels), index=i)
    except MaskError as err:
        return problem("bad-mask", f"<mask> {label!r}: {err}", i)
    except ValueError as err:
        return problem("bad-coordinate", f"<{el.tag}> {label!r}: {err}", i)
    return problem("unsupported-shape", f"<{el.tag}> {label!r} is not a CVAT for images shape", i)


def _image(image, first: int, max_pixels: int) -> Parsed:
    """One ``<image>``: its objects, problems (indexed from ``first``), class label and size."""
    name = (image.get("name") or "").strip()
    if not name:
        raise AnnotationError("bad-image-entry", "<image> without a name")
    size = _size(image)
    objects, problems, tags = [], [], []
    attributes = 0
    for i, el in enumerate(image, start=first):
        attributes += len(el.findall("attribute"))
        if el.tag == "tag":
            tags.append((i, (el.get("label") or "").strip()))
            continue
        got = _shape(el, i, size, max_pixels)
        (problems if isinstance(got, Rejected) else objects).append(got)
    label = None
    if len(tags) == 1 and tags[0][1]:
        label = tags[0][1]
    elif tags:
        why = "a tag without a label" if len(tags) == 1 else f"{len(tags)} tags: an image has one class label"
        problems += [problem("several-tags" if len(tags) > 1 else "missing-label", f"<tag> {t!r}: {why}", i)
                     for i, t in tags]
    notes = (f"{ATTRIBUTES_NOTE}{attributes}",) if attributes else ()
    return Parsed(objects=tuple(objects), problems=tuple(problems), image=name, size=size, label=label,
                  notes=notes, label_entry=label is not None)


def parse_cvat(data: bytes | str, max_pixels: int = ReadLimits.max_pixels
               ) -> tuple[list[tuple[str, str | None, Parsed | AnnotationError]], list[Rejected]]:
    """Per ``<image>`` ``(name, subset, Parsed or its refusal)``, and the file's own problems
    (tracks); ``AnnotationError`` when the document is unsafe, malformed, not CVAT's, or video only."""
    root = parse_xml(data.encode("utf-8") if isinstance(data, str) else data)
    if root.tag != "annotations":
        raise AnnotationError("not-cvat", f"root element is <{root.tag}>, expected <annotations>")
    images = root.findall("image")
    tracks = root.findall("track")
    if tracks and not images:
        raise AnnotationError("cvat-video", f"CVAT for video ({len(tracks)} <track> elements, no <image>): "
                              "not supported; export the task as CVAT for images")
    out: list[tuple[str, str | None, Parsed | AnnotationError]] = []
    problems: list[Rejected] = []
    index = 0
    for image in images:
        subset = (image.get("subset") or "").strip() or None
        try:
            out.append(((image.get("name") or "").strip(), subset, _image(image, index, max_pixels)))
        except AnnotationError as err:
            out.append(((image.get("name") or "").strip(), subset, err))
        index += len(image)
    for track in tracks:
        problems.append(problem("video-track", f"<track> {track.get('label', '')!r}: video tracks are not "
                                "supported (export as CVAT for images)", index))
        index += 1
    return out, problems


def split_of_subset(subset: str | None) -> str | None:
    """``Train`` -> train, ``Validation`` -> val, ``Test`` -> test; ``default`` or another name: none."""
    return SPLIT_NAMES.get(subset.lower()) if subset else None


def image_refs(name: str, subset: str | None, xml_rel: str) -> tuple[str, ...]:
    """Where an ``<image name>`` may be, relative to the XML's folder, in the order tried:
    ``images/<subset>/`` (a project export; a ``<subset>.xml`` names its subset too),
    ``images/`` (a task export), beside the XML."""
    ref = normalize_ref(name)
    if PurePosixPath(ref).is_absolute() or ref[1:2] == ":":  # C:\\...\\a.jpg: its name, here
        ref = PurePosixPath(ref).name
    stem = PurePosixPath(xml_rel).stem
    subsets = [s for s in dict.fromkeys([subset, None if stem == "annotations" else stem]) if s]
    return tuple(f"images/{s}/{ref}" for s in subsets) + (f"images/{ref}", ref)


def read_cvat(root: Path, keep_background: bool = True, prefix: str = "",
              limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    """Every ``*.xml`` whose root is ``<annotations>`` is a CVAT file; its ``<image>`` list is the index.

    Only the images the files name are samples: every other file of the tree is
    ``unlisted``, unless a CVAT file was refused, in which case the images nobody
    else claims are ``annotation-unusable`` (they may be described there).
    """
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    entries, ann_files, refused_files, notes = [], set(), [], []
    for f in found.files:
        if f.suffix.lower() != ".xml":
            continue
        r = rel(f, root)
        got = guarded(lambda f=f: parse_cvat(read_bytes(f, "index", limits.index_bytes), limits.max_pixels))
        if isinstance(got, AnnotationError) and got.reason == "not-cvat":
            continue  # another XML: unlisted, like any file the index does not name
        ann_files.add(r)
        if isinstance(got, AnnotationError):
            refused_files.append(r)
            yield Rejected(path=r, reason=got.reason, detail=got.detail)
            continue
        per_image, problems = got
        yield from (Rejected(path=r, reason=p.reason, detail=p.detail, index=p.index) for p in problems)
        yield Tally(refused=len(problems))  # the file's own: <track> elements
        base = str(PurePosixPath(r).parent)
        subsets = sorted({s for _, s, _ in per_image if s}, key=str.lower)
        unsplit = [s for s in subsets if split_of_subset(s) is None and s.lower() not in NO_SPLIT]
        kept = sum(int(n[len(ATTRIBUTES_NOTE):]) for _, _, p in per_image if isinstance(p, Parsed)
                   for n in p.notes if n.startswith(ATTRIBUTES_NOTE))
        notes.append(f"{r}: {len(per_image)} images" + (f", subsets {', '.join(subsets)}" if subsets else "")
                     + (f" ({', '.join(unsplit)}: not a split name, no split)" if unsplit else "")
                     + (f"; {kept} <attribute> values not kept (the record has no field for them)" if kept else ""))
        for k, (name, subset, parsed) in enumerate(per_image):
            refs = image_refs(name, subset, r) if name else ()
            entries.append(Entry(ann=r, parsed=parsed, refs=refs, base=base, index=k,
                                 split=split_of_subset(subset or PurePosixPath(r).stem),
                                 missing=f"<image name={name!r}> not found in "
                                         f"{', '.join(str(PurePosixPath(base, x).parent) + '/' for x in refs)}"))
    if not ann_files:
        raise InputError(f"{root}: no CVAT for images XML found (a *.xml whose root is <annotations>); "
                         "is this the right format? --format auto detects it")
    named = {e.split: f"{e.ann} subsets" for e in entries if e.split}
    yield Layout("cvat", tuple(notes), tuple(sorted(named.items())))
    yield from assemble(root, "cvat", found.files, entries, keep_background, prefix, annotation_files=ann_files,
                        refused=tuple(refused_files), unlisted=lambda r: True)
