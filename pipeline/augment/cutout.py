"""Cutout: fill ``holes`` random rectangles per sample; boxes covered beyond
``max_cover`` are dropped (cover = summed hole overlap / box area, an upper bound
when holes overlap)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from pipeline.augment import rng
from pipeline.augment.base import Op, OpParams
from pipeline.augment.geometric import Range, _ordered
from pipeline.augment.targets import Targets


class Cutout(Op):
    name = "cutout"
    kind = "pixel"
    exact = True  # a fill: runs on uint8 without leaving it

    class Params(OpParams):
        name: Literal["cutout"] = "cutout"
        holes: tuple[int, int] = Field((1, 1), description="(min, max) holes per sample")
        size: Range = Field((0.1, 0.3), description="hole side as a fraction of the image side")
        fill: float = Field(0.0, ge=0.0, le=1.0, description="fraction of the value range")
        max_cover: float = Field(1.0, ge=0.0, le=1.0, description="drop boxes covered more than this")

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
        hb = drawn["holes"][t.owner]  # (N, n, 4)
        bx = t.boxes[:, None, :]
        iw = (torch.minimum(bx[..., 2], hb[..., 2]) - torch.maximum(bx[..., 0], hb[..., 0])).clamp_min(0)
        ih = (torch.minimum(bx[..., 3], hb[..., 3]) - torch.maximum(bx[..., 1], hb[..., 1])).clamp_min(0)
        area = ((t.boxes[:, 2] - t.boxes[:, 0]) * (t.boxes[:, 3] - t.boxes[:, 1])).clamp_min(1e-6)
        cover = (iw * ih).sum(1) / area
        return t.take_objects(torch.nonzero(cover <= self.params.max_cover)[:, 0])
