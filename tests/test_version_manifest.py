"""Manifest op parameters survive JSON exactly; objects move through the engine's Targets path."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.augment.registry import build_pipeline
from pipeline.augment.rng import keys_tensor
from pipeline.record import Object, Sample
from pipeline.core.seeding import sample_key
from pipeline.version.manifest import drawn_from_rows, exact_params
from pipeline.version.resize import fit
from pipeline.version.objects import DROP_RESIZE, row_objects, sample_targets

PIPE = build_pipeline([{"name": "rotate", "p": 0.7, "degrees": 45}, {"name": "hflip", "p": 0.5},
                       {"name": "vflip", "p": 0.5}, {"name": "crop", "p": 0.7, "padding": 9}])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), ids=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6))
def test_params_round_trip_through_json_bit_for_bit(seed, ids):
    keys = keys_tensor([sample_key(seed, i, 1) for i in ids])
    drawn = PIPE.sample(keys, 20, 30)
    rows = [json.loads(json.dumps(exact_params(PIPE.ops, drawn, j))) for j in range(len(ids))]
    back = drawn_from_rows(PIPE.ops, rows)
    for a, b in zip(drawn, back):
        assert a.keys() == b.keys()
        assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _through(pipe, obj, src_hw, h, w, seed=0):
    """One sample's objects through the version's real path: resize, then the pipeline."""
    s = Sample(id="s", image="s.png", width=src_hw[1], height=src_hw[0], channels=3, objects=(obj,))
    resized = sample_targets([s], [fit(src_hw, h, w)], h, w, ["a"])
    if not pipe.ops:
        return row_objects(resized, 0, s, ["a"], resized)
    drawn = pipe.sample(keys_tensor([sample_key(seed, "s", 1)]), h, w)
    _, moved = pipe.transform(torch.zeros((1, 3, h, w), dtype=torch.uint8), resized, drawn)
    return row_objects(moved, 0, s, ["a"], resized)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), x=st.floats(2, 20), y=st.floats(2, 10), bw=st.floats(1, 8), bh=st.floats(1, 8))
def test_moved_box_bounds_the_moved_polygon_and_identity_keeps_it(seed, x, y, bw, bh):
    h, w = 20, 30
    poly = (x, y, x + bw, y, x + bw, y + bh, x, y + bh)
    obj = Object("a", (x, y, x + bw, y + bh), (poly,))
    (same,), () = _through(build_pipeline([]), obj, (h, w), h, w)
    # float32 maths rounded to 3 decimals: allow one unit in the last place.
    assert list(same.box) == pytest.approx([x, y, min(x + bw, w), min(y + bh, h)], abs=1.5e-3)
    kept, dropped = _through(PIPE, obj, (h, w), h, w, seed)
    assert len(kept) + len(dropped) == 1  # kept or listed as dropped, never lost
    for moved in kept:
        x1, y1, x2, y2 = moved.box
        xs, ys = moved.polygons[0][0::2], moved.polygons[0][1::2]
        assert x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h
        # polygons are clipped to the canvas, and the box is their tight bound
        assert min(xs) == pytest.approx(x1, abs=2e-3) and max(xs) == pytest.approx(x2, abs=2e-3)
        assert min(ys) == pytest.approx(y1, abs=2e-3) and max(ys) == pytest.approx(y2, abs=2e-3)


def test_resize_scales_to_output_pixels_and_zero_area_is_listed():
    (o,), () = _through(build_pipeline([]), Object("a", (0.0, 0.0, 10.0, 5.0)), (10, 20), 20, 40)
    assert o.box == (0, 0, 20, 10)
    (), (d,) = _through(build_pipeline([]), Object("a", (3.0, 3.0, 3.0, 5.0)), (10, 20), 20, 40)
    assert d.label == "a" and d.reason == DROP_RESIZE


def test_an_object_cutout_hides_is_listed_as_occluded_with_its_covered_fraction():
    """The row's ``dropped`` carries the engine's reason, not a vague one."""
    cut = build_pipeline([{"name": "cutout", "p": 1.0, "holes": [1, 1], "size": [1.0, 1.0]}])
    (), (d,) = _through(cut, Object("a", (2.0, 2.0, 12.0, 8.0)), (20, 30), 20, 30)
    assert d.to_dict() == {"label": "a", "source_box": [2.0, 2.0, 12.0, 8.0],
                           "reason": "occluded: 1.00 of its box covered by cutout"}
    rot = build_pipeline([{"name": "affine", "p": 1.0, "translate": [0.9, 0.9], "scale": [1.0, 1.0]}],
                         min_visibility=0.9)
    gone = [_through(rot, Object("a", (20.0, 10.0, 29.0, 19.0)), (20, 30), 20, 30, seed)[1] for seed in range(8)]
    reasons = {d.reason.split(":")[0] for ds in gone for d in ds}
    assert reasons and reasons <= {"outside", "min_visibility", "min_area"}
