"""labelme JSON: one file per image, every shape type.

* ``rectangle`` (2 points, any corner order) -> box; ``polygon`` -> polygon (a
  two-point "polygon", labelme #1553, is rejected after decode with its index);
  ``circle`` (centre, point on the edge) -> 32-gon; ``oriented_rectangle`` -> its
  4-point polygon; ``mask`` (2-point box + base64 PNG) -> polygons traced through
  the boundary pixels' centres.
* Shapes sharing ``(label, group_id)`` are one instance in several parts.
* ``point``, ``line`` and ``linestrip`` have no place in the record yet (no
  keypoints): each is reported as ``unsupported-shape`` with its index, never
  dropped silently. ``__ignore__`` and ``_background_`` shapes are region markers,
  counted in the sample's notes.
* ``imagePath`` is relative to the JSON and may use Windows backslashes
  (labelme #1725); when it is missing the embedded ``imageData`` is used.
  ``imageWidth/Height`` are checked against the real image after decode.
* ``flags`` give the image's class when ``ingest.labelme.flags_as_label`` is true:
  exactly one true flag is the label; several are an error for that file.
"""

from __future__ import annotations

import base64
import binascii
import math
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.ingest.candidate import AnnotationError, Candidate, Parsed, RawObject, problem
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import json_documents, list_files
from pipeline.record import Rejected

CIRCLE_VERTICES = 32
REGION_LABELS = ("__ignore__", "_background_")
UNSUPPORTED = ("point", "line", "linestrip")


def _mask_polygons(b64: str, x0: float, y0: float) -> tuple[tuple[float, ...], ...]:
    """Outer contours of a base64 PNG mask placed with its top-left at (x0, y0)."""
    import io

    import numpy as np
    from PIL import Image

    from pipeline.ingest.masks import mask_polygons

    with Image.open(io.BytesIO(base64.b64decode(b64, validate=False))) as im:
        m = np.asarray(im.convert("L"))
    return mask_polygons(m, x0, y0)


def _shape(i: int, sh: dict):
    """One shape -> (label, box or None, polygon parts) or a problem."""
    label, kind = sh.get("label"), sh.get("shape_type") or "polygon"
    pts = sh.get("points") or []
    try:
        pts = [(float(p[0]), float(p[1])) for p in pts]
    except (TypeError, ValueError, IndexError):
        return problem("bad-points", f"shape {label!r}: points must be [[x, y], ...]", i)
    if not isinstance(label, str) or not label:
        return problem("missing-label", f"{kind} shape without a label", i)
    if kind in UNSUPPORTED:
        return problem("unsupported-shape", f"{kind} {label!r}: keypoint/line shapes are not "
                       "imported (the record has no keypoints); reported, not dropped", i)
    if kind == "rectangle":
        if len(pts) < 2:
            return problem("bad-points", f"rectangle {label!r} needs 2 points, got {len(pts)}", i)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return label, (min(xs), min(ys), max(xs), max(ys)), ()
    if kind == "circle":
        if len(pts) != 2:
            return problem("bad-points", f"circle {label!r} needs centre and edge point", i)
        (cx, cy), (ex, ey) = pts
        r = math.hypot(ex - cx, ey - cy)
        ring = [(cx + r * math.cos(2 * math.pi * k / CIRCLE_VERTICES),
                 cy + r * math.sin(2 * math.pi * k / CIRCLE_VERTICES)) for k in range(CIRCLE_VERTICES)]
        return label, None, (tuple(v for p in ring for v in p),)
    if kind == "mask":
        if len(pts) != 2 or not sh.get("mask"):
            return problem("bad-mask", f"mask {label!r} needs a 2-point box and a base64 PNG", i)
        try:
            parts = _mask_polygons(sh["mask"], min(pts[0][0], pts[1][0]), min(pts[0][1], pts[1][1]))
        except (OSError, ValueError, binascii.Error) as err:
            return problem("bad-mask", f"mask {label!r}: not a decodable PNG ({err})", i)
        if not parts:
            return problem("bad-mask", f"mask {label!r} is empty", i)
        return label, None, parts
    if kind in ("polygon", "oriented_rectangle"):
        return label, None, (tuple(v for p in pts for v in p),)
    return problem("unknown-shape-type", f"shape_type {kind!r} of {label!r}", i)


def _flag_label(flags) -> str | None:
    on = sorted(k for k, v in (flags or {}).items() if v)
    if len(on) > 1:
        raise AnnotationError("ambiguous-flags", f"several image flags are true: {on}; "
                              "ingest.labelme.flags_as_label needs exactly one")
    return on[0] if on else None


def parse_labelme(obj, flags_as_label: bool = False) -> Parsed:
    """Parse one labelme JSON object; index = the shape's position in ``shapes``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("shapes", None), list):
        raise AnnotationError("not-labelme", "expected an object with a `shapes` list")
    groups: dict[tuple[str, int], list] = {}
    objects, problems, notes = [], [], []
    regions = 0
    for i, sh in enumerate(obj["shapes"]):
        got = _shape(i, sh) if isinstance(sh, dict) else problem("bad-shape", "shape is not an object", i)
        if not isinstance(got, tuple):
            problems.append(got)
            continue
        label, box, parts = got
        if label in REGION_LABELS:
            regions += 1
            continue
        gid = sh.get("group_id")
        if gid is None:
            objects.append(RawObject(label, box, parts, index=i))
            continue
        if box is not None:  # a rectangle part of a group joins as a 4-point polygon
            x1, y1, x2, y2 = box
            parts = ((x1, y1, x2, y1, x2, y2, x1, y2),)
        key = (label, gid)
        if key not in groups:
            groups[key] = [i, []]
            objects.append(key)  # placeholder keeps file order
        groups[key][1].extend(parts)
    objects = [RawObject(o[0], None, tuple(groups[o][1]), index=groups[o][0]) if isinstance(o, tuple) else o
               for o in objects]
    if regions:
        notes.append(f"labelme-region-shapes:{regions}")
    w, h = obj.get("imageWidth"), obj.get("imageHeight")
    size = (int(w), int(h)) if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0 else None
    data = None
    if obj.get("imageData"):
        try:
            data = base64.b64decode(obj["imageData"], validate=False)
        except (binascii.Error, ValueError, TypeError):
            notes.append("bad-imageData")
    label = _flag_label(obj.get("flags")) if flags_as_label else None
    image = obj.get("imagePath") if isinstance(obj.get("imagePath"), str) and obj.get("imagePath") else None
    return Parsed(objects=tuple(objects), problems=tuple(problems), image=image, size=size,
                  label=label, image_data=data, notes=tuple(notes))


def read_labelme(root: Path, keep_background: bool = True, prefix: str = "",
                 flags_as_label: bool = False) -> Iterator[Candidate | Rejected]:
    root = Path(root)
    files = list_files(root)
    entries = []
    for r, obj, error in json_documents(root, files):
        try:
            parsed: Parsed | AnnotationError = (parse_labelme(obj, flags_as_label) if obj is not None
                                                else AnnotationError("malformed-json", error))
        except AnnotationError as err:
            parsed = err
        refs = (parsed.image,) if isinstance(parsed, Parsed) and parsed.image else ()
        refs += (PurePosixPath(r).stem,)  # imagePath missing or stale: the image beside the JSON
        entries.append(Entry(ann=r, parsed=parsed, refs=refs, base=str(PurePosixPath(r).parent)))
    yield from assemble(root, "labelme", files, entries, keep_background, prefix,
                        annotation_files={e.ann for e in entries})
