"""Deterministic by construction: a sample's output depends on its key only (batch
size, order, device), parameters vary per sample, and the backends agree where the
ops are deterministic."""

import pytest
import torch

from pipeline.augment.registry import build_pipeline, dump_pipeline
from pipeline.augment.rng import keys_tensor
from pipeline.augment.targets import Targets
from pipeline.backends import backend_of, resolve
from pipeline.core.seeding import sample_key

FULL = [
    {"name": "random_resized_crop", "p": 0.5, "scale": [0.5, 1.0]},
    {"name": "hflip", "p": 0.5},
    {"name": "affine", "p": 0.5, "rotate": [-20, 20]},
    {"name": "crop", "p": 0.5, "padding": 2},
    {"name": "color_jitter", "p": 0.8},
    {"name": "grayscale", "p": 0.2},
    {"name": "gaussian_blur", "p": 0.5, "sigma": [0.5, 1.2]},
    {"name": "gaussian_noise", "p": 0.5},
    {"name": "cutout", "p": 0.5, "holes": [1, 2], "max_cover": 0.8},
    {"name": "mixup", "p": 0.3},
    {"name": "cutmix", "p": 0.3},
]


def data(n, h=20, w=24):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 3, h, w), generator=g, dtype=torch.uint8)
    boxes = [[[i % 7, 2, 10 + i % 9, 15], [12, 3, 22, 18]] for i in range(n)]
    polys = [[[[i % 7, 2, 10 + i % 9, 2, 5, 15]], []] for i in range(n)]
    t = Targets.from_lists(boxes, [[i % 3, 5] for i in range(n)], polys,
                           keypoints=[[(3.5, 4.5)] for _ in range(n)], classes=[i % 4 for i in range(n)])
    return x, t


def run(pipe, x, t, ids, parts):
    """Through the pipeline's own backend, as a version's render path runs it."""
    k = keys_tensor([sample_key(7, f"img{i}", 2) for i in ids])
    return backend_of(pipe).run(pipe, x, t, k, pipe.sample(k, x.shape[2], x.shape[3]), parts)


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_sample_output_is_independent_of_batch_size_and_order(order):
    pipe = build_pipeline(FULL, min_visibility=0.1)
    n = 64
    x, t = data(n)
    px, pt = data(n)
    px = px.flip(0)
    pt = pt.select(torch.arange(n - 1, -1, -1))
    ids = list(range(n))
    full_x, full_t = run(pipe, x, t, ids, [(px, pt), (px.roll(1, 0), pt)])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(5)) if order == "shuffled" else torch.arange(n)
    for size in (1, 7, 64):
        for start in range(0, n, max(size, 16)):
            idx = perm[start:start + size]
            sub_parts = [(px[idx], pt.select(idx)), (px.roll(1, 0)[idx], pt.select(idx))]
            ox, ot = run(pipe, x[idx], t.select(idx), idx.tolist(), sub_parts)
            assert torch.equal(ox, full_x[idx]), (size, start)
            for j, i in enumerate(idx.tolist()):
                assert ot.sample_objects(j) == full_t.sample_objects(i)
            assert torch.equal(ot.mix_weight, full_t.mix_weight[idx])


def test_changed_fraction_varies_per_sample():
    """A 256 batch with p=0.5 changes between 30% and 70% of images, for every op
    (measured on the pixels, not only the drawn flag)."""
    from tests.test_augment_ops import OP_TABLE

    x = torch.randint(0, 256, (256, 3, 16, 16), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    k = keys_tensor([sample_key(0, f"v{i}") for i in range(256)])
    for name, spec in OP_TABLE.items():
        spec = {key: v for key, v in spec.items() if key != "size"}
        pipe = build_pipeline([dict(spec, p=0.5)])
        parts = [(x.roll(j + 1, 0), None) for j in range(pipe.partner_slots())] or None
        out = pipe.apply(x, pipe.sample(k, 16, 16), parts)
        changed = (out != x).flatten(1).any(1).float().mean().item()
        assert 0.3 < changed < 0.7, (name, changed)


def test_same_on_batch_gives_every_sample_one_draw():
    pipe = build_pipeline([{"name": "rotate", "p": 1.0, "degrees": 40, "same_on_batch": True}])
    d = pipe.sample(keys_tensor([sample_key(0, f"q{i}") for i in range(9)]), 8, 8)
    assert torch.unique(d[0]["angle"]).numel() == 1
    assert build_pipeline(dump_pipeline(pipe)) == pipe


def test_in_batch_partners_are_drawn_from_the_keys():
    pipe = build_pipeline([{"name": "mixup", "p": 1.0}])
    k = keys_tensor([sample_key(0, f"m{i}") for i in range(32)])
    d = pipe.sample(k, 8, 8)
    idx = pipe.partner_indices(d, 1000)
    assert idx.shape == (32, 1) and torch.equal(idx, pipe.partner_indices(pipe.sample(k, 8, 8), 1000))
    assert idx.unique().numel() > 20


DETERMINISTIC = [[{"name": "hflip", "p": 1.0}], [{"name": "vflip", "p": 1.0}],
                 [{"name": "hflip", "p": 1.0}, {"name": "vflip", "p": 1.0}], [{"name": "grayscale", "p": 1.0}]]


@pytest.mark.parametrize("spec", DETERMINISTIC, ids=lambda s: "+".join(o["name"] for o in s))
def test_torch_and_albumentations_backends_agree_on_deterministic_ops(spec):
    x, t = data(5)
    t = Targets.from_lists([[[1, 2, 9, 11]]] * 5, [[1]] * 5)
    out = {}
    for backend in ("torch", "albumentations"):
        pipe = build_pipeline(spec, backend=backend)
        out[backend] = run(pipe, x, t, range(5), None)
    tol = 1 if spec[0]["name"] == "grayscale" else 0  # OpenCV rounds its fixed-point luma
    assert (out["torch"][0].int() - out["albumentations"][0].int()).abs().max() <= tol
    assert torch.allclose(out["torch"][1].boxes, out["albumentations"][1].boxes)


def test_albumentations_transform_by_name_with_boxes():
    pipe = build_pipeline([{"name": "albumentations.CLAHE", "p": 1.0, "clip_limit": 2.0},
                           {"name": "albumentations.HorizontalFlip", "p": 1.0}, {"name": "vflip", "p": 1.0}])
    x, _ = data(3)
    t = Targets.from_lists([[[1, 2, 9, 11]]] * 3, [[1]] * 3)
    out, tt = run(pipe, x, t, range(3), None)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert tt.boxes.tolist() == [[15.0, 9.0, 23.0, 18.0]] * 3  # both flips moved the box
    again, _ = run(pipe, x, t, range(3), None)
    assert torch.equal(out, again)


def test_albumentations_names_and_kwargs_are_validated():
    from pipeline.core.errors import ConfigError

    with pytest.raises(ConfigError, match="NoSuchThing"):
        build_pipeline([{"name": "albumentations.NoSuchThing"}])
    with pytest.raises(ConfigError, match="mosaic"):
        build_pipeline([{"name": "mosaic"}], backend="albumentations")


def test_auto_backend_is_recorded_and_correct():
    pipe = build_pipeline([{"name": "hflip"}], backend="auto")
    assert resolve(pipe, torch.device("cpu"), 32, 32) == "torch"
    assert resolve(pipe, torch.device("cuda"), 224, 224) == "torch"
    mixing = build_pipeline([{"name": "mixup"}], backend="auto")
    assert resolve(mixing, torch.device("cpu"), 512, 512) == "torch"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_agree():
    pipe = build_pipeline(FULL)
    x, t = data(16)
    k = keys_tensor([sample_key(0, f"g{i}") for i in range(16)])
    cpu = pipe.transform(x, t, pipe.sample(k, 20, 24), None)
    kc = k.cuda()
    from dataclasses import fields, replace

    tc = replace(t, **{f.name: getattr(t, f.name).cuda() for f in fields(t)
                       if isinstance(getattr(t, f.name), torch.Tensor)})
    gpu = pipe.transform(x.cuda(), tc, pipe.sample(kc, 20, 24), None)
    assert gpu[0].device.type == "cuda"
    assert (gpu[0].cpu().int() - cpu[0].int()).abs().float().mean() < 1.0
    assert torch.allclose(gpu[1].boxes.cpu(), cpu[1].boxes, atol=1e-2)


def test_albumentations_backend_moves_polygons_and_keypoints():
    pipe = build_pipeline([{"name": "hflip", "p": 1.0}], backend="albumentations")
    x = torch.zeros(1, 3, 10, 20, dtype=torch.uint8)
    t = Targets.from_lists([[[2, 1, 6, 5]]], [[0]], [[[[2, 1, 6, 1, 4, 5]]]], keypoints=[[(3.0, 4.0)]])
    _, out = run(pipe, x, t, [0], None)
    assert out.points.tolist() == [[18.0, 1.0], [14.0, 1.0], [16.0, 5.0]]
    assert out.keypoints.tolist() == [[17.0, 4.0]] and out.boxes.tolist() == [[14.0, 1.0, 18.0, 5.0]]


def test_offline_dataset_versions_refuse_mosaic_for_classification_and_resizing():
    from pipeline.core.errors import ConfigError

    build_pipeline([{"name": "mixup"}]).check_offline(28, 28, classification=True)
    build_pipeline([{"name": "mixup"}, {"name": "cutmix"}]).check_offline(28, 28)  # boxes: fine
    with pytest.raises(ConfigError, match="2 mixing ops"):  # one label pair per image
        build_pipeline([{"name": "mixup"}, {"name": "cutmix"}]).check_offline(28, 28, classification=True)
    build_pipeline([{"name": "mosaic"}]).check_offline(28, 28)  # box data: objects carry the labels
    with pytest.raises(ConfigError, match="mosaic"):
        build_pipeline([{"name": "mosaic"}]).check_offline(28, 28, classification=True)
    with pytest.raises(ConfigError, match="image size"):
        build_pipeline([{"name": "random_resized_crop", "size": [20, 20]}]).check_offline(28, 28)
    build_pipeline([{"name": "random_resized_crop", "size": [28, 28]}]).check_offline(28, 28)
