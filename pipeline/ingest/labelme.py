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
* Types are checked, never assumed: points must be ``[x, y]`` pairs of JSON
  numbers (``bad-points``), ``group_id`` null or an integer (``bad-group-id``),
  ``imageWidth/Height`` whole numbers (``bad-image-size`` for the file); a mask
  PNG's size is read from its header and must fit its shape's box and the image
  before it is decoded (``bad-mask``).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.ingest.candidate import AnnotationError, Candidate, Layout, Parsed, RawObject, guarded, problem
from pipeline.ingest.masks import MaskError
from pipeline.ingest.numbers import json_number, json_size, shown
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import ReadLimits, json_documents, hidden_rows, walk
from pipeline.core.inputfile import describe_exception
from pipeline.record import Rejected

CIRCLE_VERTICES = 32
REGION_LABELS = ("__ignore__", "_background_")
UNSUPPORTED = ("point", "line", "linestrip")


MAX_SIDE = 1 << 20  # largest image side a file may declare
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MASK_SLACK = 2  # pixels a mask PNG may exceed its shape's box by (labelme stores the box inclusive)


def _mask_polygons(b64: str, box: tuple[float, float, float, float], size: tuple[int, int] | None,
                   max_pixels: int) -> tuple[tuple[float, ...], ...]:
    """Outer contours of a base64 PNG mask placed at its shape's box.

    The PNG's size is read from its header and checked before any pixel is
    decoded: at most the box (plus ``MASK_SLACK``), the declared image and
    ``max_pixels``, so a small file declaring a huge canvas costs nothing.
    """
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from pipeline.ingest.masks import MaskError, mask_polygons

    if not isinstance(b64, str):
        raise MaskError(f"`mask` is {shown(b64)}, not a base64 string")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise MaskError("`mask` is not valid base64") from None
    x0, y0, x1, y1 = box
    if raw[:8] != PNG_SIGNATURE or raw[12:16] != b"IHDR" or len(raw) < 24:
        raise MaskError("`mask` is not a PNG image")
    w, h = struct.unpack(">II", raw[16:24])  # from the header: nothing is decoded yet
    if w > x1 - x0 + 1 + MASK_SLACK or h > y1 - y0 + 1 + MASK_SLACK:
        raise MaskError(f"mask PNG is {w}x{h}, larger than its shape's box {x1 - x0:g}x{y1 - y0:g}")
    if size is not None and (w > size[0] or h > size[1]):
        raise MaskError(f"mask PNG is {w}x{h}, larger than the {size[0]}x{size[1]} image")
    if w * h > max_pixels:
        raise MaskError(f"mask PNG is {w}x{h} = {w * h} pixels, above ingest.max_pixels = {max_pixels}")
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as im:
            if im.size != (w, h):
                raise MaskError(f"mask PNG header is inconsistent ({im.size} vs {w}x{h})")
            m = np.asarray(im.convert("L"))
    except UnidentifiedImageError:
        raise MaskError("`mask` is not a PNG image") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise MaskError(f"mask PNG cannot be decoded ({describe_exception(err)})") from None
    return mask_polygons(m, x0, y0)


def _points(pts) -> list[tuple[float, float]]:
    if not isinstance(pts, list):
        raise ValueError(f"points is {shown(pts)}, not a list")
    out = []
    for p in pts:
        if not isinstance(p, list) or len(p) != 2:
            raise ValueError(f"point {shown(p)} is not [x, y]")
        out.append((json_number(p[0]), json_number(p[1])))
    return out


def _shape(i: int, sh: dict, size: tuple[int, int] | None, max_pixels: int):
    """One shape -> (label, box or None, polygon parts) or a problem."""
    label, kind = sh.get("label"), sh.get("shape_type") or "polygon"
    if not isinstance(kind, str):
        return problem("bad-shape", f"shape_type {shown(kind)} is not a string", i)
    try:
        pts = _points(sh.get("points") or [])
    except ValueError as err:
        return problem("bad-points", f"shape {shown(label)}: points must be [[x, y], ...] of numbers: {err}", i)
    if not isinstance(label, str) or not label.strip():
        return problem("missing-label", f"{kind} shape without a label (got {shown(label)})", i)
    gid = sh.get("group_id")
    if gid is not None and (isinstance(gid, bool) or not isinstance(gid, int)):
        return problem("bad-group-id", f"{kind} {label!r}: group_id {shown(gid)} is not null or an integer", i)
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
        box = (min(pts[0][0], pts[1][0]), min(pts[0][1], pts[1][1]),
               max(pts[0][0], pts[1][0]), max(pts[0][1], pts[1][1]))
        try:
            parts = _mask_polygons(sh["mask"], box, size, max_pixels)
        except MaskError as err:
            return problem("bad-mask", f"mask {label!r}: {err}", i)
        if not parts:
            return problem("bad-mask", f"mask {label!r} is empty", i)
        return label, None, parts
    if kind in ("polygon", "oriented_rectangle"):
        return label, None, (tuple(v for p in pts for v in p),)
    return problem("unknown-shape-type", f"shape_type {shown(kind)} of {label!r}", i)


def _flag_label(flags) -> str | None:
    if flags is None:
        return None
    if not isinstance(flags, dict) or not all(isinstance(k, str) and k and isinstance(v, bool)
                                              for k, v in flags.items()):
        raise AnnotationError("bad-flags", f"flags {shown(flags)} must map names to true/false "
                              "(ingest.labelme.flags_as_label)")
    on = sorted(k for k, v in flags.items() if v)
    if len(on) > 1:
        raise AnnotationError("ambiguous-flags", f"several image flags are true: {shown(on)}; "
                              "ingest.labelme.flags_as_label needs exactly one")
    return on[0] if on else None


def _size(obj: dict) -> tuple[int, int] | None:
    """The declared image size; absent (null) is allowed, anything but a sane size is not."""
    w, h = obj.get("imageWidth"), obj.get("imageHeight")
    if w is None or h is None:
        return None
    try:
        return json_size(w, "imageWidth", MAX_SIDE), json_size(h, "imageHeight", MAX_SIDE)
    except ValueError as err:
        raise AnnotationError("bad-image-size", str(err)) from None


def parse_labelme(obj, flags_as_label: bool = False, max_pixels: int = ReadLimits.max_pixels) -> Parsed:
    """Parse one labelme JSON object; index = the shape's position in ``shapes``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("shapes", None), list):
        raise AnnotationError("not-labelme", "expected an object with a `shapes` list")
    size = _size(obj)
    groups: dict[tuple[str, int], list] = {}
    objects, problems, notes = [], [], []
    regions = 0
    for i, sh in enumerate(obj["shapes"]):
        got = (_shape(i, sh, size, max_pixels) if isinstance(sh, dict)
               else problem("bad-shape", "shape is not an object", i))
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
            groups[key] = [i, [], 0]
            objects.append(key)  # placeholder keeps file order
        groups[key][1].extend(parts)
        groups[key][2] += 1
    objects = [RawObject(o[0], None, tuple(groups[o][1]), index=groups[o][0], entries=groups[o][2])
               if isinstance(o, tuple) else o for o in objects]
    if regions:
        notes.append(f"labelme-region-shapes:{regions}")
    data = None
    if obj.get("imageData"):
        try:
            data = base64.b64decode(obj["imageData"], validate=False)
        except (binascii.Error, ValueError, TypeError):
            notes.append("bad-imageData")
    label = _flag_label(obj.get("flags")) if flags_as_label else None
    image = obj.get("imagePath") if isinstance(obj.get("imagePath"), str) and obj.get("imagePath") else None
    return Parsed(objects=tuple(objects), problems=tuple(problems), image=image, size=size,
                  label=label, image_data=data, notes=tuple(notes), ignored=regions)


def read_labelme(root: Path, keep_background: bool = True, prefix: str = "",
                 flags_as_label: bool = False, limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    yield Layout("labelme")
    entries = []
    for r, obj, refused in json_documents(root, found.files, limits.annotation_bytes):
        parsed = (AnnotationError(refused.reason, refused.detail) if refused is not None
                  else guarded(parse_labelme, obj, flags_as_label, limits.max_pixels))
        refs = (parsed.image,) if isinstance(parsed, Parsed) and parsed.image else ()
        refs += (PurePosixPath(r).stem,)  # imagePath missing or stale: the image beside the JSON
        entries.append(Entry(ann=r, parsed=parsed, refs=refs, base=str(PurePosixPath(r).parent)))
    yield from assemble(root, "labelme", found.files, entries, keep_background, prefix,
                        annotation_files={e.ann for e in entries})
