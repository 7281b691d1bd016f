"""Mosaic: a 2x2 canvas of ``size`` from the sample (top-left) and three partner
samples passed in as data, as Ultralytics' ``load_mosaic`` builds it. A random centre
splits the canvas; each source is scaled, keeping its aspect, to fit half the canvas
on each side, and placed with one corner against the centre (top-left tile: its
bottom-right corner; top-right: its bottom-left; ...), cropped where it passes the
canvas; what no tile covers is ``fill``. One matrix per source (scale, then shift)
moves its pixels (one warp each) and its targets, which are clipped to the tile's
visible rectangle. Unselected samples are only resized to ``size``, so the batch
keeps one shape.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from pydantic import Field, model_validator

from pipeline.augment import matrices, resample, smallmat
from pipeline.augment.base import Op, OpParams
from pipeline.augment.geometric import Range, _ordered
from pipeline.augment.target_transform import Rules, transform_masks, transform_targets
from pipeline.augment.targets import merge
from pipeline.core.resize_modes import PAD_GREY

# Which corner of each tile (own, then partners 1..3) touches the centre: the tile's
# left edge is at cx - tile_w * LEFT[k], its top edge at cy - tile_h * UP[k].
LEFT = (1, 0, 1, 0)
UP = (1, 1, 0, 0)


def tile_size(src_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a source of ``src_hw`` scaled to fit half of ``out_hw`` on
    each side, keeping its aspect (whole pixels, as Ultralytics resizes)."""
    (h, w), (oh, ow) = src_hw, out_hw
    s = min(oh / 2 / h, ow / 2 / w)
    return max(1, round(h * s)), max(1, round(w * s))


class Mosaic(Op):
    name = "mosaic"
    kind = "mixing"
    partners = 3

    class Params(OpParams):
        name: Literal["mosaic"] = "mosaic"
        size: tuple[int, int] | None = Field(None, description="(height, width) of the canvas; null = keep")
        centre: Range = Field((0.25, 0.75), description="split point as a fraction of each side")
        fill: float = Field(PAD_GREY / 255, ge=0.0, le=1.0,
                            description="fraction of the value range where no tile lies (Ultralytics' 114)")

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

    def placement(self, drawn, k: int, src_hw: tuple[int, int], out_hw: tuple[int, int]):
        """Source ``k``'s (B, 3, 3) matrix onto the canvas and (B, 4) XYXY visible
        rectangle. Unselected samples: their own image stretched over the whole canvas,
        the partners nowhere."""
        (h, w), (oh, ow) = src_hw, out_hw
        th, tw = tile_size(src_hw, out_hw)
        cx, cy, applied = drawn["cx"], drawn["cy"], drawn["applied"]
        x0, y0 = cx - tw * LEFT[k], cy - th * UP[k]
        sx, sy = torch.full_like(cx, tw / w), torch.full_like(cy, th / h)
        rect = torch.stack([x0.clamp(0, ow), y0.clamp(0, oh), (x0 + tw).clamp(0, ow), (y0 + th).clamp(0, oh)], 1)
        if k == 0:
            whole = torch.tensor([0.0, 0.0, float(ow), float(oh)], device=cx.device)
            x0, y0 = torch.where(applied, x0, 0.0), torch.where(applied, y0, 0.0)
            sx, sy = torch.where(applied, sx, ow / w), torch.where(applied, sy, oh / h)
            rect = torch.where(applied[:, None], rect, whole)
        else:
            rect = rect * applied[:, None]
        return smallmat.matmul(matrices.translation(x0, y0), matrices.scaling(sx, sy)), rect

    def mix(self, x, t, drawn, partners, rules: Rules, scale: float = 1.0):
        oh, ow = self.out_hw(*x.shape[-2:])
        sources = [(x, t)] + list(partners)
        fill = self.params.fill * scale  # scale: 255 for uint8 input (the engine works in float)
        out = torch.full((len(x), x.shape[1], oh, ow), fill, dtype=torch.float32, device=x.device)
        ys = torch.arange(oh, device=x.device, dtype=torch.float32) + 0.5
        xs = torch.arange(ow, device=x.device, dtype=torch.float32) + 0.5
        moved, masks = [], None
        for k, (img, tt) in enumerate(sources):
            m, q = self.placement(drawn, k, tuple(img.shape[-2:]), (oh, ow))
            r = q[:, :, None, None]
            inside = ((xs >= r[:, 0]) & (xs < r[:, 2]) & (ys[:, None] >= r[:, 1]) & (ys[:, None] < r[:, 3]))[:, None]
            # Border padding: a tile's edge pixels blend with its own edge, not with black.
            warped = resample.warp(img.to(torch.float32), m, (oh, ow), padding_mode="border")
            out = torch.where(inside, warped, out)
            if t is not None:
                moved.append(transform_targets(tt, m, (oh, ow), rules, clip_rect=q))
                if tt.masks is not None:
                    wm = transform_masks(tt.masks, m, (oh, ow))
                    masks = torch.where(inside, wm, 0 if masks is None else masks)
        if t is None:
            return out, None
        return out, replace(merge(moved), masks=masks)
