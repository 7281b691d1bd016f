"""uint8 images warped by (B, 3, 3) affine matrices in integer arithmetic: the same
bytes on every CPU, at every dispatch level, and on CUDA, by construction.

The scheme is OpenCV's ``warpAffine`` on uint8 (``INTER_BITS = 5``,
``INTER_REMAP_COEF_BITS = 15``), with our pixel-centre convention:

1. The inverse matrix (float32, ``smallmat.inverse3``: elementwise IEEE operations)
   is folded to map output pixel *indices* to input pixel indices (pixel ``i``
   spans ``[i, i + 1)``, its centre ``i + 0.5``, as ``matrices.transform_points``
   maps boxes and polygons) and each coefficient rounded to ``COORD_BITS``
   fractional bits as an int64.
2. A source coordinate is then ``a * x + b * y + c``: the column term ``a * x`` and
   the row term ``b * y + c``, each exact in int64 and rounded to ``AB_BITS``
   fractional bits (int32), are added and the sum rounded to ``INTER_BITS``: an
   integer tap position and a fraction ``f`` in 0..31 per axis (OpenCV's ``adelta``
   and row offset, the same two roundings).
3. The value is ``(sum v_k * W_k + 512) >> 10`` over the four taps, with the integer
   weights ``(32 - fx) * (32 - fy)``, ``fx * (32 - fy)``, ... (they sum to 1024): one
   rounding, integers all the way.

On the CPU the last step is ``cv2.remap`` with fixed-point maps (``CV_16SC2`` tap
positions, ``CV_16UC1`` fraction indices, made by ``cv2.convertMaps`` from tap
positions that are exact multiples of 1/32): its bilinear table holds exactly these
weights times 32 and its vector code is integer arithmetic, so it gives these
integers (``tests/test_fixedpoint.py`` compares it with the torch formula, and the
version writer runs under plain and vector kernels in ``test_version_dispatch``).
Elsewhere (CUDA) the torch formula below runs: gathers, int32 products and a shift.
(On the CPU, OpenCV is 2.5-7x faster than the torch formula: 32x32 to 224x224.)

Taps outside the image read ``fill`` (``zeros``) or the nearest edge pixel
(``border``), tap by tap. A tap position is clamped to [-2, n], which changes no
value: beyond it both taps of the axis are outside.

What stays float: projective matrices (no op makes one; they would need a division
per pixel) and float images go through ``resample.warp``; masks use its ``nearest``.
"""

from __future__ import annotations

import torch

from pipeline.augment import smallmat

COORD_BITS = 16  # fractional bits of the matrix coefficients (int64 arithmetic)
AB_BITS = 10  # fractional bits of the per-axis terms (OpenCV's AB_BITS)
INTER_BITS = 5  # fractional bits of a tap position: 1/32 pixel, as OpenCV
ONE = 1 << INTER_BITS
SHIFT = 2 * INTER_BITS  # the four weights sum to 2**SHIFT


def is_affine(m: torch.Tensor) -> bool:
    return bool(((m[:, 2, 0] == 0) & (m[:, 2, 1] == 0) & (m[:, 2, 2] == 1)).all())


def coefficients(m: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) int64: output pixel index (x, y, 1) -> input pixel index, with
    ``COORD_BITS`` fractional bits. Centres map to centres: ``s + 0.5 = A (o + 0.5)``,
    so the offset gains ``(a + b - 1) / 2`` (exact in float64 from float32 values)."""
    inv = smallmat.inverse3(m.to(torch.float32)).to(torch.float64)[:, :2]
    a, b, c = inv[..., 0], inv[..., 1], inv[..., 2]
    c = c + ((a + b) - 1.0) * 0.5
    q = torch.stack([a, b, c], -1) * float(1 << COORD_BITS)
    # beyond 2**40 a coordinate is far outside any image: clamped, it stays outside
    return torch.round(q.clamp(-(2.0 ** 40), 2.0 ** 40)).to(torch.int64)


def terms(coef: torch.Tensor, out_hw: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Per-axis int32 terms of the source coordinates at ``AB_BITS`` fractional bits:
    the x coordinate of output pixel (x, y) is ``colx[x] + rowx[y]``, y likewise.
    Each term is rounded once from the exact int64 product (ties up), as OpenCV's
    ``warpAffine`` rounds its ``adelta`` and row offset; their sum is exact."""
    oh, ow = out_hw
    dev = coef.device
    xs = torch.arange(ow, device=dev, dtype=torch.int64)
    ys = torch.arange(oh, device=dev, dtype=torch.int64)
    half = 1 << (COORD_BITS - AB_BITS - 1)
    # tap positions far outside stay far outside: clamp so the sums fit int32
    lim = 1 << 29

    def q(v):
        return ((v + half) >> (COORD_BITS - AB_BITS)).clamp(-lim, lim).to(torch.int32)

    colx, coly = q(coef[:, 0, 0, None] * xs), q(coef[:, 1, 0, None] * xs)  # (B, ow)
    rowx, rowy = q(coef[:, 0, 1, None] * ys + coef[:, 0, 2, None]), q(coef[:, 1, 1, None] * ys + coef[:, 1, 2, None])
    return colx, rowx, coly, rowy


def taps(colx, rowx, coly, rowy, hw: tuple[int, int]):
    """Tap positions ``ix, iy`` clamped to [-2, n] and fractions ``fx, fy`` in 0..31,
    (..., oh, ow) int32, from one sample's (or a batch's) ``terms``."""
    h, w = hw
    r = AB_BITS - INTER_BITS
    half = 1 << (r - 1)
    vx = (rowx[..., :, None] + (colx[..., None, :] + half)) >> r
    vy = (rowy[..., :, None] + (coly[..., None, :] + half)) >> r
    return ((vx >> INTER_BITS).clamp_(-2, w), (vy >> INTER_BITS).clamp_(-2, h),
            vx & (ONE - 1), vy & (ONE - 1))


def warp_u8(images: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int] | None = None,
            fill: int = 0, padding_mode: str = "zeros") -> torch.Tensor:
    """Warp uint8 images (B, C, H, W) by affine forward matrices (B, 3, 3) into uint8
    images (B, C, oh, ow), integer bilinear (see the module docstring)."""
    if images.dtype != torch.uint8 or padding_mode not in ("zeros", "border"):
        raise ValueError(f"warp_u8: {images.dtype}, padding_mode {padding_mode!r}")
    b, c, h, w = images.shape
    oh, ow = out_hw or (h, w)
    t = terms(coefficients(m), (oh, ow))
    if images.device.type == "cpu" and max(h, w) < 1 << 14:
        return _remap_cv2(images, t, fill, padding_mode)
    return _remap_torch(images, taps(*t, (h, w)), fill, padding_mode)


def _remap_torch(images, tap, fill, padding_mode):
    """The integer formula in torch ops (any device)."""
    b, c, h, w = images.shape
    ix, iy, fx, fy = tap
    oh, ow = ix.shape[1:]
    if padding_mode == "border":
        padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    else:
        padded = torch.nn.functional.pad(images, (2, 2, 2, 2), value=fill)
    pw = w + 4
    flat = padded.reshape(b, c, (h + 4) * pw)
    i00 = ((iy + 2).to(torch.int64) * pw + (ix + 2)).reshape(b, 1, oh * ow).expand(b, c, oh * ow)

    def read(idx):
        return torch.gather(flat, 2, idx).to(torch.int32).view(b, c, oh, ow)

    fx, fy = fx[:, None], fy[:, None]
    top = read(i00) * (ONE - fx) + read(i00 + 1) * fx
    bottom = read(i00 + pw) * (ONE - fx) + read(i00 + pw + 1) * fx
    v = top * (ONE - fy) + bottom * fy
    return ((v + (1 << (SHIFT - 1))) >> SHIFT).to(torch.uint8)


def _remap_cv2(images, t, fill, padding_mode):
    """The same integers from OpenCV's fixed-point ``remap``, in one call per group of
    samples: their padded copies stacked into one tall image (channels interleaved,
    as OpenCV's vector code reads whole pixels, 4x faster than plane by plane), each
    sample's taps offset to its own copy. Every tap then falls inside the stack (the
    padding holds ``fill`` or the edge, as ``_remap_torch`` pads), so OpenCV's own
    border handling never runs and a sample never reads its neighbour."""
    import cv2

    b, c, h, w = images.shape
    oh, ow = t[1].shape[1], t[0].shape[1]
    ph, pw = h + 4, w + 4
    group = max(1, min(b, (1 << 15) // ph - 1))  # stacked rows must fit int16
    out = torch.empty((c, b, oh, ow), dtype=torch.uint8)
    for lo in range(0, b, group):
        hi = min(b, lo + group)
        n = hi - lo
        x = images[lo:hi].transpose(0, 1)  # (C, n, H, W): each channel's stack contiguous once padded
        if padding_mode == "border":
            padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
        else:
            padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=fill)
        xy = _stacked_maps(*(v[lo:hi] for v in t), (h, w), ph)
        xyn, frac = cv2.convertMaps(xy.numpy().reshape(n * oh, ow, 2), None, cv2.CV_16SC2)
        planes = padded.reshape(c, n * ph, pw).numpy()
        dst = out[:, lo:hi].numpy().reshape(c, n * oh, ow)
        if c == 1:
            cv2.remap(planes[0], xyn, frac, cv2.INTER_LINEAR, dst=dst[0])
        elif c <= 4:
            cv2.split(cv2.remap(cv2.merge(list(planes)), xyn, frac, cv2.INTER_LINEAR), list(dst))
        else:
            for ch in range(c):
                cv2.remap(planes[ch], xyn, frac, cv2.INTER_LINEAR, dst=dst[ch])
    return out.transpose(0, 1).contiguous()


def _stacked_maps(colx, rowx, coly, rowy, hw, ph):
    """(n, oh, ow, 2) float32 tap positions in pixels, multiples of 1/32, for ``n``
    samples stacked ``ph`` rows apart after 2 rows and columns of padding: ``taps``
    before it splits integer and fraction. ``cv2.convertMaps`` multiplies them by 32
    (exact) and splits them as ``taps`` does, so the fixed-point maps hold its integers."""
    h, w = hw
    n = len(colx)
    r = AB_BITS - INTER_BITS
    half = 1 << (r - 1)
    one = ONE
    xy = torch.empty((n, rowx.shape[1], colx.shape[1], 2), dtype=torch.float32)
    offset = (2 + ph * torch.arange(n, dtype=torch.int32))[:, None, None] * one
    vx = (rowx[:, :, None] + (colx[:, None, :] + half)) >> r
    xy[..., 0] = vx.clamp_(-2 * one, w * one + one - 1).add_(2 * one)
    vy = (rowy[:, :, None] + (coly[:, None, :] + half)) >> r
    xy[..., 1] = vy.clamp_(-2 * one, h * one + one - 1).add_(offset)
    return xy.mul_(1.0 / one)
