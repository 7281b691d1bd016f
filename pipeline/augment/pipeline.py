"""An ordered list of ops applied to a batch, with per-sample parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.augment import geometry
from pipeline.augment.ops import Op

Drawn = list[dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Pipeline:
    ops: tuple[Op, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and [o.params for o in self.ops] == [o.params for o in other.ops]

    def sample(self, keys: torch.Tensor, h: int, w: int) -> Drawn:
        """Draw every op's (B, ...) parameters from the per-sample keys."""
        return [op.sample(keys, h, w) for op in self.ops]

    def apply(self, images: torch.Tensor, drawn: Drawn) -> torch.Tensor:
        """Apply drawn parameters to uint8 or float (B, C, H, W) images.

        Consecutive geometric ops are composed into one matrix and warped once, so
        the image is resampled once per run of geometry, not once per op. uint8
        input gives uint8 output, rounded half-to-even after the float work.
        """
        b, _, h, w = images.shape
        out = images.to(torch.float32) if not images.is_floating_point() else images
        m = None
        for op, params in zip(self.ops, drawn):
            if op.kind == "geometric":
                step = op.matrix(params, h, w)
                m = step if m is None else step @ m
            else:  # photometric ops arrive with the augmentation engine (issue 5)
                out = self._flush(out, m)
                m = None
                out = op.apply_image(out, params)
        out = self._flush(out, m)
        if images.dtype == torch.uint8:
            return out.round().clamp_(0, 255).to(torch.uint8)
        return out

    @staticmethod
    def _flush(images: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        if m is None:
            return images
        return geometry.warp(images, m)

    @staticmethod
    def describe(ops: tuple[Op, ...], drawn: Drawn, index: int) -> list[dict[str, float | bool | str]]:
        """The parameters sample ``index`` received, in op order, as plain JSON data."""
        out = []
        for op, params in zip(ops, drawn):
            d: dict[str, float | bool | str] = {"op": op.name}
            for k, v in params.items():
                d[k] = bool(v[index]) if v.dtype == torch.bool else round(float(v[index]), 4)
            out.append(d)
        return out
