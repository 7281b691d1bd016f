"""Annotation checks after decode: clipping (property tests), validity, EXIF frames."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from pipeline.ingest.annotations import finalize
from pipeline.ingest.candidate import Candidate, RawObject
from pipeline.ingest.clip import clip_box, clip_polygon, exif_point, polygon_area
from pipeline.images import imagehash as hashes
from pipeline.images.imagehash import pixel_hash
from pipeline.images.imageread import ImageInfo, load_checked
from pipeline.record import Source

W, H = 100.0, 50.0
coord = st.floats(-200, 300, allow_nan=False, allow_infinity=False)
poly = st.lists(st.tuples(coord, coord), min_size=3, max_size=12)


@st.composite
def star_polygon(draw):
    """A simple (star-shaped) polygon: vertices sorted by angle around a centre."""
    import math
    cx, cy = draw(coord), draw(coord)
    n = draw(st.integers(5, 12))
    # One vertex per sector of 2pi/n: consecutive angles are < pi apart, so the
    # polygon is star-shaped around the centre and therefore simple.
    jitter = draw(st.lists(st.floats(0, 0.99), min_size=n, max_size=n))
    angles = [2 * math.pi * (k + j) / n for k, j in enumerate(jitter)]
    radii = draw(st.lists(st.floats(1, 250), min_size=n, max_size=n))
    return [(cx + r * math.cos(t), cy + r * math.sin(t)) for t, r in zip(angles, radii)]


@settings(max_examples=80, deadline=None)
@given(poly)
def test_clipped_polygon_is_inside(pts):
    out = clip_polygon(pts, W, H)
    assert all(0 <= x <= W and 0 <= y <= H for x, y in out)


@settings(max_examples=80, deadline=None)
@given(star_polygon())
def test_clipped_simple_polygon_area_never_grows(pts):
    out = clip_polygon(pts, W, H)
    assert all(0 <= x <= W and 0 <= y <= H for x, y in out)
    assert polygon_area(out) <= min(polygon_area(pts), W * H) + 1e-6


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, W), st.floats(0, H)), min_size=3, max_size=12))
def test_clip_is_identity_inside(pts):
    from pipeline.ingest.clip import dedupe_consecutive
    assert clip_polygon(pts, W, H) == dedupe_consecutive(pts)


@settings(max_examples=80, deadline=None)
@given(coord, coord, st.floats(1, 300), st.floats(1, 300))
def test_clip_convex_area_never_grows(x, y, w, h):
    rect = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    out = clip_polygon(rect, W, H)
    assert polygon_area(out) <= polygon_area(rect) + 1e-6
    box = clip_box((x, y, x + w, y + h), W, H)
    expected = max(0.0, min(x + w, W) - max(x, 0)) * max(0.0, min(y + h, H) - max(y, 0))
    assert polygon_area(out) == pytest.approx(expected, abs=1e-6)
    assert (box is None) == (expected == 0.0)


def test_polygon_with_all_vertices_outside_keeps_visible_part():
    # A diamond around the image whose edges cut the corners: vertices all outside.
    pts = [(50, -40), (140, 25), (50, 90), (-40, 25)]
    out = clip_polygon(pts, W, H)
    assert len(out) >= 3 and polygon_area(out) > 0.5 * W * H
    xs, ys = [p[0] for p in out], [p[1] for p in out]
    assert (min(xs), min(ys), max(xs), max(ys)) == (0, 0, W, H)


def info(w=100, h=50, orientation=1, raw=None):
    return ImageInfo(w, h, 3, "h", (), orientation, raw or (w, h))


def cand(*raw, normalized=False, size=None):
    return Candidate(id="a.jpg", path="", source=Source("voc", "a.jpg", annotation="a.xml"),
                     raw=tuple(RawObject(*r, index=i) for i, r in enumerate(raw)),
                     normalized=normalized, declared_size=size)


@pytest.mark.parametrize("raw, boxes, reasons, clipped", [
    ([("a", (10, 10, 20, 20))], [(10, 10, 20, 20)], [], 0),
    ([("a", (-5, 10, 20, 60))], [(0, 10, 20, 50)], [], 1),
    ([("a", (20, 10, 10, 20))], [], ["inverted-box"], 0),
    ([("a", (10, 10, 10, 20))], [], ["zero-area-box"], 0),
    ([("a", (float("nan"), 10, 20, 20))], [], ["non-finite-coordinate"], 0),
    ([("a", (10, 10, float("inf"), 20))], [], ["non-finite-coordinate"], 0),
    ([("a", (200, 10, 300, 20))], [], ["outside-image"], 0),
    ([("a", (10, 10, 20, 20)), ("a", (10, 10, 20, 20))], [(10, 10, 20, 20)], ["duplicate-object"], 0),
    ([("a", None, ((0, 0, 10, 0),))], [], ["polygon-too-few-points"], 0),  # labelme #1553
    ([("a", None, ((0, 0, 5, 5, 10, 10),))], [], ["polygon-too-few-points"], 0),  # collinear
    ([("a", None, ((-10, -10, 10, -10, 10, 10, -10, 10),))], [(0, 0, 10, 10)], [], 1),
])
def test_finalize_table(raw, boxes, reasons, clipped):
    objects, rejected, notes = finalize(cand(*raw), info())
    assert [tuple(o.box) for o in objects] == boxes
    assert [r.reason for r in rejected] == reasons
    assert all(r.index is not None and r.path == "a.xml" for r in rejected)
    assert (f"clipped:{clipped}" in notes) == bool(clipped)


def test_normalized_yolo_scaled_and_slightly_out_clipped():
    objects, _, notes = finalize(cand(("a", (-0.01, 0.1, 0.5, 1.02)), normalized=True), info())
    assert objects[0].box == pytest.approx((0, 5, 50, 50)) and "clipped:1" in notes


def test_declared_size_mismatch_is_reported():
    _, _, notes = finalize(cand(("a", (1, 1, 5, 5)), size=(640, 480)), info())
    assert "size-mismatch:declared=640x480,image=100x50" in notes


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_point_matches_pil_transpose(orientation):
    """A marked pixel in the stored image lands where exif_point says in the upright one."""
    from PIL import ImageOps

    a = np.zeros((20, 40), np.uint8)
    a[3, 7] = 255
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    img._exif = exif  # noqa: SLF001 - PIL reads orientation from here
    up = np.asarray(ImageOps.exif_transpose(img))
    x, y = exif_point(7.5, 3.5, orientation, 40, 20)
    assert up[int(y), int(x)] == 255


def test_annotation_in_stored_frame_is_mapped_through_exif(tmp_path):
    """labelImg #159: boxes drawn on the un-rotated pixels follow the EXIF transpose."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[0:8, 0:16] = (255, 0, 0)  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    img, _, inf = load_checked(tmp_path / "r.jpg", 1, 10**9)
    assert (inf.width, inf.height, inf.raw_size) == (20, 40, (40, 20))
    objects, _, notes = finalize(cand(("red", (0, 0, 16, 8)), size=(40, 20)), inf)
    assert "annotation-exif-mapped:6" in notes
    x1, y1, x2, y2 = (int(v) for v in objects[0].box)
    assert (x2 - x1, y2 - y1) == (8, 16)
    up = np.asarray(img.convert("RGB")).astype(int)
    assert up[y1 + 2:y2 - 2, x1 + 2:x2 - 2, 0].mean() > 200
    # Declared in the upright frame: kept as is.
    objects, _, notes = finalize(cand(("red", (12, 0, 20, 16)), size=(20, 40)), inf)
    assert objects[0].box == (12, 0, 20, 16) and not notes


@pytest.mark.parametrize("mode, size", [("L", (37, 5)), ("RGB", (500, 375)), ("RGB", (17000, 2)), ("L", (1, 1))])
@pytest.mark.parametrize("pillow_internal", [True, False], ids=["chunks", "tobytes"])
def test_pixel_hash_is_xxh3_of_tobytes(mode, size, pillow_internal, monkeypatch):
    # Hashed piece by piece (wide rows included: one row over tobytes' 64 KiB block),
    # the hash is the documented one: xxh3-128 of mode, size and ``tobytes()``.
    import xxhash

    rng = np.random.default_rng(sum(size))
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
    expected = xxhash.xxh3_128(f"{mode}{size}".encode() + img.tobytes()).hexdigest()[:32]
    if not pillow_internal:  # a Pillow without the private packer: tobytes itself
        monkeypatch.setattr(hashes, "_raw_encoder", lambda img: None)
    assert pixel_hash(img) == expected
