"""Augmentation ops: the table covers every registered op (meta-test), and each op
keeps inputs unmodified, keeps dtype, is deterministic per sample key and gives the
same result batched as one by one."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.augment import matrices, resample
from pipeline.augment.base import Op
from pipeline.augment.registry import REGISTRY, build_pipeline, dump_pipeline
from pipeline.augment.rng import keys_tensor, uniform
from pipeline.core.seeding import sample_key

# Every registered op with a configuration that exercises it. The meta-test below
# fails when an op is registered without a row here.
OP_TABLE = {
    "hflip": {"name": "hflip", "p": 0.5},
    "vflip": {"name": "vflip", "p": 0.5},
    "rot90": {"name": "rot90", "p": 0.75},
    "rotate": {"name": "rotate", "p": 0.7, "degrees": 30},
    "crop": {"name": "crop", "p": 0.7, "padding": 3},
    "random_resized_crop": {"name": "random_resized_crop", "p": 0.7, "size": [8, 9], "scale": [0.2, 1.0]},
    "affine": {"name": "affine", "p": 0.7, "scale": [0.8, 1.2], "translate": [0.1, 0.2], "shear": [-10, 10]},
    "color_jitter": {"name": "color_jitter", "p": 0.7, "hue": [-0.1, 0.1]},
    "grayscale": {"name": "grayscale", "p": 0.5},
    "gaussian_blur": {"name": "gaussian_blur", "p": 0.7, "sigma": [0.3, 1.5]},
    "gaussian_noise": {"name": "gaussian_noise", "p": 0.7, "std": [0.02, 0.1]},
    "cutout": {"name": "cutout", "p": 0.7, "holes": [1, 3], "size": [0.1, 0.4], "fill": 0.5},
    "mixup": {"name": "mixup", "p": 0.7, "alpha": 0.4},
    "cutmix": {"name": "cutmix", "p": 0.7, "alpha": 1.0},
    "mosaic": {"name": "mosaic", "p": 0.7, "size": [16, 14]},
}


def test_every_registered_op_is_in_the_table():
    assert set(REGISTRY) == set(OP_TABLE)


def batch(b=7, c=3, h=12, w=10):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8)


def keys(n, seed=0, copy=1):
    return keys_tensor([sample_key(seed, f"s{i}", copy) for i in range(n)])


def partner_batches(pipe, n, b=7):
    """Partner samples passed in as data, as a dataset loader would."""
    return [(batch(b=b, c=3, h=12, w=10).roll(j + 1, 0), None) for j in range(n)]


@pytest.mark.parametrize("name", sorted(OP_TABLE))
def test_op_contract(name):
    pipe = build_pipeline([OP_TABLE[name]])
    x = batch()
    x0 = x.clone()
    k = keys(len(x))
    parts = partner_batches(pipe, pipe.partner_slots()) if pipe.partner_slots() else None
    out = pipe.apply(x, pipe.sample(k, 12, 10), parts)
    assert torch.equal(x, x0), "input modified"
    oh, ow = pipe.ops[0].out_hw(12, 10)
    assert out.dtype == torch.uint8 and out.shape == (7, 3, oh, ow)
    again = pipe.apply(x, pipe.sample(k, 12, 10), parts)
    assert torch.equal(out, again), "not deterministic for the same keys"
    for i in range(len(x)):  # batched == one by one
        one_parts = [(p[i:i + 1], None) for p, _ in parts] if parts else None
        one = pipe.apply(x[i:i + 1], pipe.sample(k[i:i + 1], 12, 10), one_parts)
        assert torch.equal(one[0], out[i])
    fl = pipe.apply(x.float(), pipe.sample(k, 12, 10), parts)
    assert fl.dtype == torch.float32
    assert not torch.equal(out, x[:, :, :oh, :ow]) or name == "grayscale", "op changed nothing"


@pytest.mark.parametrize("name", sorted(OP_TABLE))
def test_an_op_declares_what_it_implements(name):
    """The pipeline reads ``in_place``/``exact`` instead of probing for methods, so a
    declaration without its method (or a method left undeclared, never run) fails here."""
    cls = REGISTRY[name]
    assert cls.in_place == (cls.apply_inplace is not Op.apply_inplace)
    assert (cls.kind == "pixel") == (cls.apply_image is not Op.apply_image)
    assert cls.apply_targets is Op.apply_targets or cls.kind == "pixel"  # only pixel ops' are called
    assert not cls.in_place or cls.kind == "pixel"
    assert not cls.exact or cls.kind in ("pixel", "mixing")


@pytest.mark.parametrize("name", sorted(OP_TABLE))
def test_op_varies_per_sample(name):
    """With p=0.5, between 30% and 70% of a 256-batch is changed."""
    spec = dict(OP_TABLE[name], p=0.5)
    pipe = build_pipeline([spec])
    drawn = pipe.sample(keys(256), 32, 32)
    frac = drawn[0]["applied"].float().mean().item()
    assert 0.3 < frac < 0.7


@pytest.mark.parametrize("name", sorted(OP_TABLE))
def test_dump_build_round_trip(name):
    pipe = build_pipeline([OP_TABLE[name]])
    assert build_pipeline(dump_pipeline(pipe)) == pipe


def test_uniform_draws_do_not_depend_on_batch_composition():
    k = keys(64)
    full = uniform(k, 5, 3)
    assert torch.equal(full[10:17], uniform(k[10:17], 5, 3))
    assert torch.equal(full[[5, 2]], uniform(k[[5, 2]], 5, 3))
    assert not torch.equal(uniform(k, 5, 3), uniform(k, 6, 3))
    assert full.min() >= 0 and full.max() < 1


def test_hflip_twice_is_identity_and_matches_torch_flip():
    x = batch()
    pipe = build_pipeline([{"name": "hflip", "p": 1.0}])
    k = keys(len(x))
    once = pipe.apply(x, pipe.sample(k, 12, 10))
    assert torch.equal(once, x.flip(-1))
    assert torch.equal(pipe.apply(once, pipe.sample(k, 12, 10)), x)


def test_rot90_turns_square_images_exactly_and_boxes_follow_the_pixels():
    """Each drawn quarter turn equals torch.rot90 on the pixels (counter-clockwise on screen),
    a bright pixel's box goes where the pixel went, and every turn count is drawn."""
    from pipeline.augment.targets import Targets

    b, n = 24, 9
    x = torch.zeros(b, 1, n, n, dtype=torch.uint8)
    x[:, 0, 1, 6] = 255  # the pixel at row 1, column 6: box (6, 1, 7, 2)
    t = Targets.from_lists([[[6.0, 1.0, 7.0, 2.0]]] * b, [[0]] * b)
    pipe = build_pipeline([{"name": "rot90", "p": 1.0}])
    drawn = pipe.sample(keys(b), n, n)
    out, moved = pipe.transform(x, t, drawn)
    turns = drawn[0]["turns"].long().tolist()
    assert set(turns) == {1, 2, 3}
    for i, k in enumerate(turns):
        ref = torch.rot90(x[i].float(), k, dims=(1, 2))
        assert torch.equal(out[i].float().round(), ref), k
        row, col = divmod(int(ref.flatten().argmax()), n)
        assert moved.boxes[i].tolist() == [col, row, col + 1, row + 1], k
    back = matrices.quarter_turns_about(torch.tensor([1.0, 2.0, 3.0]), 4.5, 4.5)
    assert torch.equal(back @ back @ back @ back, torch.eye(3).expand(3, 3, 3))


def test_crop_is_an_exact_integer_shift():
    x = batch(b=1)
    pipe = build_pipeline([{"name": "crop", "p": 1.0, "padding": 3}])
    drawn = pipe.sample(keys(1), 12, 10)
    dx, dy = int(drawn[0]["dx"][0]), int(drawn[0]["dy"][0])
    out = pipe.apply(x, drawn)
    ref = torch.zeros_like(x)
    src = x[..., max(0, -dy):12 - max(0, dy), max(0, -dx):10 - max(0, dx)]
    ref[..., max(0, dy):max(0, dy) + src.shape[-2], max(0, dx):max(0, dx) + src.shape[-1]] = src
    assert torch.equal(out, ref)


def reference_rotate(x, y, deg, cx, cy):
    """Independent reference: rotate a point about (cx, cy), y axis pointing down."""
    a = math.radians(deg)
    dx, dy = x - cx, y - cy
    return cx + dx * math.cos(a) + dy * math.sin(a), cy - dx * math.sin(a) + dy * math.cos(a)


@settings(max_examples=50, deadline=None)
@given(st.floats(-180, 180), st.floats(0, 50), st.floats(0, 50))
def test_rotation_matrix_matches_reference(deg, x, y):
    m = matrices.rotation_about(torch.tensor([deg]), 20.0, 15.0)
    got = matrices.transform_points(m, torch.tensor([[[x, y]]]))[0, 0]
    ex, ey = reference_rotate(x, y, deg, 20.0, 15.0)
    assert abs(float(got[0]) - ex) < 1e-3 and abs(float(got[1]) - ey) < 1e-3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 40), st.floats(0, 40)), min_size=3, max_size=8), st.floats(-90, 90))
def test_rotate_then_inverse_is_identity_on_polygons(pts, deg):
    p = torch.tensor([pts], dtype=torch.float32)
    fwd = matrices.rotation_about(torch.tensor([deg]), 20.0, 20.0)
    back = matrices.rotation_about(torch.tensor([-deg]), 20.0, 20.0)
    out = matrices.transform_points(back @ fwd, p)
    assert torch.allclose(out, p, atol=1e-3)


def test_rotate_moves_a_bright_pixel_where_the_matrix_says():
    x = torch.zeros(1, 1, 41, 41)
    x[0, 0, 10, 30] = 255.0  # pixel centre (30.5, 10.5)
    m = matrices.rotation_about(torch.tensor([90.0]), 20.5, 20.5)
    out = resample.warp(x, m, mode="nearest")
    cx, cy = matrices.transform_points(m, torch.tensor([[[30.5, 10.5]]]))[0, 0]
    yy, xx = divmod(int(out.flatten().argmax()), 41)
    assert (xx, yy) == (int(cx), int(cy))


@pytest.mark.parametrize("entry,needle", [
    ({"name": "color_jitter", "brightness": [1.2, 0.8]}, "color_jitter"),
    ({"name": "gaussian_blur", "sigma": [0.5, 1.0], "kernel_size": 4}, "kernel_size"),
    ({"name": "cutout", "holez": 2}, "holez"),
    ({"name": "mosaic", "p": 1.5}, "p"),
    ({"name": "no_such_op"}, "no_such_op"),
])
def test_bad_entries_fail_up_front_naming_op_and_key(entry, needle):
    from pipeline.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"augment.pipeline\[0\]") as err:
        build_pipeline([entry])
    assert needle in str(err.value)


def test_old_schema_dumps_still_build():
    pipe = build_pipeline({"schema_version": 1, "ops": [OP_TABLE["rotate"]]})
    assert pipe == build_pipeline([OP_TABLE["rotate"]])


def test_color_jitter_accepts_torchvision_scalar_shorthand():
    from pipeline.core.errors import ConfigError

    pipe = build_pipeline([{"name": "color_jitter", "brightness": 0.3, "saturation": 1.5, "hue": 0.1}])
    p = pipe.ops[0].params
    assert p.brightness == (0.7, 1.3) and p.saturation == (0.0, 2.5) and p.hue == (-0.1, 0.1)
    assert build_pipeline(dump_pipeline(pipe)) == pipe
    with pytest.raises(ConfigError, match="brightness.*>= 0"):
        build_pipeline([{"name": "color_jitter", "brightness": -1}])
