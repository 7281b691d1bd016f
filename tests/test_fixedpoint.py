"""The integer warp of uint8 images: OpenCV's fixed-point remap and the torch formula
give the same integers; both follow a float64 bilinear reference within one grey
level; pixels and boxes follow the same matrix (pixel centres); CPU == CUDA."""

import math

import pytest
import torch

from pipeline.augment import fixedpoint, matrices, resample, smallmat


def random_affine(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(b, 6, generator=g)
    m = matrices.rotation_about((u[:, 0] - 0.5) * 120, w / 2, h / 2)
    m = smallmat.matmul(matrices.scaling(0.5 + 1.5 * u[:, 1], 0.5 + 1.5 * u[:, 2]), m)
    m = smallmat.matmul(matrices.translation((u[:, 3] - 0.5) * w, (u[:, 4] - 0.5) * h), m)
    sh = matrices.identity(b)
    sh[:, 0, 1] = u[:, 5] - 0.5
    return smallmat.matmul(sh, m)


def images(b, c, h, w, seed=0):
    return torch.randint(0, 256, (b, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def smooth(b, c, h, w):
    y = torch.arange(h, dtype=torch.float64)[:, None]
    x = torch.arange(w, dtype=torch.float64)[None, :]
    planes = [127.5 + 120 * torch.sin(x / (7 + k) + y / (11 + 2 * k) + k) for k in range(b * c)]
    return torch.stack(planes).round().to(torch.uint8).view(b, c, h, w)


@pytest.mark.parametrize("c", [1, 3, 4, 5])
@pytest.mark.parametrize("padding_mode, fill", [("zeros", 0), ("zeros", 114), ("border", 0)])
@pytest.mark.parametrize("hw, out_hw", [((31, 47), (31, 47)), ((40, 30), (17, 53))])
def test_opencv_remap_gives_the_torch_formula_integers(c, padding_mode, fill, hw, out_hw):
    h, w = hw
    x, m = images(6, c, h, w, seed=c), random_affine(6, h, w, seed=c + h)
    t = fixedpoint.terms(fixedpoint.coefficients(m), out_hw)
    a = fixedpoint._remap_cv2(x, t, fill, padding_mode)
    b = fixedpoint._remap_torch(x, fixedpoint.taps(*t, hw), fill, padding_mode)
    assert a.dtype == torch.uint8 and a.shape == (6, c, *out_hw)
    assert torch.equal(a, b)


def bilinear64(x, sx, sy, fill, padding_mode):
    """float64 bilinear at index coordinates (B, oh, ow), taps outside read ``fill``
    or the edge: an independent reference."""
    b, c, h, w = x.shape
    xf = x.to(torch.float64)
    x0, y0 = torch.floor(sx), torch.floor(sy)
    out = torch.zeros(b, c, *sx.shape[1:], dtype=torch.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            ix, iy = (x0 + dx).long(), (y0 + dy).long()
            wgt = (1 - (sx - x0 - dx).abs()) * (1 - (sy - y0 - dy).abs())
            inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            v = torch.stack([xf[i][:, iy[i].clamp(0, h - 1), ix[i].clamp(0, w - 1)] for i in range(b)])
            if padding_mode == "zeros":
                v = torch.where(inside[:, None], v, float(fill))
            out += v * wgt[:, None]
    return out


def exact_source(m, oh, ow):
    inv = torch.linalg.inv(m.to(torch.float64))
    ys, xs = torch.meshgrid(torch.arange(oh, dtype=torch.float64) + 0.5,
                            torch.arange(ow, dtype=torch.float64) + 0.5, indexing="ij")
    sx = inv[:, 0, 0, None, None] * xs + inv[:, 0, 1, None, None] * ys + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * xs + inv[:, 1, 1, None, None] * ys + inv[:, 1, 2, None, None]
    return sx - 0.5, sy - 0.5


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_integer_warp_is_the_float64_bilinear_at_its_tap_positions(padding_mode):
    """At the positions it rounds to (1/32 pixel), the integer result is the float64
    value rounded half up (the weights are multiples of 1/1024: float64 holds the
    value exactly): within half a grey level, the same bytes."""
    x, m = images(8, 3, 37, 41, seed=3), random_affine(8, 37, 41, seed=4)
    out = fixedpoint.warp_u8(x, m, padding_mode=padding_mode, fill=9)
    ix, iy, fx, fy = fixedpoint.taps(*fixedpoint.terms(fixedpoint.coefficients(m), (37, 41)), (37, 41))
    ref = bilinear64(x, ix + fx / 32.0, iy + fy / 32.0, 9, padding_mode)
    d = (out.to(torch.float64) - ref).abs()
    assert d.max() <= 0.5  # one rounding of the exact value, nothing else
    assert torch.equal(out.to(torch.float64), torch.floor(ref + 0.5))


def test_integer_warp_follows_the_exact_float64_warp_of_smooth_images():
    """Against exact (unrounded) coordinates: 1/32 pixel moves a smooth image by far
    less than a grey level, so at most one level apart, and only a few values."""
    x, m = smooth(6, 3, 64, 80), random_affine(6, 64, 80, seed=7)
    out = fixedpoint.warp_u8(x, m)
    sx, sy = exact_source(m, 64, 80)
    ref = bilinear64(x, sx, sy, 0, "zeros")
    inside = ((sx > 1) & (sx < 78) & (sy > 1) & (sy < 62))[:, None].expand_as(ref)
    d = (out.to(torch.float64) - ref).abs()[inside]
    assert d.max() <= 1.0
    assert (d > 0.5).float().mean() < 0.1


def test_integer_warp_is_the_float_warp_within_rounding():
    x, m = smooth(4, 3, 48, 48), random_affine(4, 48, 48, seed=9)
    a = resample.warp(x, m, padding_mode="border")  # no edge to fill, whose step 1/32 px moves
    assert a.dtype == torch.uint8  # uint8 under affine matrices takes the integer path
    f = resample.warp(x.to(torch.float32), m, padding_mode="border")
    assert (a.to(torch.float32) - f).abs().max() <= 1.0


@pytest.mark.parametrize("kind", ["scale2", "rot90", "hflip_shift"])
def test_pixels_and_boxes_follow_the_same_matrix(kind):
    """A white rectangle warped, and its box moved by the same matrix: a pixel is
    brighter than half exactly when its centre lies inside the moved box."""
    h = w = 48
    x = torch.zeros(1, 1, h, w, dtype=torch.uint8)
    x1, y1, x2, y2 = 10, 6, 20, 17
    x[..., y1:y2, x1:x2] = 255
    one = torch.ones(1)
    m = {"scale2": matrices.scaling(2 * one, 2 * one),
         "rot90": matrices.rotation_about(90 * one, w / 2, h / 2),
         "hflip_shift": smallmat.matmul(matrices.translation(-3 * one, 5 * one),
                                        matrices.hflip_matrix(torch.tensor([True]), float(w)))}[kind]
    out = fixedpoint.warp_u8(x, m)[0, 0]
    corners = torch.tensor([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=torch.float32)
    pts = matrices.transform_points(m[0], corners)
    bx1, by1 = pts.min(0).values.tolist()
    bx2, by2 = pts.max(0).values.tolist()
    cy, cx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    inside = (cx > bx1) & (cx < bx2) & (cy > by1) & (cy < by2)
    assert torch.equal(out > 127, inside)


def test_far_away_and_degenerate_maps_read_fill():
    x = images(2, 3, 16, 16)
    far = matrices.translation(torch.tensor([1e7, -5e4]), torch.tensor([3.0, 1e9]))
    assert (fixedpoint.warp_u8(x, far, fill=7) == 7).all()
    tiny = matrices.scaling(torch.tensor([1e-6, 1e-6]), torch.tensor([1e-6, 1e-6]))  # inverse: huge
    out = fixedpoint.warp_u8(x, tiny, fill=7)
    assert out.shape == x.shape


def test_coefficients_put_pixel_centres_on_pixel_centres():
    m = matrices.identity(1)
    coef = fixedpoint.coefficients(m)
    one = 1 << fixedpoint.COORD_BITS
    assert coef[0].tolist() == [[one, 0, 0], [0, one, 0]]
    m = matrices.scaling(torch.tensor([2.0]), torch.tensor([2.0]))
    coef = fixedpoint.coefficients(m)  # output centre o + .5 <- input (o + .5) / 2
    assert coef[0, 0].tolist() == [one // 2, 0, -one // 4]
    assert math.isclose(coef[0, 1, 2].item() / one, -0.25)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_integer_warp_gives_the_same_bytes_on_cuda():
    for padding_mode, fill in (("zeros", 0), ("zeros", 114), ("border", 0)):
        x, m = images(8, 3, 61, 53, seed=11), random_affine(8, 61, 53, seed=12)
        cpu = fixedpoint.warp_u8(x, m, (45, 70), fill, padding_mode)
        gpu = fixedpoint.warp_u8(x.cuda(), m.cuda(), (45, 70), fill, padding_mode)
        assert torch.equal(cpu, gpu.cpu())


def test_tall_images_are_remapped_in_groups_that_fit_int16():
    x, m = images(7, 3, 6000, 9, seed=13), random_affine(7, 6000, 9, seed=14)
    t = fixedpoint.terms(fixedpoint.coefficients(m), (6000, 9))
    assert torch.equal(fixedpoint._remap_cv2(x, t, 5, "zeros"),
                       fixedpoint._remap_torch(x, fixedpoint.taps(*t, (6000, 9)), 5, "zeros"))
