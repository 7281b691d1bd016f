"""Geometric ops: each is a per-sample (B, 3, 3) matrix (see matrices.py)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from pipeline.augment import exactmath, matrices, rng, smallmat
from pipeline.augment.base import Op, OpParams

Range = tuple[float, float]


def _ordered(r: Range, name: str) -> None:
    if r[0] > r[1]:
        raise ValueError(f"{name}: low {r[0]} > high {r[1]}")


class HFlip(Op):
    """Mirror left-right. Not for digits or text, where it changes the class."""

    name = "hflip"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["hflip"] = "hflip"

    def sample(self, keys, h, w):
        return {"applied": self._applied(keys)}

    def matrix(self, drawn, h, w):
        return matrices.hflip_matrix(drawn["applied"], float(w))


class VFlip(Op):
    """Mirror top-bottom."""

    name = "vflip"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["vflip"] = "vflip"

    def sample(self, keys, h, w):
        return {"applied": self._applied(keys)}

    def matrix(self, drawn, h, w):
        return matrices.vflip_matrix(drawn["applied"], float(h))


class Rotate(Op):
    """Rotate about the image centre by an angle uniform in [-degrees, degrees]."""

    name = "rotate"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["rotate"] = "rotate"
        degrees: float = Field(15.0, gt=0.0, le=180.0)

    def sample(self, keys, h, w):
        d = self.params.degrees
        angle = self._uniform(keys, 1, 1, -d, d)[:, 0]
        applied = self._applied(keys)
        return {"applied": applied, "angle": torch.where(applied, angle, 0.0)}

    def matrix(self, drawn, h, w):
        return matrices.rotation_about(drawn["angle"], w / 2.0, h / 2.0)


class Rot90(Op):
    """Rotate by 90, 180 or 270 degrees (uniform) about the image centre: with ``p: 0.75``
    the four orientations are equally likely, and with ``hflip`` the eight views of an
    aerial or microscope image. A square image's pixels only move; a non-square one keeps
    its canvas (corners cut, the sides filled), as ``rotate`` does."""

    name = "rot90"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["rot90"] = "rot90"

    def sample(self, keys, h, w):
        applied = self._applied(keys)
        turns = torch.floor(self._uniform(keys, 1, 1, 1.0, 4.0)[:, 0]).clamp(1.0, 3.0)
        return {"applied": applied, "turns": torch.where(applied, turns, 0.0)}

    def matrix(self, drawn, h, w):
        return matrices.quarter_turns_about(drawn["turns"], w / 2.0, h / 2.0)


class Crop(Op):
    """Pad by ``padding`` pixels (zeros) and crop back to size at a random offset:
    an integer shift in [-padding, padding] on each axis."""

    name = "crop"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["crop"] = "crop"
        padding: int = Field(4, ge=1, le=4096)

    def sample(self, keys, h, w):
        pad = self.params.padding
        shift = rng.randint(self.keys(keys), self.stream + 1, 2, -pad, pad).to(torch.float32)
        applied = self._applied(keys)
        shift = torch.where(applied[:, None], shift, 0.0)
        return {"applied": applied, "dx": shift[:, 0], "dy": shift[:, 1]}

    def matrix(self, drawn, h, w):
        return matrices.translation(drawn["dx"], drawn["dy"])


class RandomResizedCrop(Op):
    """Crop a region of random area fraction ``scale`` and aspect ``ratio`` and resize
    it to ``size`` (null = the input size). Unselected samples are resized whole, so
    the batch keeps one shape. Out-of-bounds draws are clamped, not retried."""

    name = "random_resized_crop"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["random_resized_crop"] = "random_resized_crop"
        size: tuple[int, int] | None = Field(None, description="(height, width); null = keep")
        scale: Range = (0.08, 1.0)
        ratio: Range = (3 / 4, 4 / 3)

        @model_validator(mode="after")
        def _ranges(self):
            _ordered(self.scale, "scale")
            _ordered(self.ratio, "ratio")
            if not (0 < self.scale[0] and self.scale[1] <= 1 and self.ratio[0] > 0):
                raise ValueError("scale must lie in (0, 1] and ratio be > 0")
            return self

    def out_hw(self, h, w):
        return tuple(self.params.size) if self.params.size else (h, w)

    def sample(self, keys, h, w):
        s, r = self.params.scale, self.params.ratio
        u = self._uniform(keys, 1, 4, 0.0, 1.0)
        area = (s[0] + (s[1] - s[0]) * u[:, 0]) * h * w
        logr = math.log(r[0]) + (math.log(r[1]) - math.log(r[0])) * u[:, 1]
        ratio = exactmath.exp(logr)
        cw = torch.sqrt(area * ratio).clamp(1.0, float(w))
        ch = torch.sqrt(area / ratio).clamp(1.0, float(h))
        x0, y0 = u[:, 2] * (w - cw), u[:, 3] * (h - ch)
        applied = self._applied(keys)
        return {"applied": applied, "x0": torch.where(applied, x0, 0.0), "y0": torch.where(applied, y0, 0.0),
                "cw": torch.where(applied, cw, float(w)), "ch": torch.where(applied, ch, float(h))}

    def matrix(self, drawn, h, w):
        oh, ow = self.out_hw(h, w)
        return smallmat.matmul(matrices.scaling(ow / drawn["cw"], oh / drawn["ch"]),
                               matrices.translation(-drawn["x0"], -drawn["y0"]))


class Affine(Op):
    """Scale, translate (fractions of the size) and shear (degrees) about the centre."""

    name = "affine"
    kind = "geometric"

    class Params(OpParams):
        name: Literal["affine"] = "affine"
        scale: Range = (0.9, 1.1)
        translate: tuple[float, float] = Field((0.1, 0.1), description="max |shift| / (width, height)")
        shear: Range = (-10.0, 10.0)
        rotate: Range = (0.0, 0.0)

        @model_validator(mode="after")
        def _ranges(self):
            for k in ("scale", "shear", "rotate"):
                _ordered(getattr(self, k), k)
            if self.scale[0] <= 0 or not all(0 <= t <= 1 for t in self.translate):
                raise ValueError("scale must be > 0 and translate within [0, 1]")
            if not all(-80 <= v <= 80 for v in self.shear):
                raise ValueError("shear must lie within [-80, 80] degrees")
            return self

    def sample(self, keys, h, w):
        pr = self.params
        u = self._uniform(keys, 1, 6, 0.0, 1.0)
        lerp = (lambda r, v: r[0] + (r[1] - r[0]) * v)
        applied = self._applied(keys)
        z = torch.zeros_like(u[:, 0])
        return {"applied": applied,
                "scale": torch.where(applied, lerp(pr.scale, u[:, 0]), 1.0),
                "tx": torch.where(applied, (2 * u[:, 1] - 1) * pr.translate[0] * w, z),
                "ty": torch.where(applied, (2 * u[:, 2] - 1) * pr.translate[1] * h, z),
                "shear_x": torch.where(applied, lerp(pr.shear, u[:, 3]), z),
                "shear_y": torch.where(applied, lerp(pr.shear, u[:, 4]), z),
                "angle": torch.where(applied, lerp(pr.rotate, u[:, 5]), z)}

    def matrix(self, drawn, h, w):
        cx, cy = w / 2.0, h / 2.0
        b = drawn["scale"].shape[0]
        sh = matrices.identity(b, drawn["scale"].device)
        for (r, c), k in (((0, 1), "shear_x"), ((1, 0), "shear_y")):
            sin, cos = exactmath.sin_cos(drawn[k] * (math.pi / 180))
            sh[:, r, c] = sin / cos
        ones = torch.ones_like(drawn["tx"])
        centre = matrices.translation(-cx * ones, -cy * ones)
        back = matrices.translation(cx + drawn["tx"], cy + drawn["ty"])
        rot = matrices.rotation_about(drawn["angle"], 0.0, 0.0)
        m = centre
        for step in (matrices.scaling(drawn["scale"], drawn["scale"]), sh, rot, back):
            m = smallmat.matmul(step, m)
        return m
