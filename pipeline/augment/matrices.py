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

from pipeline.augment import smallmat


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


def warp(images: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int] | None = None,
         mode: str = "bilinear", fill: float = 0.0, padding_mode: str = "zeros") -> torch.Tensor:
    """Warp float images (B, C, H, W) by forward matrices (B, 3, 3). ``padding_mode``
    (grid_sample's, with ``fill`` 0): what samples outside the source read."""
    b, c, h, w = images.shape
    oh, ow = out_hw or (h, w)
    dev = images.device
    # affine_grid wants output-normalised -> input-normalised coordinates:
    # theta = N_in @ inv(M) @ inv(N_out), N mapping pixels to [-1, 1] (align_corners=False).
    # Fixed-order products (smallmat.py): ``@`` here went to one MKL SGEMM with the
    # batch folded into its rows, whose rounding changed at B = 4, and so theta and
    # the pixels did. The closed-form inverse keeps LAPACK out as well.
    norm_in = torch.tensor([[2.0 / w, 0.0, -1.0], [0.0, 2.0 / h, -1.0], [0.0, 0.0, 1.0]], device=dev)
    unnorm_out = torch.tensor([[ow / 2.0, 0.0, ow / 2.0], [0.0, oh / 2.0, oh / 2.0], [0.0, 0.0, 1.0]], device=dev)
    theta = smallmat.matmul(smallmat.matmul(norm_in, smallmat.inverse3(m.to(torch.float32))), unnorm_out)
    # The grid is separable: (column term)[b, 1, x, :] + (row term)[b, y, 1, :], added
    # one coordinate plane at a time straight into the interleaved (B, oh, ow, 2)
    # layout: 2.8x faster on CPUs than one broadcast add whose innermost dimension is
    # the 2 coordinates, and the same bits (affine_grid's (HW, 3) @ (3, 2) product and
    # stacking two planes are both slower still).
    xs = (torch.arange(ow, device=dev, dtype=torch.float32) + 0.5) * (2.0 / ow) - 1.0
    ys = (torch.arange(oh, device=dev, dtype=torch.float32) + 0.5) * (2.0 / oh) - 1.0
    t = theta[:, :2, :].transpose(1, 2)  # (B, 3, 2): rows are the x, y, 1 coefficients
    cols = t[:, None, None, 0, :] * xs[None, None, :, None] + t[:, None, None, 2, :]  # (B, 1, ow, 2)
    rows = t[:, None, None, 1, :] * ys[None, :, None, None]  # (B, oh, 1, 2)
    grid = torch.empty((b, oh, ow, 2), device=dev)
    for k in range(2):
        torch.add(cols[..., k], rows[..., k], out=grid[..., k])
    if fill == 0.0:
        return torch.nn.functional.grid_sample(images, grid, mode=mode, padding_mode=padding_mode,
                                               align_corners=False)
    # Non-zero fill: warp a ones channel to know which output pixels came from inside.
    ones = torch.ones_like(images[:, :1])
    out = torch.nn.functional.grid_sample(torch.cat([images, ones], 1), grid, mode=mode,
                                          padding_mode="zeros", align_corners=False)
    inside = out[:, -1:]
    return out[:, :-1] + (1.0 - inside) * fill


def _axis_weights(scale: torch.Tensor, shift: torch.Tensor, n_in: int, n_out: int) -> torch.Tensor:
    """(B, n_out, n_in) bilinear weights of output pixels along one axis for the map
    ``x' = scale * x + shift``, zero outside the input: what ``grid_sample``
    (bilinear, zeros, align_corners=False) does, one axis at a time."""
    o = torch.arange(n_out, device=scale.device, dtype=torch.float32) + 0.5
    s = (o[None, :] - shift[:, None]) / scale[:, None] - 0.5  # (B, n_out) source index
    i0 = torch.floor(s)
    frac = s - i0
    w = torch.zeros(len(scale), n_out, n_in + 2, device=scale.device)
    # Column 0 and n_in + 1 collect out-of-range taps and are cut off below.
    lo = (i0 + 1).clamp(0, n_in + 1).long()
    hi = (i0 + 2).clamp(0, n_in + 1).long()
    w.scatter_add_(2, lo[..., None], (1 - frac)[..., None])
    w.scatter_add_(2, hi[..., None], frac[..., None])
    return w[:, :, 1:n_in + 1]


def resample_axis_aligned(images: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Warp float (B, C, H, W) images by axis-aligned matrices as ``Wy @ x @ Wx^T``.

    Flips and integer shifts give 0/1 weights, so the result is exact; two batched
    matrix products replace one gather per output pixel: faster on CPUs for small
    images (cost grows with the side; ``grid_sample`` wins above ~64 pixels).
    """
    b, c, h, w = images.shape
    oh, ow = out_hw
    wx = _axis_weights(m[:, 0, 0], m[:, 0, 2], w, ow)  # (B, ow, w)
    wy = _axis_weights(m[:, 1, 1], m[:, 1, 2], h, oh)  # (B, oh, h)
    out = torch.matmul(images, wx.transpose(1, 2)[:, None])  # (B, C, H, ow)
    return torch.matmul(wy[:, None], out)


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

