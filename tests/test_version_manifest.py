"""Manifest op parameters survive JSON exactly; objects move with the geometry."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.augment.registry import build_pipeline
from pipeline.augment.rng import keys_tensor
from pipeline.record import Object
from pipeline.seeding import sample_key
from pipeline.version.manifest import drawn_from_rows, exact_params
from pipeline.version.targets import geometric_matrices, resize_matrix, transform_objects

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


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), x=st.floats(2, 20), y=st.floats(2, 10), bw=st.floats(1, 8), bh=st.floats(1, 8))
def test_moved_box_bounds_the_moved_polygon_and_identity_keeps_it(seed, x, y, bw, bh):
    h, w = 20, 30
    poly = (x, y, x + bw, y, x + bw, y + bh, x, y + bh)
    obj = Object("a", (x, y, x + bw, y + bh), (poly,))
    same = transform_objects((obj,), torch.eye(3), h, w)[0]
    # float32 maths rounded to 3 decimals: allow one unit in the last place.
    assert same["box"] == pytest.approx([x, y, min(x + bw, w), min(y + bh, h)], abs=1.5e-3)
    drawn = PIPE.sample(keys_tensor([sample_key(seed, "s", 1)]), h, w)
    m = geometric_matrices(PIPE.ops, drawn, 1, h, w)[0]
    moved = transform_objects((obj,), m, h, w)[0]
    if moved["visible"]:
        x1, y1, x2, y2 = moved["box"]
        xs, ys = moved["polygons"][0][0::2], moved["polygons"][0][1::2]
        assert x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h
        assert x1 <= max(min(xs), 0) + 1e-3 and x2 >= min(max(xs), w) - 1e-3
        assert y1 <= max(min(ys), 0) + 1e-3 and y2 >= min(max(ys), h) - 1e-3


def test_resize_matrix_scales_to_output_pixels():
    obj = Object("a", (0.0, 0.0, 10.0, 5.0))
    assert transform_objects((obj,), resize_matrix((10, 20), 20, 40), 20, 40)[0]["box"] == [0, 0, 20, 10]
