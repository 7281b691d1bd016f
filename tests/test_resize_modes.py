"""augment.resize: stretch, letterbox, center_crop, shortest_side; the pixels and the
targets move through one matrix, checked against plain corner maths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.version.resize import RESIZE_MODES, fit, to_chw

sizes = st.integers(min_value=1, max_value=300)


def apply(m, x, y):
    return m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]


@settings(max_examples=300, deadline=None)
@given(sh=sizes, sw=sizes, h=sizes, w=sizes, mode=st.sampled_from(RESIZE_MODES))
def test_fit_matches_corner_maths(sh, sw, h, w, mode):
    f = fit((sh, sw), h, w, mode)
    (ih, iw), (ox, oy) = f.inner_hw, f.offset
    # the source's corners land on the placed image's corners
    assert apply(f.matrix(), 0, 0) == (ox, oy)
    x, y = apply(f.matrix(), sw, sh)
    assert abs(x - (ox + iw)) < 1e-9 and abs(y - (oy + ih)) < 1e-9
    if mode == "stretch":
        assert (ih, iw, ox, oy) == (h, w, 0, 0)
        return
    # one scale for both axes (the aspect kept), each side within half a pixel of it
    scale = {"letterbox": min(h / sh, w / sw), "center_crop": max(h / sh, w / sw),
             "shortest_side": min(h, w) / min(sh, sw)}[mode]
    for got, side in ((iw, sw), (ih, sh)):
        assert abs(got - side * scale) <= 0.5 + 1e-9 or (got == 1 and side * scale < 1)
    assert ox == (w - iw) // 2 and oy == (h - ih) // 2  # centred
    if mode == "letterbox":  # inside the output
        assert iw <= w and ih <= h
    elif mode == "center_crop":  # covers it
        assert iw >= w and ih >= h
    else:
        assert min(ih, iw) == min(h, w) or min(ih, iw) == 1


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("src", [(30, 80), (80, 30), (50, 50)])
def test_pixels_are_where_the_matrix_says(mode, src):
    a = np.full((*src, 3), 200, dtype=np.uint8)
    t, f = to_chw(Image.fromarray(a), 40, 60, 3, mode, pad=114)
    assert t.shape == (3, 40, 60)
    (ih, iw), (ox, oy) = f.inner_hw, f.offset
    inside = np.zeros((40, 60), bool)
    inside[max(oy, 0):min(oy + ih, 40), max(ox, 0):min(ox + iw, 60)] = True
    px = t.numpy()
    assert (px[:, inside] == 200).all() and (px[:, ~inside] == 114).all()
    if mode == "center_crop":
        assert inside.all()
    if mode == "letterbox" and src != (50, 50):
        assert not inside.all()


@pytest.mark.parametrize("mode", ["letterbox", "center_crop", "shortest_side"])
def test_version_objects_sit_on_their_shapes_after_the_resize(tmp_path, mode):
    import json

    from pipeline.config import AugmentParams, SplitParams
    from pipeline.datasets import load_dataset
    from pipeline.split import assign_splits
    from pipeline.version import write_version
    from tests.version_data import COLOURS, make_annotated

    ds = load_dataset(make_annotated(tmp_path / "canonical", n=6, h=48, w=96))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    card = write_version(ds, assignment, AugmentParams(copies=0, image_size=(64, 64), resize=mode, pad_value=7),
                         tmp_path / "v").to_dict()
    assert card["params"]["resize"] == mode
    rows = [json.loads(x) for x in (tmp_path / "v" / "manifest.jsonl").read_text().splitlines()]
    checked = 0
    for r in rows:
        img = np.load(tmp_path / "v" / f"{r['split']}_images.npy")[r["index"]]
        if mode == "letterbox":  # 48x96 in 64x64: bands of padding above and below
            assert (img[0, :, :] == 7).all() and (img[-1, :, :] == 7).all()
        for o in r["objects"]:
            x1, y1, x2, y2 = o["box"]
            if any(p is not o and p["box"][0] < x2 and x1 < p["box"][2] and p["box"][1] < y2 and y1 < p["box"][3]
                   for p in r["objects"]):
                continue  # the fixture paints one shape over the other: check the clean ones
            inner = img[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
            if inner.size:
                assert np.abs(inner.reshape(-1, 3).mean(0) - COLOURS[o["label"]]).max() < 12, (r["id"], o)
                checked += 1
        for d in r.get("dropped", []):  # center_crop may cut objects off: said, not lost
            assert "after the resize" in d["reason"]
    assert checked >= 4
