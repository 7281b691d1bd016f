"""The masks a segmenter trains on: each object's polygons rasterised in the record's
coordinates (pixel ``i`` spans ``[i, i + 1)``), a pixel in when its centre is inside,
as pycocotools (COCOeval's and the COCO export's consumers') rasterises them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.record import Object
from pipeline.torchdata import object_mask


def centres_inside(parts, h: int, w: int) -> np.ndarray:
    """Reference: matplotlib's point-in-polygon on every pixel centre (x + 0.5, y + 0.5)."""
    from matplotlib.path import Path

    yy, xx = np.mgrid[0:h, 0:w]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    out = np.zeros(h * w, bool)
    for p in parts:
        out ^= Path(np.asarray(p, float).reshape(-1, 2)).contains_points(centres)
    return out.reshape(h, w)


def ring(cx, cy, r, n=48):
    return tuple(v for k in range(n) for v in (cx + r * math.cos(2 * math.pi * k / n),
                                               cy + r * math.sin(2 * math.pi * k / n)))


def square(x0, y0, x1, y1):
    return (x0, y0, x1, y0, x1, y1, x0, y1)


CASES = {
    "one pixel": (square(5, 5, 6, 6),),
    "4x4 on pixel edges": (square(5, 5, 9, 9),),
    "fractional corners": (square(5.2, 5.3, 8.8, 8.6),),
    "triangle": ((2.0, 2.0, 17.0, 3.5, 6.0, 15.0),),
    "circle": (ring(10.0, 9.0, 6.0),),
    "two parts": (square(1, 1, 4, 3), ring(13.0, 12.0, 4.0)),
    "crosses the border": (square(-3.0, 14.5, 6.5, 25.0),),
}


@pytest.mark.parametrize("name", CASES)
def test_a_pixel_is_in_the_mask_when_its_centre_is_in_the_polygon(name):
    parts = CASES[name]
    xs, ys = [v for p in parts for v in p[0::2]], [v for p in parts for v in p[1::2]]
    obj = Object("x", (min(xs), min(ys), max(xs), max(ys)), parts)
    got = object_mask(obj, 20, 24)
    want = centres_inside(parts, 20, 24)
    # A centre exactly on an edge may go either way (matplotlib and pycocotools differ): one pixel's slack.
    assert got.dtype == bool and got.shape == (20, 24)
    assert (got != want).sum() <= max(1, 0.02 * want.sum()), (name, np.argwhere(got != want).tolist())


def test_the_mask_is_where_the_shape_is_not_shifted_and_of_its_area():
    # A disc centred at (10, 9): its pixels' centres average to the centre, its area to pi r^2.
    got = object_mask(Object("x", (4, 3, 16, 15), (ring(10.0, 9.0, 6.0, n=96),)), 20, 24)
    ys, xs = np.nonzero(got)
    assert abs(xs.mean() + 0.5 - 10.0) < 0.05 and abs(ys.mean() + 0.5 - 9.0) < 0.05
    assert abs(got.sum() - math.pi * 36) < 0.05 * math.pi * 36


def test_a_box_only_object_is_its_box():
    got = object_mask(Object("x", (2.0, 3.0, 7.0, 5.0), ()), 10, 10)
    want = np.zeros((10, 10), bool)
    want[3:5, 2:7] = True
    assert np.array_equal(got, want)


def test_the_coin_polygons_rasterise_back_to_the_segmentation():
    """The labelme polygons of tests.photo_polygons, traced from the coins photo's
    classical segmentation, give back its regions (the consumer check of the generator
    and of the rasteriser together)."""
    from tests.photo_polygons import coin_labels, polygons

    labels = coin_labels()
    rings = polygons(labels, min_part=150)
    assert len(rings) == labels.max() == 24
    for k, r in enumerate(rings, start=1):
        flat = tuple(v for p in r for v in p)
        m, g = object_mask(Object("coin", (0, 0, 1, 1), (flat,)), *labels.shape), labels == k
        assert (m & g).sum() / (m | g).sum() > 0.97, k
