"""One geometry path: every geometric op is a (B, 3, 3) matrix.

Coordinates are continuous pixels (pixel ``i`` spans ``[i, i + 1)``), so a
horizontal flip is ``x' = W - x`` and a box maps exactly. Matrices map *input*
coordinates to *output* coordinates; ``warp`` samples each output pixel centre
from the input through the inverse, in one ``grid_sample`` call for the batch.
Points (polygons, box corners, keypoints) are multiplied by the same matrix.
"""

from __future__ import annotations

import math

import torch


def identity(b: int, device=None) -> torch.Tensor:
    return torch.eye(3, device=device).expand(b, 3, 3).clone()


def translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = identity(tx.shape[0], tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def scaling(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = identity(sx.shape[0], sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def rotation_about(angle_deg: torch.Tensor, cx: float, cy: float) -> torch.Tensor:
    """Rotate counter-clockwise (as seen on screen, y down) about (cx, cy)."""
    a = angle_deg * (math.pi / 180.0)
    cos, sin = torch.cos(a), torch.sin(a)
    m = identity(a.shape[0], a.device)
    m[:, 0, 0], m[:, 0, 1] = cos, sin
    m[:, 1, 0], m[:, 1, 1] = -sin, cos
    m[:, 0, 2] = cx - cos * cx - sin * cy
    m[:, 1, 2] = cy + sin * cx - cos * cy
    return m


def hflip_matrix(applied: torch.Tensor, width: float) -> torch.Tensor:
    sx = torch.where(applied, -1.0, 1.0)
    return translation(torch.where(applied, width, 0.0), torch.zeros_like(sx)) @ scaling(sx, torch.ones_like(sx))


def vflip_matrix(applied: torch.Tensor, height: float) -> torch.Tensor:
    sy = torch.where(applied, -1.0, 1.0)
    return translation(torch.zeros_like(sy), torch.where(applied, height, 0.0)) @ scaling(torch.ones_like(sy), sy)


def transform_points(m: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Apply (3, 3) or (B, 3, 3) matrices to (..., N, 2) points."""
    homo = torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1)
    out = homo @ m.transpose(-1, -2)
    return out[..., :2] / out[..., 2:3]


def warp(images: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int] | None = None,
         mode: str = "bilinear", fill: float = 0.0) -> torch.Tensor:
    """Warp float images (B, C, H, W) by forward matrices (B, 3, 3)."""
    b, c, h, w = images.shape
    oh, ow = out_hw or (h, w)
    dev = images.device
    ys = torch.arange(oh, device=dev, dtype=torch.float32) + 0.5
    xs = torch.arange(ow, device=dev, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([gx, gy], dim=-1).reshape(1, -1, 2)  # (1, oh*ow, 2)
    src = transform_points(torch.linalg.inv(m.to(torch.float32)), centres)  # (B, oh*ow, 2)
    grid = torch.stack([src[..., 0] * (2.0 / w) - 1.0, src[..., 1] * (2.0 / h) - 1.0], dim=-1)
    grid = grid.reshape(b, oh, ow, 2)
    if fill == 0.0:
        return torch.nn.functional.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)
    # Non-zero fill: warp a ones channel to know which output pixels came from inside.
    ones = torch.ones_like(images[:, :1])
    out = torch.nn.functional.grid_sample(torch.cat([images, ones], 1), grid, mode=mode,
                                          padding_mode="zeros", align_corners=False)
    inside = out[:, -1:]
    return out[:, :-1] + (1.0 - inside) * fill
