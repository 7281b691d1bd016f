"""Annotation checks that need the decoded image: the one place objects become canonical.

Runs after decode, when the upright size and the EXIF orientation are known.

* **Frame.** An annotation that declares its image size (VOC ``size``, labelme
  ``imageWidth/Height``, COCO ``width/height``) is checked against both
  orientations: equal to the upright size -> coordinates are upright; equal to the
  stored (pre-EXIF) size of a rotated file -> coordinates are mapped through the
  EXIF transform (note ``annotation-exif-mapped:N``); neither -> kept as given and
  reported (note ``size-mismatch:...``). Normalized YOLO coordinates are scaled by
  the upright size (what labelImg, labelme and Ultralytics show the annotator).
* **Validity.** NaN/inf coordinates, boxes with x1 >= x2 or y1 >= y2, polygons with
  fewer than 3 distinct points, objects wholly outside the image and exact duplicate
  objects are rejected one by one with their index; the image stays a sample.
* **Clipping.** Boxes and polygons are clipped exactly to the image (polygons with
  Sutherland-Hodgman) and counted (note ``clipped:N``). A polygon object's box is
  the bounds of its clipped polygon, so boxes are tight.
"""

from __future__ import annotations

from pipeline.ingest.candidate import Candidate, RawObject
from pipeline.ingest.clip import (bounds, clip_box, clip_polygon, dedupe_consecutive, exif_point,
                                  finite, flat, points, polygon_area)
from pipeline.images.imageread import ImageInfo
from pipeline.record import Object, Rejected


def _frame(c: Candidate, info: ImageInfo) -> tuple[object, list[str]]:
    """Return (point map from annotation to upright coordinates, notes)."""
    w, h = info.width, info.height
    if c.normalized:
        return (lambda x, y: (x * w, y * h)), []
    if c.declared_size is None or tuple(c.declared_size) == (w, h):
        return (lambda x, y: (x, y)), []
    rw, rh = info.raw_size
    if info.orientation != 1 and tuple(c.declared_size) == (rw, rh):
        o = info.orientation
        return (lambda x, y: exif_point(x, y, o, rw, rh)), [f"annotation-exif-mapped:{o}"]
    dw, dh = c.declared_size
    return (lambda x, y: (x, y)), [f"size-mismatch:declared={dw}x{dh},image={w}x{h}"]


def _reject(c: Candidate, o: RawObject, reason: str, detail: str) -> Rejected:
    return Rejected(path=c.source.annotation or c.source.path, reason=reason, detail=detail,
                    source=c.source.root, index=o.index)


def _one(c: Candidate, o: RawObject, to_upright, w: int, h: int):
    """Return (Object, clipped?) or a Rejected."""
    coords = list(o.box or ()) + [v for p in o.polygons for v in p]
    if not finite(coords):
        return _reject(c, o, "non-finite-coordinate", f"{o.label!r}: NaN or inf in {coords}")
    if o.polygons:
        parts, clipped = [], False
        for part in o.polygons:
            pts = dedupe_consecutive(points(part))
            if len(pts) < 3 or polygon_area(pts) == 0.0:
                return _reject(c, o, "polygon-too-few-points",
                               f"{o.label!r}: polygon needs 3+ distinct non-collinear points, got {len(pts)}")
            up = [to_upright(x, y) for x, y in pts]
            cut = clip_polygon(up, w, h)
            clipped |= cut != up
            if len(cut) >= 3 and polygon_area(cut) > 0.0:
                parts.append(flat(cut))
        if not parts:
            return _reject(c, o, "outside-image", f"{o.label!r}: polygon lies wholly outside the {w}x{h} image")
        return Object(o.label, bounds(parts), tuple(parts)), clipped
    x1, y1, x2, y2 = o.box  # type: ignore[misc]
    if x1 >= x2 or y1 >= y2:
        kind = "zero-area-box" if (x1 == x2 or y1 == y2) else "inverted-box"
        return _reject(c, o, kind, f"{o.label!r}: box {o.box} needs x1 < x2 and y1 < y2")
    a, b = to_upright(x1, y1), to_upright(x2, y2)
    up = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
    cut = clip_box(up, w, h)
    if cut is None:
        return _reject(c, o, "outside-image", f"{o.label!r}: box {o.box} lies outside the {w}x{h} image")
    return Object(o.label, cut), cut != up


def finalize(c: Candidate, info: ImageInfo) -> tuple[tuple[Object, ...], list[Rejected], tuple[str, ...]]:
    """Check and convert a candidate's raw objects: (objects, rejected, notes)."""
    if not c.raw:
        return c.objects, [], ()
    to_upright, notes = _frame(c, info)
    objects: list[Object] = list(c.objects)
    seen: dict[Object, int | None] = {}
    rejected: list[Rejected] = []
    clipped = 0
    for o in c.raw:
        got = _one(c, o, to_upright, info.width, info.height)
        if isinstance(got, Rejected):
            rejected.append(got)
            continue
        obj, was_clipped = got
        if obj in seen:
            rejected.append(_reject(c, o, "duplicate-object",
                                    f"{o.label!r}: same label and geometry as index {seen[obj]}"))
            continue
        seen[obj] = o.index
        objects.append(obj)
        clipped += was_clipped
    if clipped:
        notes.append(f"clipped:{clipped}")
    return tuple(objects), rejected, tuple(notes)
