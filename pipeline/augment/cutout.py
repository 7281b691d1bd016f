"""Cutout: fill ``holes`` random rectangles per sample; an object whose box is
covered beyond ``max_cover`` (0.6 by default) is dropped, recorded as ``occluded``
with the covered fraction. Cover is exact where holes overlap: the area of the
union of the holes inside the box, over the box's area."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from pipeline.augment import rng
from pipeline.augment.base import Op, OpParams
from pipeline.augment.geometric import Range, _ordered
from pipeline.augment.targets import REASONS, Targets


class Cutout(Op):
    name = "cutout"
    kind = "pixel"
    exact = True  # a fill: runs on uint8 without leaving it
    in_place = True

    class Params(OpParams):
        name: Literal["cutout"] = "cutout"
        holes: tuple[int, int] = Field((1, 1), description="(min, max) holes per sample")
        size: Range = Field((0.1, 0.3), description="hole side as a fraction of the image side")
        fill: float = Field(0.0, ge=0.0, le=1.0, description="fraction of the value range")
        max_cover: float = Field(0.6, ge=0.0, le=1.0,
                                 description="drop objects whose box is covered more than this (1: keep all)")

        @model_validator(mode="after")
        def _ranges(self):
            _ordered(self.holes, "holes")
            _ordered(self.size, "size")
            if self.holes[0] < 0 or self.holes[1] > 64 or self.size[0] <= 0 or self.size[1] > 1:
                raise ValueError("holes within [0, 64], size within (0, 1]")
            return self

    def sample(self, keys, h, w):
        pr = self.params
        n = pr.holes[1]
        k = self.keys(keys)
        count = rng.randint(k, self.stream + 1, 1, pr.holes[0], pr.holes[1])
        u = rng.uniform(k, self.stream + 2, 4 * n).view(-1, n, 4)
        lo, hi = pr.size
        hw_ = (lo + (hi - lo) * u[..., 0]) * w
        hh = (lo + (hi - lo) * u[..., 1]) * h
        x1 = torch.floor(u[..., 2] * (w - hw_ + 1))
        y1 = torch.floor(u[..., 3] * (h - hh + 1))
        applied = self._applied(keys)
        active = (torch.arange(n, device=keys.device)[None, :] < count) & applied[:, None]
        holes = torch.stack([x1, y1, x1 + torch.round(hw_), y1 + torch.round(hh)], -1)
        return {"applied": applied, "holes": holes * active[..., None]}

    def _mask(self, holes: torch.Tensor, h: int, w: int) -> torch.Tensor:
        ys = torch.arange(h, device=holes.device, dtype=torch.float32) + 0.5
        xs = torch.arange(w, device=holes.device, dtype=torch.float32) + 0.5
        rows = ((ys[None, None] >= holes[..., 1:2]) & (ys[None, None] < holes[..., 3:4])).float()
        cols = ((xs[None, None] >= holes[..., 0:1]) & (xs[None, None] < holes[..., 2:3])).float()
        return torch.bmm(rows.transpose(1, 2), cols) > 0  # (B, H, W)

    def apply_image(self, x, drawn, scale):
        mask = self._mask(drawn["holes"], x.shape[-2], x.shape[-1])[:, None]
        fill = self.params.fill * scale
        return x.masked_fill(mask, round(fill) if x.dtype == torch.uint8 else fill)

    def apply_inplace(self, x, idx, drawn, scale):
        """CPU: fill the holes of rows ``idx`` (None = all) of ``x`` in place."""
        fill = self.params.fill * scale
        fill = round(fill) if x.dtype == torch.uint8 else fill
        # Holes are integer-cornered rectangles (pixel centres inside [x1, x2) x [y1, y2)
        # as in ``_mask``): fill each one as a slice, touching only its pixels.
        h, w = x.shape[-2:]
        holes = drawn["holes"].round().long().tolist()
        rows = range(len(holes)) if idx is None else idx.tolist()
        for row, hs in zip(rows, holes):
            for x1, y1, x2, y2 in hs:
                x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
                if x2 > x1 and y2 > y1:
                    x[row, :, y1:y2, x1:x2] = fill

    def apply_targets(self, t: Targets, drawn, h, w, rules) -> Targets:
        if len(t.boxes) == 0 or self.params.max_cover >= 1.0:
            return t
        cover = covered_fraction(t.boxes, drawn["holes"][t.owner])
        return t.drop(cover <= self.params.max_cover, REASONS.index("occluded"), cover)


def covered_fraction(boxes: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """(N,) fraction of each box (N, 4) covered by the union of its holes (N, n, 4).

    Exact: the holes, clipped to the box, cut it into vertical slabs at their x edges;
    in each slab the covered length is the union of the active holes' y intervals
    (sorted by start: each adds what reaches past the furthest end so far). Sums run
    in a fixed elementwise order over the small hole and slab axes, so an object's
    value never depends on how many objects or samples share the batch.
    """
    bx1, by1, bx2, by2 = (boxes[:, k:k + 1] for k in range(4))
    x1, x2 = holes[..., 0].clamp(bx1, bx2), holes[..., 2].clamp(bx1, bx2)
    y1, y2 = holes[..., 1].clamp(by1, by2), holes[..., 3].clamp(by1, by2)
    real = (x2 > x1) & (y2 > y1)
    edges = torch.sort(torch.cat([x1, x2], 1), 1).values  # (N, 2n)
    mid = (edges[:, 1:] + edges[:, :-1]) / 2  # (N, S) slab centres
    active = real[:, None, :] & (x1[:, None, :] <= mid[..., None]) & (mid[..., None] < x2[:, None, :])
    top = by1[:, :, None].expand_as(active)  # inactive holes: empty intervals at the box's top
    lo = torch.where(active, y1[:, None, :], top)
    hi = torch.where(active, y2[:, None, :], top)
    order = torch.sort(lo, dim=2, stable=True).indices
    lo, hi = lo.gather(2, order), hi.gather(2, order)
    covered_len = torch.zeros_like(mid)
    reach = by1.expand_as(mid)
    for i in range(lo.shape[2]):
        covered_len = covered_len + (hi[..., i] - torch.maximum(lo[..., i], reach)).clamp_min(0)
        reach = torch.maximum(reach, hi[..., i])
    covered = torch.zeros(len(boxes), device=boxes.device)
    width = edges[:, 1:] - edges[:, :-1]
    for s in range(width.shape[1]):
        covered = covered + width[:, s] * covered_len[:, s]
    area = ((bx2 - bx1) * (by2 - by1))[:, 0].clamp_min(1e-6)
    return (covered / area).clamp(0.0, 1.0)
