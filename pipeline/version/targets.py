"""Objects (boxes, polygons) carried through a version's resize and geometric ops.

Every geometric op is a (B, 3, 3) matrix (``pipeline.augment.geometry``); the
points of an object are multiplied by the composed matrix of the resize and the
sample's geometric ops, and the box is the bounds of the moved corners (or of the
moved polygon, which is tighter after a rotation).

TODO(lead): once the augmentation engine's targets API (issue 5) is merged,
switch ``transform_objects`` to it, so ops that move objects in other ways
(mosaic, cutmix) are handled in one place.
"""

from __future__ import annotations

import torch

from pipeline.augment import geometry
from pipeline.record import Object


def geometric_matrices(ops, drawn, b: int, h: int, w: int) -> torch.Tensor:
    """(B, 3, 3): the composition of a batch's geometric ops, in pipeline order."""
    m = geometry.identity(b)
    for op, params in zip(ops, drawn):
        if op.kind == "geometric":
            m = op.matrix({k: v.cpu() for k, v in params.items()}, h, w).to(torch.float32) @ m
    return m


def resize_matrix(src_hw: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """(3, 3) scaling from source pixels to output pixels."""
    m = torch.eye(3)
    m[0, 0] = w / src_hw[1]
    m[1, 1] = h / src_hw[0]
    return m


def transform_objects(objects: tuple[Object, ...], m: torch.Tensor, h: int, w: int) -> list[dict]:
    """Move objects by the (3, 3) matrix ``m``; boxes are clipped to the (h, w) image.

    An object moved entirely outside the image is kept with ``visible: false``
    rather than dropped, so the manifest still accounts for it.
    """
    out = []
    for o in objects:
        x1, y1, x2, y2 = o.box
        corners = torch.tensor([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=torch.float32)
        polys = [geometry.transform_points(m, torch.tensor(p, dtype=torch.float32).reshape(-1, 2))
                 for p in o.polygons]
        pts = torch.cat(polys) if polys else geometry.transform_points(m, corners)
        lo = pts.min(0).values.clamp(min=0.0)
        hi = pts.max(0).values
        hi = torch.stack([hi[0].clamp(max=float(w)), hi[1].clamp(max=float(h))])
        visible = bool((hi > lo).all())
        d: dict = {"label": o.label, "box": [round(float(v), 3) for v in (*lo, *hi)], "visible": visible}
        if polys:
            d["polygons"] = [[round(float(v), 3) for v in p.reshape(-1)] for p in polys]
        out.append(d)
    return out
