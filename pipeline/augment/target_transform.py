"""Targets through a geometric transform: move, clip exactly, recompute boxes, drop.

Boxes of objects with polygons are the tight box of the polygon *clipped* to the
canvas (Sutherland-Hodgman, vectorised over a flat ragged vertex list), so they stay
tight after rotation and never include parts that left the canvas; other boxes come
from their 4 transformed corners, then are clipped. Visibility is the clipped box
area over the unclipped box area after the transform; objects under
``min_visibility`` or ``min_area`` (pixels²) are dropped with their polygons and
recorded in ``Targets.dropped`` with the rule they broke and its measure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from pipeline.augment import matrices, resample
from pipeline.augment.targets import Targets


@dataclass(frozen=True)
class Rules:
    min_visibility: float = 0.0
    min_area: float = 1.0


def _part_neighbours(point_part: torch.Tensor) -> torch.Tensor:
    """Index of each vertex's predecessor within its (cyclic) part."""
    p = len(point_part)
    i = torch.arange(p, device=point_part.device)
    if p == 0:
        return i
    first = torch.ones(p, dtype=torch.bool, device=point_part.device)
    first[1:] = point_part[1:] != point_part[:-1]
    last = torch.ones_like(first)
    last[:-1] = first[1:]
    last_idx = torch.nonzero(last)[:, 0]
    # the last vertex of each part, broadcast to its part's vertices
    part_rank = torch.cumsum(first.to(torch.int64), 0) - 1
    return torch.where(first, last_idx[part_rank], i - 1)


def clip_polygons(points: torch.Tensor, point_part: torch.Tensor, rect: torch.Tensor):
    """Clip each part to its rectangle; ``rect`` is (P, 4) XYXY per vertex.

    One half-plane at a time, each edge (prev -> v) emits the crossing point when it
    crosses the boundary, then v when v is inside: counts, a cumsum for offsets, two
    scatters. Vertices on a boundary are set to it exactly.
    """
    for axis, col, sign in ((0, 0, 1.0), (0, 2, -1.0), (1, 1, 1.0), (1, 3, -1.0)):
        if len(points) == 0:
            break
        bound = rect[:, col]
        prev = _part_neighbours(point_part)
        a, b = points[prev], points
        ina = sign * (a[:, axis] - bound) >= 0
        inb = sign * (b[:, axis] - bound) >= 0
        cross = ina != inb
        denom = b[:, axis] - a[:, axis]
        t = (bound - a[:, axis]) / torch.where(denom == 0, torch.ones_like(denom), denom)
        hit = a + t[:, None] * (b - a)
        hit[:, axis] = bound
        count = cross.to(torch.int64) + inb.to(torch.int64)
        offset = torch.cumsum(count, 0) - count
        n = int(count.sum())
        out = torch.empty((n, 2), dtype=points.dtype, device=points.device)
        part = torch.empty(n, dtype=torch.int64, device=points.device)
        r = torch.empty((n, 4), dtype=rect.dtype, device=rect.device)
        ci = torch.nonzero(cross)[:, 0]
        out[offset[ci]], part[offset[ci]], r[offset[ci]] = hit[ci], point_part[ci], rect[ci]
        bi = torch.nonzero(inb)[:, 0]
        pos = offset[bi] + cross[bi].to(torch.int64)
        out[pos], part[pos], r[pos] = b[bi], point_part[bi], rect[bi]
        points, point_part, rect = out, part, r
    return points, point_part


def _segment_minmax(values: torch.Tensor, seg: torch.Tensor, n: int):
    """Per-segment min and max of (M, 2) values; empty segments give (inf, -inf)."""
    lo = torch.full((n, 2), float("inf"), device=values.device)
    hi = torch.full((n, 2), float("-inf"), device=values.device)
    idx = seg[:, None].expand(-1, 2)
    lo = lo.scatter_reduce(0, idx, values, "amin")
    hi = hi.scatter_reduce(0, idx, values, "amax")
    return lo, hi


def _area(box: torch.Tensor) -> torch.Tensor:
    return (box[:, 2] - box[:, 0]).clamp_min(0) * (box[:, 3] - box[:, 1]).clamp_min(0)


def polygon_areas(points: torch.Tensor, point_part: torch.Tensor, part_object: torch.Tensor,
                  n: int) -> torch.Tensor:
    """(n,) area enclosed by each object's polygon parts (shoelace, parts summed).

    Each vertex pairs with the next one of its part (the last with the first); the
    sums run per object in vertex order (``index_add`` on the CPU is sequential), so
    an object's area does not depend on the other objects of the batch.
    """
    out = torch.zeros(n, dtype=torch.float64, device=points.device)
    if not len(points):
        return out
    p = points.double()
    idx = torch.arange(len(p), device=p.device)
    last = torch.ones(len(p), dtype=torch.bool, device=p.device)
    last[:-1] = point_part[1:] != point_part[:-1]
    first = torch.zeros(len(part_object), dtype=torch.int64, device=p.device)
    first = first.scatter_reduce(0, point_part, idx, "amin", include_self=False)
    nxt = torch.where(last, first[point_part], idx + 1)
    cross = p[:, 0] * p[nxt, 1] - p[nxt, 0] * p[:, 1]
    part_area = torch.zeros(len(part_object), dtype=torch.float64, device=p.device)
    part_area = part_area.index_add(0, point_part, cross).abs() / 2
    return out.index_add(0, part_object, part_area)


def transform_targets(t: Targets, m: torch.Tensor, out_hw: tuple[int, int], rules: Rules,
                      clip_rect: torch.Tensor | None = None) -> Targets:
    """Move every target of ``t`` by its sample's matrix ``m`` (B, 3, 3) onto a canvas
    of ``out_hw``; clip to ``clip_rect`` (B, 4) XYXY, default the canvas."""
    oh, ow = out_hw
    dev = t.device
    if clip_rect is None:
        clip_rect = torch.tensor([0.0, 0.0, float(ow), float(oh)], device=dev).expand(t.batch_size, 4)
    n = len(t.boxes)
    x1, y1, x2, y2 = t.boxes.unbind(1)
    corners = torch.stack([torch.stack([x1, y1], 1), torch.stack([x2, y1], 1),
                           torch.stack([x2, y2], 1), torch.stack([x1, y2], 1)], 1)  # (N, 4, 2)
    mc = matrices.transform_points(m[t.owner], corners)
    loose = torch.cat([mc.amin(1), mc.amax(1)], 1)
    obj_rect = clip_rect[t.owner]
    loose_clip = torch.cat([torch.maximum(loose[:, :2], obj_rect[:, :2]),
                            torch.minimum(loose[:, 2:], obj_rect[:, 2:])], 1)
    boxes, full = loose_clip, loose
    points, point_part = t.points, t.point_part
    if len(t.part_object):
        vobj = t.part_object[point_part]
        points = matrices.transform_points(m[t.owner[vobj]], points[:, None, :])[:, 0]
        flo, fhi = _segment_minmax(points, vobj, n)
        points, point_part = clip_polygons(points, point_part, obj_rect[vobj])
        clo, chi = _segment_minmax(points, t.part_object[point_part], n)
        has_poly = torch.bincount(t.part_object, minlength=n) > 0
        tight_full = torch.cat([flo, fhi], 1)
        tight = torch.cat([clo, chi], 1)
        tight = torch.where(torch.isfinite(tight), tight, torch.zeros_like(tight))
        boxes = torch.where(has_poly[:, None], tight, loose_clip)
        full = torch.where(has_poly[:, None], tight_full, loose)
    area = _area(boxes)
    visible = area / _area(full).clamp_min(1e-12)
    # min_area measures what a trainer gets: an object's polygons when it has them (a
    # sliver clipped at the border can keep a box of several px^2 around a polygon that
    # covers no pixel), else its box.
    size = area
    if len(t.part_object):
        poly_area = polygon_areas(points, point_part, t.part_object, n).to(area.dtype)
        size = torch.where(has_poly, poly_area, area)
    keep = (area > 0) & (size >= rules.min_area) & (area >= rules.min_visibility * _area(full) - 1e-6)
    # Why the others go (the first rule each breaks): reason codes of targets.REASONS.
    reason = torch.where(area <= 0, 0, torch.where(size < rules.min_area, 1, 2))
    value = torch.where(reason == 1, size, visible)
    kp, kv = t.keypoints, t.keypoint_visible
    if len(kp):
        kp = matrices.transform_points(m[t.keypoint_owner], kp[:, None, :])[:, 0]
        r = clip_rect[t.keypoint_owner]
        inside = (kp[:, 0] >= r[:, 0]) & (kp[:, 0] < r[:, 2]) & (kp[:, 1] >= r[:, 1]) & (kp[:, 1] < r[:, 3])
        kv = kv & inside
    moved = replace(t, boxes=boxes, points=points, point_part=point_part, keypoints=kp, keypoint_visible=kv)
    return moved.drop(keep, reason, value)


def transform_masks(masks: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Warp (B, 1, H, W) uint8 label masks nearest-neighbour; outside is 0."""
    return resample.warp(masks.to(torch.float32), m, out_hw, mode="nearest").to(torch.uint8)
