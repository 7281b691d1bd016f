"""Every registered op at native photo resolution: one 4000x3000 RGB uint8 image
with boxes and polygons goes through each op (p = 1, partners passed in as data) and
comes out with its targets inside the canvas."""

import pytest
import torch

from pipeline.augment.registry import REGISTRY, build_pipeline
from pipeline.augment.rng import keys_tensor, noise_field, noise_offsets, noise_windows
from pipeline.augment.targets import Targets
from pipeline.core.seeding import sample_key

H, W = 3000, 4000
# Sizes stay null: each op works at the image's own size.
LARGE = {
    "hflip": {}, "vflip": {}, "rot90": {}, "grayscale": {}, "rotate": {"degrees": 30},
    "crop": {"padding": 200}, "random_resized_crop": {"scale": [0.3, 1.0]},
    "affine": {"scale": [0.8, 1.2], "translate": [0.1, 0.1], "shear": [-10, 10], "rotate": [-20, 20]},
    "color_jitter": {}, "gaussian_blur": {"sigma": [1.0, 2.0]}, "gaussian_noise": {"std": [0.02, 0.05]},
    "cutout": {"holes": [2, 4], "size": [0.1, 0.3]}, "mixup": {}, "cutmix": {}, "mosaic": {},
}


def test_every_registered_op_is_in_the_large_table():
    assert set(LARGE) == set(REGISTRY)


@pytest.fixture(scope="module")
def photo():
    img = torch.empty((1, 3, H, W), dtype=torch.uint8)
    img[0, 0] = (torch.arange(W) * 255 // W).to(torch.uint8)[None, :]
    img[0, 1] = (torch.arange(H) * 255 // H).to(torch.uint8)[:, None]
    img[0, 2] = 128
    boxes = [[[100.0, 200.0, 900.0, 1000.0], [3000.0, 2000.0, 3990.0, 2990.0], [1800.0, 1200.0, 2300.0, 1700.0]]]
    polygons = [[[], [[3000.0, 2000.0, 3990.0, 2500.0, 3400.0, 2990.0]],
                 [[1800.0, 1200.0, 2300.0, 1200.0, 2300.0, 1700.0, 1800.0, 1700.0]]]]
    return img, boxes, polygons


@pytest.mark.parametrize("name", sorted(LARGE))
def test_every_op_runs_at_4000x3000_and_keeps_targets_inside(name, photo):
    img, boxes, polygons = photo
    pipe = build_pipeline([{"name": name, "p": 1.0, **LARGE[name]}])
    t = Targets.from_lists(boxes, [[0, 1, 2]], polygons)
    keys = keys_tensor([sample_key(0, "photo.jpg", 1)])
    parts = [(img, Targets.from_lists(boxes, [[0, 1, 2]], polygons, origin=j + 1))
             for j in range(pipe.partner_slots())] or None
    out, moved = pipe.transform(img, t, pipe.sample(keys, H, W), parts)
    oh, ow = pipe.out_hw(H, W)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, oh, ow)
    assert len(moved.boxes) > 0
    b = moved.boxes
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= ow).all() and (b[:, 3] <= oh).all()
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    p = moved.points
    assert (p >= 0).all() and (p[:, 0] <= ow).all() and (p[:, 1] <= oh).all()


def test_large_noise_fields_are_keyed_windows_of_the_bank():
    """Above half the bank a field is drawn in windows, each at its own keyed offset and
    sign; a field's first window is drawn as it always was, and the windowed field
    equals what adding the windows one by one gives."""
    keys = keys_tensor([sample_key(0, f"s{i}", 1) for i in range(3)])
    n = H * W * 3
    k, length = noise_windows(n)
    assert k * length >= n and (k - 1) * length < n
    off, sign = noise_offsets(keys, 7, n)
    assert off.shape == sign.shape == (3, k)
    small_off, small_sign = noise_offsets(keys, 7, 1000)
    assert small_off.shape == (3, 1) and torch.equal(small_sign[:, 0], sign[:, 0])
    field = noise_field(keys[1:2], 7, n)
    assert field.shape == (1, n)
    assert torch.equal(field[0], noise_field(keys, 7, n)[1])  # per sample, whatever the batch
    assert abs(float(field.std()) - 1) < 0.01 and abs(float(field.mean())) < 0.01
    # windows differ from each other (offsets and signs are drawn per window)
    assert not torch.equal(field[0, :length], field[0, length:2 * length])
