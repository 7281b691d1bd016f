"""Mosaic: a 2x2 canvas of ``size`` from the sample (top-left) and three partner
samples passed in as data, split at a random centre. Each source is scaled to fill
its quadrant (one matrix per source, one warp each); targets move by the same
matrices and are clipped to their quadrant. Unselected samples are only resized to
``size``, so the batch keeps one shape.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from pydantic import Field, model_validator

from pipeline.augment import geometry, smallmat
from pipeline.augment.base import Op, OpParams
from pipeline.augment.geometric import Range, _ordered
from pipeline.augment.target_geometry import Rules, transform_masks, transform_targets
from pipeline.augment.targets import merge


class Mosaic(Op):
    name = "mosaic"
    kind = "mixing"
    partners = 3

    class Params(OpParams):
        name: Literal["mosaic"] = "mosaic"
        size: tuple[int, int] | None = Field(None, description="(height, width) of the canvas; null = keep")
        centre: Range = Field((0.25, 0.75), description="split point as a fraction of each side")

        @model_validator(mode="after")
        def _ranges(self):
            _ordered(self.centre, "centre")
            if not (0 < self.centre[0] and self.centre[1] < 1):
                raise ValueError("centre must lie within (0, 1)")
            return self

    def out_hw(self, h, w):
        return tuple(self.params.size) if self.params.size else (h, w)

    def sample(self, keys, h, w):
        oh, ow = self.out_hw(h, w)
        lo, hi = self.params.centre
        u = self._uniform(keys, 1, 2, lo, hi)
        applied = self._applied(keys)
        return {"applied": applied, "cx": torch.where(applied, torch.round(u[:, 0] * ow), float(ow)),
                "cy": torch.where(applied, torch.round(u[:, 1] * oh), float(oh)),
                "partner_u": self._uniform(keys, 20, 3, 0.0, 1.0)}

    def quadrants(self, drawn, oh, ow) -> torch.Tensor:
        """(4, B, 4) XYXY rectangles: own (top-left), then the three partners."""
        cx, cy = drawn["cx"], drawn["cy"]
        z = torch.zeros_like(cx)
        fw, fh = torch.full_like(cx, float(ow)), torch.full_like(cy, float(oh))
        return torch.stack([torch.stack([z, z, cx, cy], 1), torch.stack([cx, z, fw, cy], 1),
                            torch.stack([z, cy, cx, fh], 1), torch.stack([cx, cy, fw, fh], 1)])

    def mix(self, x, t, drawn, partners, rules: Rules):
        h, w = x.shape[-2:]
        oh, ow = self.out_hw(h, w)
        quads = self.quadrants(drawn, oh, ow)
        sources = [(x, t)] + list(partners)
        out = None
        ys = torch.arange(oh, device=x.device, dtype=torch.float32) + 0.5
        xs = torch.arange(ow, device=x.device, dtype=torch.float32) + 0.5
        moved, masks = [], None
        for (img, tt), q in zip(sources, quads):
            qw, qh = (q[:, 2] - q[:, 0]).clamp_min(1e-6), (q[:, 3] - q[:, 1]).clamp_min(1e-6)
            m = smallmat.matmul(geometry.translation(q[:, 0], q[:, 1]), geometry.scaling(qw / w, qh / h))
            r = q[:, :, None, None]
            inside = ((xs >= r[:, 0]) & (xs < r[:, 2]) & (ys[:, None] >= r[:, 1]) & (ys[:, None] < r[:, 3]))[:, None]
            warped = geometry.warp(img, m, (oh, ow))
            out = torch.where(inside, warped, 0.0 if out is None else out)
            if t is not None:
                moved.append(transform_targets(tt, m, (oh, ow), rules, clip_rect=q))
                if tt.masks is not None:
                    wm = transform_masks(tt.masks, m, (oh, ow))
                    masks = torch.where(inside, wm, 0 if masks is None else masks)
        if t is None:
            return out, None
        return out, replace(merge(moved), masks=masks)
