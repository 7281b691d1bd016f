"""Export round trips: ingest -> export -> ingest gives the same records, every format."""

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.config import IngestParams
from pipeline.errors import InputError
from pipeline.export import export
from pipeline.ingest import ingest
from tests.conftest import make_imagefolder
from tests.ingest_trees import write_labelme


def params(**kw):
    return IngestParams(workers=1, min_size=4, near_duplicate_bits=-1, **kw)


def rich_labelme_tree(root):
    """SPEC plus a multi-part instance, a circle, an EXIF-rotated image and a clipped polygon."""
    write_labelme(root)
    a = np.random.default_rng(7).integers(0, 255, (30, 60, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(root / "rot.jpg", exif=exif.tobytes(), quality=95)
    doc = {"version": "5.4.1", "flags": {}, "imagePath": "rot.jpg", "imageData": None,
           "imageWidth": 30, "imageHeight": 60, "shapes": [
               {"label": "cat", "shape_type": "polygon", "group_id": 3, "flags": {},
                "points": [[1, 1], [10, 1], [10, 10]]},
               {"label": "cat", "shape_type": "polygon", "group_id": 3, "flags": {},
                "points": [[15, 20], [25, 20], [25, 40], [15, 40]]},
               {"label": "dog", "shape_type": "circle", "group_id": None, "flags": {},
                "points": [[15, 50], [20, 50]]},
               {"label": "person", "shape_type": "polygon", "group_id": None, "flags": {},
                "points": [[-10, 30], [40, 30], [15, 70]]}]}  # crosses three edges
    (root / "rot.json").write_text(json.dumps(doc))
    return root


def key(ds):
    return {s.pixel_hash: s for s in ds.samples}


def assert_same(a, b, polygons: bool):
    ka, kb = key(a), key(b)
    assert set(ka) == set(kb)
    for h, s in ka.items():
        t = kb[h]
        assert (s.width, s.height, s.channels, s.label) == (t.width, t.height, t.channels, t.label)
        oa = sorted(s.objects, key=lambda o: (o.label, o.box))
        ob = sorted(t.objects, key=lambda o: (o.label, o.box))
        assert [o.label for o in oa] == [o.label for o in ob], s.id
        for x, y in zip(oa, ob):
            assert max(abs(u - v) for u, v in zip(x.box, y.box)) <= 0.5, (s.id, x.box, y.box)
            if polygons:
                assert len(x.polygons) == len(y.polygons)
                for p, q in zip(x.polygons, y.polygons):
                    assert len(p) == len(q) and max(abs(u - v) for u, v in zip(p, q)) <= 1e-3


@pytest.mark.parametrize("fmt, polygons", [("voc", False), ("yolo", True), ("labelme", True), ("coco", True)])
def test_round_trip_boxes_and_polygons(tmp_path, fmt, polygons):
    ds = ingest(rich_labelme_tree(tmp_path / "src"), tmp_path / "ds", params(), fmt="labelme")
    rot = next(s for s in ds.samples if s.id == "rot.jpg")
    assert len(rot.objects) == 3 and any(len(o.polygons) == 2 for o in rot.objects)
    assert "clipped:1" in rot.notes and "exif-transposed:6" in rot.notes
    summary = export(ds, tmp_path / "out", fmt)
    back = ingest(tmp_path / "out", tmp_path / "back", params(), fmt=fmt)
    assert back.quarantine == (), back.quarantine
    if fmt == "yolo":  # a two-part instance becomes its box: YOLO lines hold one part
        assert summary["multipart_as_box"] == 1
        rot2 = next(s for s in back.samples if s.pixel_hash == rot.pixel_hash)
        assert sorted(len(o.polygons) for o in rot2.objects) == [0, 1, 1]
        ds_cmp = [s for s in ds.samples if s.id != "rot.jpg"]
        back_cmp = [s for s in back.samples if s.pixel_hash != rot.pixel_hash]
        assert_same(type(ds)(ds.root, tuple(ds_cmp), ds.classes), type(back)(back.root, tuple(back_cmp), back.classes), True)
        assert_same(ds, back, False)
    else:
        assert_same(ds, back, polygons)
    assert set(back.classes) == set(ds.classes)


def test_round_trip_fractional_boxes_voc_within_half_pixel(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(src / "a.png")
    (src / "a.json").write_text(json.dumps({"shapes": [
        {"label": "x", "shape_type": "rectangle", "points": [[3.4, 5.6], [20.5, 30.49]]}],
        "imagePath": "a.png", "imageWidth": 50, "imageHeight": 40}))
    ds = ingest(src, tmp_path / "ds", params(), fmt="labelme")
    export(ds, tmp_path / "out", "voc")
    back = ingest(tmp_path / "out", tmp_path / "back", params(), fmt="voc")
    assert_same(ds, back, False)


def test_round_trip_imagefolder_and_labelme_flags(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=4, splits=("train", "val"))
    ds = ingest(src, tmp_path / "ds", params())
    export(ds, tmp_path / "if", "imagefolder")
    back = ingest(tmp_path / "if", tmp_path / "back", params())
    assert_same(ds, back, False)
    assert {s.pixel_hash: s.split for s in ds.samples} == {s.pixel_hash: s.split for s in back.samples}
    export(ds, tmp_path / "lm", "labelme")
    back = ingest(tmp_path / "lm", tmp_path / "back2", params(labelme={"flags_as_label": True}), fmt="labelme")
    assert_same(ds, back, False)


def test_export_refuses_what_a_format_cannot_hold(tmp_path):
    ds = ingest(make_imagefolder(tmp_path / "src", classes=2, per_class=2), tmp_path / "ds", params())
    for fmt in ("yolo", "voc", "coco"):
        with pytest.raises(InputError, match="no sample has objects"):
            export(ds, tmp_path / "out", fmt)
        assert not (tmp_path / "out").exists()


def test_sample_with_dhash_and_polygons_round_trips_through_json():
    from pipeline.record import Object, Sample, Source

    s = Sample(id="a/b.jpg", image="images/x.jpg", width=4, height=3, channels=3,
               objects=(Object("c", (0.0, 0.0, 2.0, 2.0), ((0.0, 0.0, 2.0, 0.0, 2.0, 2.0),)),),
               source=Source("voc", "b.jpg", "/r", "b.xml"), pixel_hash="p", notes=("clipped:1",),
               dhash="00ff00ff00ff00ff")
    assert Sample.from_json(json.loads(json.dumps(s.to_json()))) == s
    assert "dhash" not in Sample(id="x", image="i", width=1, height=1, channels=1).to_json()
