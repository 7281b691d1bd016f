"""Products and inverses of small per-sample matrices (3x3 geometry, CxC colour) in a
fixed order of elementwise operations.

Why not ``@``: torch hands these products to BLAS, and BLAS picks its code path by
the problem size, which includes the batch. ``warp`` multiplied ``(B, 3, 3)`` by the
column-major ``inv(N_out)``; torch folds the batch into the rows of one call, MKL
``SGEMM(T, N, 3, 3B, 3)``, and from B = 4 on (n = 12) that call rounds some entries
differently from B <= 3 (measured: MKL 2024.2, AVX-512). So a sample's sampling grid
moved by one unit in the last place with the batch size, its bilinear weights with
it, and now and then a pixel crossed a .5 and came out one grey level off.
``(B, 3) @ (3,)`` (``SGEMV``) differs from B = 4 on too, and ``bmm`` calls ``SGEMM``
for one matrix but ``SGEMM_BATCH`` for several.

Here every entry is ``a0 * b0 + a1 * b1 + ...``, summed left to right, each step one
elementwise multiply or add: one IEEE rounding per element, the same in any lane,
batch, thread split or device, for a few microseconds more per batch than BLAS.
Products over the pixels (the colour pass, the banded blur) stay on BLAS: there each
sample is its own matrix of a fixed shape, never folded into a size that follows the
batch, and ``tests/test_smallmat.py`` checks those kernels give a sample the same bits
in any batch and at any thread count.
"""

from __future__ import annotations

import torch


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for (..., n, k) and (..., k, m), broadcasting the leading dims."""
    out = a[..., :, 0:1] * b[..., 0:1, :]
    term = None
    for k in range(1, a.shape[-1]):
        term = torch.mul(a[..., :, k:k + 1], b[..., k:k + 1, :], out=term)
        out.add_(term)
    return out


def matvec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``a @ v`` for (..., n, k) and (..., k) -> (..., n)."""
    return matmul(a, v[..., :, None])[..., 0]


def dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim of ``u * v`` (broadcast), left to right."""
    u, v = torch.broadcast_tensors(u, v)
    out = u[..., 0] * v[..., 0]
    for k in range(1, u.shape[-1]):
        out = out + u[..., k] * v[..., k]
    return out


def inverse3(m: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 3, 3) matrices by the adjugate over the determinant."""
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    g, h, i = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    co = [e * i - f * h, c * h - b * i, b * f - c * e,
          f * g - d * i, a * i - c * g, c * d - a * f,
          d * h - e * g, b * g - a * h, a * e - b * d]
    det = a * co[0] + b * co[3] + c * co[6]
    return torch.stack(co, -1).unflatten(-1, (3, 3)) / det[..., None, None]
