"""Exact clipping of boxes and polygons to the image, and the EXIF point map.

Coordinates are continuous pixels: the image spans ``[0, W] x [0, H]``. A polygon
is clipped with Sutherland-Hodgman against the four edges of that rectangle, so a
polygon whose vertices all lie outside but whose edges cross the image keeps its
visible part (ultralytics #23663). Pure Python on small lists: annotation files
hold tens of points, not millions.
"""

from __future__ import annotations

import math

Point = tuple[float, float]


def finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def clip_box(box, width: float, height: float):
    """Intersect XYXY ``box`` with the image; None when nothing of it is inside."""
    x1, y1, x2, y2 = box
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if cx2 <= cx1 or cy2 <= cy1:
        return None
    return (cx1, cy1, cx2, cy2)


def points(flat) -> list[Point]:
    return [(float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]


def flat(pts) -> tuple[float, ...]:
    return tuple(v for p in pts for v in p)


def _clip_edge(pts: list[Point], inside, cross) -> list[Point]:
    out: list[Point] = []
    n = len(pts)
    for i in range(n):
        cur, prev = pts[i], pts[i - 1]
        if inside(cur):
            if not inside(prev):
                out.append(cross(prev, cur))
            out.append(cur)
        elif inside(prev):
            out.append(cross(prev, cur))
    return out


def _at_x(x: float):
    def cross(a: Point, b: Point) -> Point:
        t = (x - a[0]) / (b[0] - a[0])
        return (x, a[1] + t * (b[1] - a[1]))
    return cross


def _at_y(y: float):
    def cross(a: Point, b: Point) -> Point:
        t = (y - a[1]) / (b[1] - a[1])
        return (a[0] + t * (b[0] - a[0]), y)
    return cross


def clip_polygon(pts: list[Point], width: float, height: float) -> list[Point]:
    """Sutherland-Hodgman clip of a polygon to ``[0, W] x [0, H]`` (may return [])."""
    for inside, cross in (
        (lambda p: p[0] >= 0.0, _at_x(0.0)),
        (lambda p: p[0] <= width, _at_x(width)),
        (lambda p: p[1] >= 0.0, _at_y(0.0)),
        (lambda p: p[1] <= height, _at_y(height)),
    ):
        if not pts:
            return []
        pts = _clip_edge(pts, inside, cross)
    # Clamp rounding residue so every vertex is inside exactly.
    return dedupe_consecutive([(min(max(x, 0.0), width), min(max(y, 0.0), height)) for x, y in pts])


def dedupe_consecutive(pts: list[Point]) -> list[Point]:
    out: list[Point] = []
    for p in pts:
        if not out or p != out[-1]:
            out.append(p)
    if len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def polygon_area(pts: list[Point]) -> float:
    """Absolute shoelace area."""
    s = 0.0
    for i in range(len(pts)):
        x1, y1 = pts[i - 1]
        x2, y2 = pts[i]
        s += x1 * y2 - x2 * y1
    return abs(s) / 2.0


def bounds(parts) -> tuple[float, float, float, float]:
    """XYXY bounds of flat polygon parts."""
    xs = [v for p in parts for v in p[0::2]]
    ys = [v for p in parts for v in p[1::2]]
    return (min(xs), min(ys), max(xs), max(ys))


def exif_point(x: float, y: float, orientation: int, w: float, h: float) -> Point:
    """Map a point of the stored image (size ``w x h``) to the upright image.

    Mirrors PIL's ``ImageOps.exif_transpose`` for orientations 1..8, in continuous
    coordinates (a flip maps x to ``w - x``).
    """
    return {
        1: (x, y),
        2: (w - x, y),
        3: (w - x, h - y),
        4: (x, h - y),
        5: (y, x),
        6: (h - y, x),
        7: (h - y, w - x),
        8: (y, w - x),
    }[orientation]
