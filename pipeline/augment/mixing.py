"""Label-mixing ops: each sample is mixed with one partner sample passed in as data.

Classification labels become (label, partner label, weight) — ``Targets.classes``,
``mix_classes``, ``mix_weight`` — and ``targets.soft_labels`` gives the soft-label
tensor. For box data ``mixup`` keeps both images' objects (``weights`` = each image's
share) and ``cutmix`` keeps each image's objects visible in its own region.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from pydantic import Field

from pipeline.augment import rng
from pipeline.augment.base import ALL_TARGETS, Op, OpParams
from pipeline.augment.target_transform import Rules, transform_targets
from pipeline.augment.targets import REASONS, Targets, merge


def _mix_classes(t: Targets, tp: Targets, lam: torch.Tensor, applied: torch.Tensor) -> Targets:
    """Record the partner's class and the own weight, only where the op applied: a
    sample an earlier mixing op blended keeps that op's pair when this one skips it.
    (A sample blended twice keeps only the last pair; packed classification versions
    therefore allow one mixing op, see ``Pipeline.check_offline``.)"""
    if t.classes is None or tp.classes is None:
        return t
    prev_classes = t.mix_classes if t.mix_classes is not None else t.classes
    prev_weight = t.mix_weight if t.mix_weight is not None else torch.ones_like(lam)
    return replace(t, mix_classes=torch.where(applied, tp.classes, prev_classes),
                   mix_weight=torch.where(applied, lam, prev_weight))


class MixUp(Op):
    """Blend with a partner: ``lam * x + (1 - lam) * partner``, lam ~ Beta(alpha, alpha)."""

    name = "mixup"
    kind = "mixing"
    supports = ALL_TARGETS - {"masks"}  # a blended label map has no meaning
    partners = 1

    class Params(OpParams):
        name: Literal["mixup"] = "mixup"
        alpha: float = Field(0.4, gt=0.0, le=100.0)

    def sample(self, keys, h, w):
        applied = self._applied(keys)
        lam = rng.beta(self.keys(keys), self.stream + 1, self.params.alpha)
        return {"applied": applied, "lam": torch.where(applied, lam, 1.0),
                "partner_u": self._uniform(keys, 20, 1, 0.0, 1.0)}

    def mix(self, x, t, drawn, partners, rules: Rules, scale: float = 1.0):
        (xp, tp), = partners
        lam = drawn["lam"]
        x = torch.lerp(xp, x, lam.view(-1, 1, 1, 1))
        if t is None:
            return x, None
        own = replace(t, weights=t.weights * lam[t.owner])
        # Partner objects only where mixup applied; weighted by the partner's share.
        keep = torch.nonzero(drawn["applied"][tp.owner])[:, 0]
        other = tp.take_objects(keep)
        other = replace(other, weights=other.weights * (1 - lam[other.owner]),
                        keypoint_visible=other.keypoint_visible & drawn["applied"][other.keypoint_owner])
        return x, _mix_classes(merge([own, other]), tp, lam, drawn["applied"])


class CutMix(Op):
    """Paste a partner's rectangle of area ``1 - lam`` (lam ~ Beta(alpha, alpha)); the
    label weight is the exact kept area fraction after clipping to the canvas."""

    name = "cutmix"
    kind = "mixing"
    partners = 1

    class Params(OpParams):
        name: Literal["cutmix"] = "cutmix"
        alpha: float = Field(1.0, gt=0.0, le=100.0)

    def sample(self, keys, h, w):
        applied = self._applied(keys)
        k = self.keys(keys)
        lam = rng.beta(k, self.stream + 1, self.params.alpha)
        u = rng.uniform(k, self.stream + 2, 2)
        side = torch.sqrt(1 - lam)
        cx, cy = u[:, 0] * w, u[:, 1] * h
        rect = torch.stack([torch.round((cx - side * w / 2).clamp(0, w)), torch.round((cy - side * h / 2).clamp(0, h)),
                            torch.round((cx + side * w / 2).clamp(0, w)), torch.round((cy + side * h / 2).clamp(0, h))], 1)
        rect = rect * applied[:, None]
        lam = 1 - (rect[:, 2] - rect[:, 0]) * (rect[:, 3] - rect[:, 1]) / (h * w)
        return {"applied": applied, "rect": rect, "lam": lam, "partner_u": self._uniform(keys, 20, 1, 0.0, 1.0)}

    def _inside(self, rect, h, w, device):
        ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
        xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
        r = rect[:, :, None, None]
        return ((xs >= r[:, 0]) & (xs < r[:, 2]) & (ys[:, None] >= r[:, 1]) & (ys[:, None] < r[:, 3]))[:, None]

    def mix(self, x, t, drawn, partners, rules: Rules, scale: float = 1.0):
        (xp, tp), = partners
        h, w = x.shape[-2:]
        rect = drawn["rect"]
        inside = self._inside(rect, h, w, x.device)  # (B, 1, H, W)
        x = torch.where(inside, xp, x)
        if t is None:
            return x, None
        # Own objects: keep when enough of the box lies outside the pasted rectangle.
        r = rect[t.owner]
        iw = (torch.minimum(t.boxes[:, 2], r[:, 2]) - torch.maximum(t.boxes[:, 0], r[:, 0])).clamp_min(0)
        ih = (torch.minimum(t.boxes[:, 3], r[:, 3]) - torch.maximum(t.boxes[:, 1], r[:, 1])).clamp_min(0)
        area = ((t.boxes[:, 2] - t.boxes[:, 0]) * (t.boxes[:, 3] - t.boxes[:, 1])).clamp_min(1e-6)
        vis = 1 - iw * ih / area
        own = t.drop((vis > 0) & (vis >= rules.min_visibility), REASONS.index("pasted_over"), 1 - vis)
        k, ko = own.keypoints, own.keypoint_owner
        if len(k):
            rk = rect[ko]
            hidden = (k[:, 0] >= rk[:, 0]) & (k[:, 0] < rk[:, 2]) & (k[:, 1] >= rk[:, 1]) & (k[:, 1] < rk[:, 3])
            own = replace(own, keypoint_visible=own.keypoint_visible & ~hidden)
        # Partner objects: clipped to the rectangle (polygons too), then the usual rules.
        eye = torch.eye(3, device=x.device).expand(len(rect), 3, 3)
        other = transform_targets(tp, eye, (h, w), rules, clip_rect=rect)
        out = merge([own, other])
        if t.masks is not None and tp.masks is not None:
            out = replace(out, masks=torch.where(inside, tp.masks, t.masks))
        return x, _mix_classes(out, tp, drawn["lam"], drawn["applied"])
