"""A dataset version's bytes are a function of its inputs, never of how it was computed.

Property: for random pipelines drawn from every registered op (random p and ranges,
mixing ops included), on classification and on box data, in RGB and grey, at odd output sizes and at native resolution, every
file of the version has the same sha256 for batch sizes 1, 3, 64 and 256 (the last
also cut by a pixel budget) and decode workers 0, 1 and 2. ``same_on_batch`` is left at False: one draw for the whole batch
depends on the batch by definition.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.augment.registry import REGISTRY
from pipeline.config import AugmentParams
from pipeline.datasets import load_dataset
from pipeline.record import Sample, Source, save_dataset
from pipeline.version import write_version
from tests.version_data import digests, make_annotated

SIZES = [(33, 47), (96, 96), (13, 200), None]  # None: each row at its source's size (mixed sizes)
BATCH_SIZES = (1, 3, 64, 256)
# 8 train images x 5 copies: a batch of 64 or 256 holds 40 augmented rows, more than
# the 32 values torch's CPU kernels process per vector step, so per-sample parameter
# maths runs on both the vectorised and the scalar path (pow once differed there).
COPIES = 5


def _range(lo: float, hi: float):
    """A valid (low, high) pair within [lo, hi]."""
    return st.tuples(st.floats(lo, hi), st.floats(lo, hi)).map(sorted).map(tuple)


# Each registered op's parameters, drawn within their valid ranges (sizes stay null:
# a version keeps one image size).
OP_PARAMS = {
    "hflip": {},
    "vflip": {},
    "rot90": {},
    "grayscale": {},
    "rotate": {"degrees": st.floats(1.0, 180.0)},
    "crop": {"padding": st.integers(1, 9)},
    "random_resized_crop": {"scale": _range(0.05, 1.0), "ratio": _range(0.5, 2.0)},
    "affine": {"scale": _range(0.5, 1.5), "translate": st.tuples(st.floats(0, 0.3), st.floats(0, 0.3)),
               "shear": _range(-30.0, 30.0), "rotate": _range(-45.0, 45.0)},
    "color_jitter": {"brightness": _range(0.3, 1.7), "contrast": _range(0.3, 1.7),
                     "saturation": _range(0.0, 2.0), "hue": _range(-0.5, 0.5)},
    "gaussian_blur": {"sigma": _range(0.1, 3.0)},
    "gaussian_noise": {"std": _range(0.0, 0.2)},
    "cutout": {"holes": st.tuples(st.integers(0, 2), st.integers(2, 4)), "size": _range(0.05, 0.6),
               "fill": st.floats(0.0, 1.0), "max_cover": st.floats(0.0, 1.0)},
    "mixup": {"alpha": st.floats(0.1, 4.0)},
    "cutmix": {"alpha": st.floats(0.1, 4.0)},
    "mosaic": {"centre": _range(0.1, 0.9)},
}
MIXING = {name for name, op in REGISTRY.items() if op.kind == "mixing"}


def test_every_registered_op_has_a_parameter_strategy():
    assert set(OP_PARAMS) == set(REGISTRY)


def op_spec(name: str):
    probability = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))
    return st.fixed_dictionaries({"name": st.just(name), "p": probability, **OP_PARAMS[name]})


@st.composite
def pipelines(draw, classification: bool):
    """Every op but the mixing ones, in a random order, plus mixing ops (one that a
    classification version can store); hypothesis shrinks failures to fewer ops."""
    plain = sorted(set(REGISTRY) - MIXING)
    names = draw(st.lists(st.sampled_from(plain), unique=True, min_size=1, max_size=len(plain)))
    mixing = sorted(MIXING - {"mosaic"}) if classification else sorted(MIXING)
    mix = draw(st.lists(st.sampled_from(mixing), unique=True, max_size=1 if classification else 2))
    names = draw(st.permutations(names + mix))
    return [draw(op_spec(n)) for n in names]


def make_photos(root: Path, n: int = 10) -> Path:
    """A classification dataset of RGB 'photos' of different sizes: smooth gradients,
    blobs and texture, so resizing and every colour op meet non-trivial values."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        g = np.random.default_rng(40 + i)
        h, w = int(g.integers(24, 90)), int(g.integers(24, 90))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = np.stack([128 + 90 * np.sin(g.uniform(0.02, 0.2) * xx + g.uniform(0.02, 0.2) * yy + c)
                      for c in range(3)], -1)
        a += g.normal(0, 12, (h, w, 3))
        name = f"photo{i:02d}.png"
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(root / "images" / name)
        samples.append(Sample(id=f"{'cat' if i % 2 else 'dog'}/{name}", image=f"images/{name}", width=w,
                              height=h, channels=3, label="cat" if i % 2 else "dog",
                              source=Source("imagefolder", name, root="src")))
    save_dataset(root, samples, ["cat", "dog"], [])
    return root


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    out = {}
    for kind, ds in (("classification", load_dataset(make_photos(tmp_path_factory.mktemp("photos")))),
                     ("boxes", load_dataset(make_annotated(tmp_path_factory.mktemp("boxes"), n=10)))):
        ids = [s.id for s in ds.samples]
        # Most images in train (the augmented split), one each in val and test.
        out[kind] = (ds, {sid: "val" if i == 0 else "test" if i == 1 else "train" for i, sid in enumerate(ids)})
    return out


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_file_is_identical_for_any_batch_size_and_workers(datasets, data):
    kind = data.draw(st.sampled_from(["classification", "boxes"]), label="kind")
    spec = data.draw(pipelines(kind == "classification"), label="pipeline")
    size = data.draw(st.sampled_from(SIZES), label="size")
    h, w = size or (60, 60)
    # Each batch size once, each worker count at least once (the pairing drawn).
    workers = data.draw(st.permutations([0, 1, 2]), label="workers") + [data.draw(st.integers(0, 2))]
    ds, assignment = datasets[kind]
    channels = data.draw(st.sampled_from([None, 1]), label="channels")  # as stored (RGB), or grey
    base = dict(copies=COPIES, pipeline=spec, image_size=size, channels=channels, backend="torch",
                min_visibility=data.draw(st.sampled_from([0.0, 0.3]), label="min_visibility"))
    with tempfile.TemporaryDirectory() as tmp:
        got = {}
        for bs, wk in zip(BATCH_SIZES, workers):
            out = Path(tmp) / f"b{bs}"
            # The largest batch is also cut by a pixel budget: 7 images' worth.
            budget = 7 * h * w if bs == BATCH_SIZES[-1] else 1 << 25
            write_version(ds, assignment, AugmentParams(**base, batch_size=bs, batch_pixels=budget, workers=wk), out)
            got[bs] = digests(out)
        ref = got[BATCH_SIZES[0]]
        for bs in BATCH_SIZES[1:]:
            assert got[bs] == ref, (bs, sorted(k for k in ref if got[bs].get(k) != ref[k]))
