"""Per-sample colour maps on uint8 images, exact: the same bytes on every CPU and on
CUDA, whatever kernel runs them.

A colour map is ``y = M x + o`` per sample (the fused colour ops, photometric.py).
Each entry of ``M`` and ``o`` is rounded to a multiple of ``2**-F`` (``F`` at most
``FRAC_BITS``, lowered per sample so every partial sum stays below ``2**(24 - F)``).
Then every product ``M_ij * x_j`` (x an integer 0..255) and every partial sum is a
multiple of ``2**-F`` below ``2**(24 - F)`` in magnitude: a float32 holds it
exactly, so the products and sums have no rounding at all, in any order, with or
without fused multiply-adds, in BLAS or elementwise. One rounding (half to even)
then gives the output byte. Quantising ``M`` moves a value by at most
``3 * 255 * 2**-(F + 1)`` (0.09 of a grey level at ``F = 12``).

Where ``M`` is diagonal for the whole batch (brightness and contrast alone, or one
channel), the CPU applies the map as a 256-entry table per (sample, channel) with
``cv2.LUT``, built with the same formula, so both ways give the same bytes (tables
also work on CUDA by a gather; there the elementwise pass runs, with no host sync).

On CUDA the product is elementwise: cuBLAS may run float32 products in TF32 (when a
program allows it), which would drop bits.
"""

from __future__ import annotations

import torch

FRAC_BITS = 12


def quantise(m: torch.Tensor, o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``m`` (B, C, C) and ``o`` (B, C) rounded to multiples of ``2**-F`` per sample."""
    a = m.abs().to(torch.float64)
    rows = a[..., 0]
    for j in range(1, a.shape[-1]):  # left to right: a reduction's order differs by device
        rows = rows + a[..., j]
    bound = (rows * 255.0 + o.abs().to(torch.float64)).amax(1)  # (B,)
    e = torch.frexp(bound + 1.0).exponent  # bound + 1 < 2**e: exact, unlike log2
    # (a bound past 2**23, factors in the tens of thousands, keeps 0 bits and is no
    # longer exact: nothing a colour augmentation draws)
    frac = (23 - e).clamp(0, FRAC_BITS)
    s = (torch.ones_like(frac) << frac).to(torch.float32)[:, None]  # exact powers of two
    mq = torch.round(m * s[..., None]) / s[..., None]
    oq = torch.round(o * s) / s
    return mq, oq


def is_diagonal(m: torch.Tensor) -> bool:
    c = m.shape[-1]
    off = ~torch.eye(c, dtype=torch.bool, device=m.device)
    return not bool(m[:, off].any())


def tables(mq: torch.Tensor, oq: torch.Tensor) -> torch.Tensor:
    """(B, C, 256) uint8: each channel's output for every input byte (diagonal maps)."""
    v = torch.arange(256, device=mq.device, dtype=torch.float32)
    diag = torch.diagonal(mq, dim1=1, dim2=2)  # (B, C)
    y = diag[..., None] * v + oq[..., None]
    return y.round_().clamp_(0, 255).to(torch.uint8)


def channel_means(x: torch.Tensor) -> torch.Tensor:
    """(B, C) float32 channel means; of uint8 from exact integer sums (OpenCV's on the
    CPU, int64 elsewhere), so the colour maps built on them agree everywhere."""
    if x.dtype != torch.uint8:
        return x.mean((2, 3))
    b, c, h, w = x.shape
    if x.device.type == "cpu" and h * w > 64 * 64:  # (small planes: one batched sum is faster)
        import cv2

        xn = x.numpy() if x.is_contiguous() else x.contiguous().numpy()
        sums = torch.tensor([[cv2.sumElems(xn[i, ch])[0] for ch in range(c)] for i in range(b)],
                            dtype=torch.float64).reshape(b, c)
    else:
        sums = x.sum((2, 3), dtype=torch.int64).to(torch.float64)
    return (sums / (h * w)).to(torch.float32)


def to_u8(y: torch.Tensor, scale: float = 1.0, use_cv2: bool | None = None,
          out: torch.Tensor | None = None) -> torch.Tensor:
    """``y * scale`` rounded half to even and clamped to uint8, for float32 ``y`` whose
    products with ``scale`` (a power of two) are exact. On the CPU OpenCV's
    ``convertScaleAbs`` on values clamped at 0 (2.4x faster than torch's round, clamp
    and cast; the same bytes: both round half to even)."""
    if y.device.type == "cpu" if use_cv2 is None else use_cv2:
        import cv2

        z = y.clamp_min_(0).contiguous()
        if out is not None:  # a contiguous uint8 tensor of y's shape, written in place
            cv2.convertScaleAbs(z.numpy().reshape(-1, z.shape[-1]), dst=out.numpy().reshape(-1, z.shape[-1]),
                                alpha=scale)
            return out
        return torch.from_numpy(cv2.convertScaleAbs(z.numpy().reshape(-1, z.shape[-1]), alpha=scale)).view(y.shape)
    r = y.mul_(scale).round_().clamp_(0, 255).to(torch.uint8)  # exact products: the same bytes
    return r if out is None else out.copy_(r)


def apply_affine(x: torch.Tensor, m: torch.Tensor, o: torch.Tensor, how: str | None = None) -> torch.Tensor:
    """uint8 (B, C, H, W) through per-sample maps ``m`` (B, C, C), ``o`` (B, C): uint8.
    ``how`` (tests): ``tables``, ``bmm`` or ``elementwise``; by default on the CPU
    tables for diagonal maps, else ``bmm``; elsewhere ``elementwise`` (deciding on
    tables would cost a host sync; all three give the same bytes)."""
    b, c, h, w = x.shape
    mq, oq = quantise(m, o)
    cpu = x.device.type == "cpu"
    how = how or ("tables" if cpu and is_diagonal(mq) else "bmm" if cpu else "elementwise")
    if how == "tables":
        return apply_tables(x, tables(mq, oq))
    if how == "bmm":
        y = torch.bmm(mq, x.reshape(b, c, h * w).to(torch.float32)).add_(oq[:, :, None]).view(b, c, h, w)
    else:
        xf = x.to(torch.float32)
        y = torch.empty_like(xf)
        for i in range(c):
            acc = oq[:, i, None, None] + mq[:, i, 0, None, None] * xf[:, 0]
            for j in range(1, c):
                acc = acc + mq[:, i, j, None, None] * xf[:, j]
            y[:, i] = acc
    return to_u8(y)


def apply_tables(x: torch.Tensor, lut: torch.Tensor, use_cv2: bool | None = None) -> torch.Tensor:
    """uint8 (B, C, H, W) through per-(sample, channel) tables (B, C, 256)."""
    b, c, h, w = x.shape
    if x.device.type == "cpu" if use_cv2 is None else use_cv2:
        import cv2

        out = torch.empty_like(x)
        src, dst, tab = x.contiguous().numpy(), out.numpy(), lut.numpy()
        for i in range(b):
            for ch in range(c):
                cv2.LUT(src[i, ch], tab[i, ch], dst=dst[i, ch])
        return out
    idx = x.reshape(b, c, h * w).to(torch.int64)
    return torch.gather(lut, 2, idx).view(b, c, h, w)
