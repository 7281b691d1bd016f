"""Images warped by (B, 3, 3) matrices with the same bits on every CPU and device.

Each output pixel centre is mapped into the input through the inverse matrix, and
its value is read from the (at most) four input pixels around that point. Every
step is one elementwise torch operation (a multiply, an add, a floor, a gather), so
each value is rounded once by IEEE rules, which every vector unit and GPU follow
to the bit. What this replaces rounded by the kernel's code path instead:
``grid_sample``'s vectorised and scalar loops (``ATEN_CPU_CAPABILITY``) gave some
rotated pixels of the default pipeline one grey level apart (2 values in 9.4
million), and a BLAS product of the per-axis weights (the axis-aligned path) rounds
with or without fused multiply-adds as its kernel chooses. Rounding order is fixed:
``(v00 * wx0 + v01 * wx1) * wy0 + (v10 * wx0 + v11 * wx1) * wy1``.

Samples are processed in chunks of about ``CHUNK_PIXELS`` output pixels, so the
coordinate planes stay small whatever the batch (the result does not depend on
the chunking: every value is computed from its own sample alone).
"""

from __future__ import annotations

import torch

from pipeline.augment import smallmat

CHUNK_PIXELS = 1 << 20  # output pixels per chunk: ~10 float planes of 4 MB each


def warp(images: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int] | None = None,
         mode: str = "bilinear", fill: float = 0.0, padding_mode: str = "zeros") -> torch.Tensor:
    """Warp float images (B, C, H, W) by forward matrices (B, 3, 3) (input pixel
    coordinates to output ones, pixel ``i`` spanning ``[i, i + 1)``).

    ``mode``: ``bilinear`` or ``nearest`` (ties to even, as ``grid_sample``).
    ``padding_mode``: ``zeros`` (taps outside the input read ``fill``) or ``border``
    (they read the nearest edge pixel)."""
    if mode not in ("bilinear", "nearest") or padding_mode not in ("zeros", "border"):
        raise ValueError(f"warp: mode {mode!r}, padding_mode {padding_mode!r}")
    b, c, h, w = images.shape
    oh, ow = out_hw or (h, w)
    out = torch.empty((b, c, oh, ow), dtype=images.dtype, device=images.device)
    inv = smallmat.inverse3(m.to(torch.float32))
    step = max(1, CHUNK_PIXELS // max(1, oh * ow))
    for s in range(0, b, step):
        sl = slice(s, s + step)
        out[sl] = _warp_chunk(images[sl], inv[sl], oh, ow, mode, fill, padding_mode)
    return out


def _source(inv: torch.Tensor, oh: int, ow: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input pixel-index coordinates (B, oh, ow) of every output pixel centre."""
    dev = inv.device
    xs = (torch.arange(ow, device=dev, dtype=torch.float32) + 0.5)[None, None, :]
    ys = (torch.arange(oh, device=dev, dtype=torch.float32) + 0.5)[None, :, None]

    def row(r: int) -> torch.Tensor:
        return (inv[:, r, 0, None, None] * xs + inv[:, r, 1, None, None] * ys) + inv[:, r, 2, None, None]

    sx, sy = row(0), row(1)
    if bool((inv[:, 2, :2] != 0).any()):  # a projective map: divide by the third coordinate
        z = row(2)
        sx, sy = sx / z, sy / z
    return sx - 0.5, sy - 0.5


def _warp_chunk(x: torch.Tensor, inv: torch.Tensor, oh: int, ow: int, mode: str, fill: float,
                padding_mode: str) -> torch.Tensor:
    b, c, h, w = x.shape
    sx, sy = _source(inv, oh, ow)
    # Reading from a copy padded by 1 pixel before and 2 after (``fill``, or the edge
    # pixel for ``border``), with the coordinate clamped to [-1, n], every tap is a
    # valid index with no mask: a point further out than -1 or n reads padding on
    # both sides, which clamping it does too (with the second tap's weight 0).
    if padding_mode == "border":
        padded = torch.nn.functional.pad(x, (1, 2, 1, 2), mode="replicate")
    else:
        padded = torch.nn.functional.pad(x, (1, 2, 1, 2), value=fill)
    pw = w + 3
    flat = padded.reshape(b, c, (h + 3) * pw)
    sx, sy = sx.clamp(-1.0, float(w)), sy.clamp(-1.0, float(h))

    def read(idx: torch.Tensor) -> torch.Tensor:
        return torch.gather(flat, 2, idx.reshape(b, 1, oh * ow).expand(b, c, oh * ow)).reshape(b, c, oh, ow)

    if mode == "nearest":
        return read((torch.round(sy).to(torch.int64) + 1) * pw + (torch.round(sx).to(torch.int64) + 1))
    x0, y0 = torch.floor(sx), torch.floor(sy)
    wx1, wy1 = (sx - x0)[:, None], (sy - y0)[:, None]
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    i00 = (y0.to(torch.int64) + 1) * pw + (x0.to(torch.int64) + 1)
    i10 = i00 + pw
    top = read(i00) * wx0 + read(i00 + 1) * wx1
    bottom = read(i10) * wx0 + read(i10 + 1) * wx1
    return top * wy0 + bottom * wy1
