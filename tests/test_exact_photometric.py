"""Photometric ops on uint8 without a float rounding that could depend on the kernel:
every way of running an op (OpenCV, BLAS, elementwise, tables) gives the same bytes,
the bytes follow a float64 reference, and the whole engine gives CPU == CUDA."""

import pytest
import torch

from pipeline.augment import exactmath, luts
from pipeline.augment.photometric import BLUR_BITS, GaussianBlur, _blur_u8
from pipeline.augment.registry import build_pipeline
from pipeline.augment.rng import keys_tensor
from pipeline.core.seeding import sample_key

EXACT = [
    {"name": "random_resized_crop", "p": 0.7, "scale": [0.5, 1.0]},
    {"name": "hflip", "p": 0.5},
    {"name": "rotate", "p": 0.7, "degrees": 30},
    {"name": "affine", "p": 0.7, "scale": [0.8, 1.2], "shear": [-15, 15], "rotate": [-20, 20]},
    {"name": "crop", "p": 0.5, "padding": 3},
    {"name": "color_jitter", "p": 0.8, "brightness": [0.5, 1.5], "contrast": [0.5, 1.5],
     "saturation": [0.0, 2.0], "hue": [-0.3, 0.3]},
    {"name": "grayscale", "p": 0.3},
    {"name": "gaussian_blur", "p": 0.7, "sigma": [0.3, 2.0]},
    {"name": "gaussian_noise", "p": 0.7},
    {"name": "cutout", "p": 0.5},
]


def images(b, c, h, w, seed=0):
    return torch.randint(0, 256, (b, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def colour_maps(b, c, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, c, generator=g) * 1.6 - 0.3, torch.rand(b, c, generator=g) * 200 - 100


@pytest.mark.parametrize("c", [1, 3])
def test_colour_maps_give_the_same_bytes_every_way_and_follow_float64(c):
    x = images(5, c, 19, 23, seed=c)
    m, o = colour_maps(5, c, seed=c)
    ways = [luts.apply_affine(x, m, o, how) for how in ("bmm", "elementwise")]
    assert torch.equal(ways[0], ways[1])
    ref = torch.einsum("bij,bjhw->bihw", m.double(), x.double()) + o.double()[:, :, None, None]
    assert (ways[0].double() - ref.clamp(0, 255)).abs().max() <= 0.5 + 3 * 255 * 2.0 ** -13


def test_diagonal_maps_are_tables_with_the_matrix_bytes():
    x = images(4, 3, 16, 16, seed=2)
    d = torch.diag_embed(torch.tensor([[0.5, 1.0, 1.7], [1.2, 1.2, 1.2], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0]]))
    o = torch.tensor([[3.0, -20.0, 0.4], [0.5, 0.5, 0.5], [7.0, 0.0, -1.5], [0.0, 0.0, 0.0]])
    by_table = luts.apply_affine(x, d, o)
    assert torch.equal(by_table, luts.apply_affine(x, d, o, "bmm"))
    assert torch.equal(by_table, luts.apply_affine(x, d, o, "elementwise"))
    lut = luts.tables(*luts.quantise(d, o))
    assert torch.equal(luts.apply_tables(x, lut, use_cv2=True), luts.apply_tables(x, lut, use_cv2=False))
    assert torch.equal(by_table[3], x[3])  # the identity map changes nothing


def test_rounding_to_uint8_is_half_to_even_on_both_paths():
    y = torch.arange(-40, 600, dtype=torch.float32).view(4, 1, 4, 40) * 0.5
    a = luts.to_u8(y.clone(), use_cv2=True)
    b = luts.to_u8(y.clone(), use_cv2=False)
    assert torch.equal(a, b)
    assert a.view(-1)[40 + 1].item() == 0 and a.view(-1)[40 + 5].item() == 2  # 0.5 -> 0, 2.5 -> 2
    assert torch.equal(luts.to_u8(y.clone() * 4, 0.25, use_cv2=True), b)


@pytest.mark.parametrize("hw", [(33, 17), (70, 90)])  # int64 sums, OpenCV's sums
def test_channel_means_are_exact(hw):
    x = images(3, 3, *hw, seed=4)
    exact = x.double().sum((2, 3)) / (hw[0] * hw[1])
    assert torch.equal(luts.channel_means(x), exact.float())


def blur_reference(x, q, r):
    """float64 separable sum with reflect-101 borders, then half to even."""
    xd = x.double()
    b, c, h, w = x.shape
    for dim, n in ((3, w), (2, h)):
        idx = torch.arange(n)[:, None] + torch.arange(-r, r + 1)[None, :]
        idx = idx.abs()
        idx = torch.where(idx > n - 1, 2 * (n - 1) - idx, idx)
        g = xd.index_select(dim, idx.reshape(-1))
        g = g.unflatten(dim, (n, 2 * r + 1))
        wt = q.double().view(b, 1, 1, 1, 2 * r + 1) if dim == 3 else q.double().view(b, 1, 1, 2 * r + 1, 1)
        xd = (g * wt).sum(dim + 1)
    return torch.round(xd / float(1 << (2 * BLUR_BITS)))


@pytest.mark.parametrize("hw", [(20, 24), (70, 90)])
def test_blur_gives_the_same_bytes_every_way_and_is_the_float64_sum(hw):
    op = GaussianBlur(GaussianBlur.Params(sigma=(0.3, 2.5)), stream=0)
    x = images(4, 3, *hw, seed=5)
    sigma = torch.tensor([0.3, 0.9, 1.7, 2.5])
    q, r = op.int_weights(sigma, *hw)
    assert torch.equal(q.sum(1), torch.full((4,), float(1 << BLUR_BITS)))
    ways = [_blur_u8(x, q, r, how) for how in ("cv2", "band", "shifted")]
    assert torch.equal(ways[0], ways[1]) and torch.equal(ways[0], ways[2])
    assert torch.equal(ways[0].double(), blur_reference(x, q, r))
    # the integer taps against the real Gaussian: within two grey levels
    wts, _ = op._weights(sigma, *hw)
    ideal = blur_reference(x, wts * (1 << BLUR_BITS), r)
    assert (ways[0].double() - ideal).abs().max() <= 2


def test_noise_on_uint8_is_rounded_noise_added_in_integers():
    pipe = build_pipeline([{"name": "gaussian_noise", "p": 1.0, "std": [0.02, 0.08]}])
    x = images(6, 3, 20, 20, seed=6)
    keys = keys_tensor([sample_key(0, f"n{i}") for i in range(6)])
    drawn = pipe.sample(keys, 20, 20)
    out = pipe.apply(x, drawn)
    op = pipe.ops[0]
    from pipeline.augment import rng

    noise = rng.noise_field(drawn[0]["_keys"], op.stream + 2, 3 * 20 * 20).view(x.shape)
    step = (noise * (drawn[0]["std"] * 255.0).view(6, 1, 1, 1)).round()
    assert torch.equal(out, (step + x.float()).round().clamp(0, 255).to(torch.uint8))


def test_exact_math_is_close_to_torch():
    a = torch.linspace(-3.2, 3.2, 2001)
    s, c = exactmath.sin_cos(a)
    assert (s - torch.sin(a)).abs().max() < 1e-6 and (c - torch.cos(a)).abs().max() < 1e-6
    z = torch.linspace(-30, 3, 2001)
    assert ((exactmath.exp(z) - torch.exp(z)).abs() / torch.exp(z)).max() < 1e-6


def test_uint8_stays_uint8_through_every_exact_op():
    """No float round trip: a pipeline of exact ops never leaves uint8 (spied on the
    engine's one conversion point)."""
    from pipeline.augment import pipeline as engine

    calls = []
    original = engine._Run.need_float

    def spy(self):
        calls.append(self.x.dtype)
        return original(self)

    engine._Run.need_float = spy
    try:
        pipe = build_pipeline(EXACT)
        x = images(16, 3, 40, 36, seed=8)
        keys = keys_tensor([sample_key(0, f"u{i}") for i in range(16)])
        out = pipe.apply(x, pipe.sample(keys, 40, 36))
    finally:
        engine._Run.need_float = original
    assert out.dtype == torch.uint8
    assert calls == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("hw", [(40, 36), (96, 80)])
def test_every_exact_op_gives_the_same_bytes_on_cuda(hw):
    pipe = build_pipeline(EXACT)
    x = images(24, 3, *hw, seed=9)
    ids = [f"c{i}" for i in range(24)]
    cpu = pipe.apply(x, pipe.sample(keys_tensor([sample_key(0, i) for i in ids]), *hw))
    kc = keys_tensor([sample_key(0, i) for i in ids], "cuda")
    gpu = pipe.apply(x.cuda(), pipe.sample(kc, *hw))
    assert torch.equal(cpu, gpu.cpu())


@pytest.mark.parametrize("name", ["gaussian_blur", "gaussian_noise"])
def test_uint8_in_place_rows_are_the_out_of_place_bytes(name):
    pipe = build_pipeline([{"name": name, "p": 1.0}])
    x = images(5, 3, 70, 66, seed=10)
    keys = keys_tensor([sample_key(0, f"r{i}") for i in range(5)])
    drawn = pipe.sample(keys, 70, 66)[0]
    op = pipe.ops[0]
    idx = torch.tensor([0, 3, 4])
    sub = {k: v[idx] for k, v in drawn.items()}
    y = x.clone()
    op.apply_inplace(y, idx, sub, 255.0)
    expect = x.clone()
    expect[idx] = op.apply_image(x[idx], sub, 255.0)
    assert torch.equal(y, expect)
