"""Small-matrix maths in a fixed order: right, and the same for a sample in any batch."""

import pytest
import torch

from pipeline.augment import matrices, smallmat


def affine_batch(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    m = torch.eye(3).repeat(n, 1, 1)
    m[:, :2, :2] += 0.4 * torch.randn(n, 2, 2, generator=g)
    m[:, :2, 2] = 50 * torch.randn(n, 2, generator=g)
    return m


def test_products_and_inverse_match_torch():
    a, b = affine_batch(9), affine_batch(9).flip(0)
    assert torch.allclose(smallmat.matmul(a, b), a @ b, rtol=1e-5, atol=1e-4)
    assert torch.allclose(smallmat.matvec(a, b[:, 0]), (a @ b[:, 0, :, None])[..., 0], rtol=1e-5, atol=1e-4)
    assert torch.allclose(smallmat.dot(a[:, 0], b[:, 1]), (a[:, 0] * b[:, 1]).sum(-1), rtol=1e-5, atol=1e-4)
    assert torch.allclose(smallmat.inverse3(a), torch.linalg.inv(a.double()).float(), rtol=1e-5, atol=1e-4)
    x = torch.rand(9, 3, 50)
    assert torch.allclose(smallmat.matmul(a.abs(), x), a.abs() @ x, rtol=1e-5, atol=1e-4)
    pts = torch.rand(9, 4, 2) * 30
    homo = torch.cat([pts, torch.ones_like(pts[..., :1])], -1) @ a.transpose(1, 2)
    assert torch.allclose(matrices.transform_points(a, pts), homo[..., :2] / homo[..., 2:], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_sample_gets_the_same_bits_in_any_batch(threads):
    """The property ``@`` lacks: (B, 3, 3) @ (3, 3)ᵀ-strided went through MKL's SGEMM
    with the batch folded in, and rounded differently from B = 4 on."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        m = affine_batch(260)
        const = smallmat.inverse3(affine_batch(1)[0])
        one = [(smallmat.matmul(m[i:i + 1], const), smallmat.inverse3(m[i:i + 1]),
                smallmat.matvec(m[i:i + 1], m[i:i + 1, 0])) for i in range(len(m))]
        for b in (3, 4, 7, 64, 256):
            for s in range(0, len(m) - b + 1, b):
                got = (smallmat.matmul(m[s:s + b], const), smallmat.inverse3(m[s:s + b]),
                       smallmat.matvec(m[s:s + b], m[s:s + b, 0]))
                for part, want in zip(got, zip(*one[s:s + b])):
                    assert torch.equal(part, torch.cat(want)), (b, s)
    finally:
        torch.set_num_threads(before)


def test_parameter_functions_do_not_depend_on_the_lane():
    """The ops draw parameters with these elementwise functions on (B, ...) tensors;
    a vectorised and a scalar (tail) path that disagreed would make a sample's
    parameters depend on its position in the batch. Measured equal (``v ** 0.7`` is
    not: rng.gamma takes exp(log(u) / alpha) instead); kept as a guard."""
    x = torch.linspace(-3.0, 3.0, 1001)
    pos = x.abs() + 1e-3
    for f, arg in ((torch.cos, x), (torch.sin, x), (torch.tan, x * 0.4), (torch.exp, x), (torch.log, pos),
                   (torch.sqrt, pos), (lambda v: v ** 3, x), (lambda v: v ** 2, x)):
        whole = f(arg)
        assert torch.equal(whole, torch.cat([f(arg[i:i + 1]) for i in range(len(arg))])), f


@pytest.mark.parametrize("c, hw", [(3, (33, 47)), (3, (96, 96)), (1, (13, 200)), (3, (28, 28))])
def test_per_sample_blas_products_do_not_depend_on_batch_or_threads(c, hw):
    """The products that stay on BLAS (colour pass, banded blur and axis-aligned
    resampling): each sample is its own fixed-shape matrix, but torch calls SGEMM for
    a batch of one and SGEMM_BATCH for more, at any thread count. Measured equal;
    this fails if a torch or MKL upgrade changes that."""
    h, w = hw
    g = torch.Generator().manual_seed(c * h + w)
    n = 16
    x = torch.rand(n, c, h, w, generator=g) * 255
    m = torch.rand(n, c, c, generator=g)
    band = torch.rand(n, min(w, 64), min(w, 64), generator=g)
    xs = x[..., :band.shape[-1]]

    def products(i, j):
        return (torch.bmm(m[i:j], x[i:j].reshape(j - i, c, h * w)),
                torch.matmul(xs[i:j], band[i:j, None]))

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = [products(i, i + 1) for i in range(n)]
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for b in (2, 3, 4, 7, 16):
                for s in range(0, n - b + 1, b):
                    for part, want in zip(products(s, s + b), zip(*alone[s:s + b])):
                        assert torch.equal(part, torch.cat(want)), (threads, b, s)
    finally:
        torch.set_num_threads(before)
