"""One geometry path: every geometric op is a (B, 3, 3) matrix.

Coordinates are continuous pixels (pixel ``i`` spans ``[i, i + 1)``), so a
horizontal flip is ``x' = W - x`` and a box maps exactly. Matrices map *input*
coordinates to *output* coordinates; ``resample.warp`` samples each output pixel
centre from the input through the inverse.
Points (polygons, box corners, keypoints) are multiplied by the same matrix.
"""

from __future__ import annotations

import math

import torch

from pipeline.augment import exactmath, smallmat


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
    sin, cos = exactmath.sin_cos(a)  # the same bits on every device (fixed-point warps)
    return _rotation(cos, sin, cx, cy)


def _rotation(cos: torch.Tensor, sin: torch.Tensor, cx: float, cy: float) -> torch.Tensor:
    """(B, 3, 3) rotation by per-sample (cos, sin) about (cx, cy), y down."""
    m = identity(cos.shape[0], cos.device)
    m[:, 0, 0], m[:, 0, 1] = cos, sin
    m[:, 1, 0], m[:, 1, 1] = -sin, cos
    m[:, 0, 2] = cx - cos * cx - sin * cy
    m[:, 1, 2] = cy + sin * cx - cos * cy
    return m


def quarter_turns_about(turns: torch.Tensor, cx: float, cy: float) -> torch.Tensor:
    """Rotate by ``turns`` x 90 degrees (0..3, counter-clockwise as ``rotation_about``) about
    (cx, cy), with exact 0 / +-1 entries: no cos(pi / 2) residue, so a square image's pixel
    centres land on pixel centres and 180 degrees is a pure flip (``integer_exact``)."""
    k = turns.long() % 4
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=turns.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=turns.device)[k]
    return _rotation(cos, sin, cx, cy)


def hflip_matrix(applied: torch.Tensor, width: float) -> torch.Tensor:
    sx = torch.where(applied, -1.0, 1.0)
    return smallmat.matmul(translation(torch.where(applied, width, 0.0), torch.zeros_like(sx)),
                           scaling(sx, torch.ones_like(sx)))


def vflip_matrix(applied: torch.Tensor, height: float) -> torch.Tensor:
    sy = torch.where(applied, -1.0, 1.0)
    return smallmat.matmul(translation(torch.zeros_like(sy), torch.where(applied, height, 0.0)),
                           scaling(torch.ones_like(sy), sy))


def transform_points(m: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Apply (3, 3) or (B, 3, 3) matrices to (..., N, 2) points. Written out term by
    term, not as ``homo @ m.T``: the ragged point list's length varies with the batch,
    and so would BLAS's kernel (see smallmat.py)."""
    x, y = pts[..., 0], pts[..., 1]

    def row(r: int) -> torch.Tensor:
        return m[..., None, r, 0] * x + m[..., None, r, 1] * y + m[..., None, r, 2]

    z = row(2)
    return torch.stack([row(0) / z, row(1) / z], -1)


def integer_exact(m: torch.Tensor) -> torch.Tensor:
    """(B,) True where the matrix is a flip and/or an integer shift: pixels only move."""
    return ((m[:, 0, 1] == 0) & (m[:, 1, 0] == 0) & (m[:, 2, 0] == 0) & (m[:, 2, 1] == 0)
            & (m[:, 0, 0].abs() == 1) & (m[:, 1, 1].abs() == 1) & (m[:, :2, 2] == m[:, :2, 2].round()).all(1))


def move_pixels(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Apply flip/integer-shift matrices exactly (any dtype): flips, then one gather of
    each sample's window from a zero-padded copy. No interpolation arithmetic."""
    b, c, h, w = images.shape
    x = images
    shifts = []
    for axis, size, dim in ((0, w, -1), (1, h, -2)):
        flip = m[:, axis, axis] < 0
        t = m[:, axis, 2]
        # after flipping, out[o] = flipped[o - (t - size)]; unflipped, out[o] = x[o - t]
        shifts.append(torch.where(flip, t - size, t).long())
        if bool(flip.any()):
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(dim), x)
    sx, sy = shifts
    if not bool((sx != 0).any() or (sy != 0).any()):
        return x if x is not images else x.clone()
    px = int(sx.abs().max().clamp_max(w))
    py = int(sy.abs().max().clamp_max(h))
    padded = torch.nn.functional.pad(x, (px, px, py, py))
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (B, C, 2py+1, 2px+1, h, w) view
    oy = (py - sy).clamp(0, 2 * py)
    ox = (px - sx).clamp(0, 2 * px)
    return windows[torch.arange(b), :, oy, ox]

