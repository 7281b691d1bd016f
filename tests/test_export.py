"""Export round trips: ingest -> export -> ingest gives the same records, every format."""

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.config import IngestParams
from pipeline.core.errors import InputError
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


@pytest.mark.parametrize("fmt, task, polygons", [
    pytest.param("voc", "detect", False),
    ("yolo", "detect", False), ("labelme", "detect", True),
    pytest.param("coco", "detect", True)])
def test_round_trip_boxes_and_polygons(tmp_path, fmt, task, polygons):
    ds = ingest(rich_labelme_tree(tmp_path / "src"), tmp_path / "ds", params(), fmt="labelme")
    rot = next(s for s in ds.samples if s.id == "rot.jpg")
    assert len(rot.objects) == 3 and any(len(o.polygons) == 2 for o in rot.objects)
    assert "clipped:1" in rot.notes and "exif-transposed:6" in rot.notes
    export(ds, tmp_path / "out", fmt, task=task)
    back = ingest(tmp_path / "out", tmp_path / "back", params(), fmt=fmt)
    assert back.quarantine == (), back.quarantine
    assert_same(ds, back, polygons)
    assert set(back.classes) == set(ds.classes)


def test_round_trip_yolo_segment_joins_parts_and_gives_boxes_their_rectangle(tmp_path):
    ds = ingest(rich_labelme_tree(tmp_path / "src"), tmp_path / "ds", params(), fmt="labelme")
    summary = export(ds, tmp_path / "out", "yolo", task="segment")
    back = ingest(tmp_path / "out", tmp_path / "back", params(), fmt="yolo")
    assert back.quarantine == ()
    assert summary["multipart_bridged"] == 1
    assert summary["boxes_as_rectangles"] == sum(1 for s in ds.samples for o in s.objects if not o.polygons)
    assert_same(ds, back, False)  # same objects, classes and boxes
    for s in back.samples:
        assert all(len(o.polygons) == 1 for o in s.objects), s.id
    rot = next(s for s in ds.samples if s.id == "rot.jpg")
    rot2 = next(s for s in back.samples if s.pixel_hash == rot.pixel_hash)
    two = next(o for o in rot.objects if len(o.polygons) == 2)
    joined = next(o for o in rot2.objects if o.label == two.label and max(
        abs(u - v) for u, v in zip(o.box, two.box)) <= 1e-3)
    vertices = {(round(p[i], 2), round(p[i + 1], 2)) for p in joined.polygons for i in range(0, len(p), 2)}
    assert vertices == {(round(p[i], 2), round(p[i + 1], 2)) for p in two.polygons for i in range(0, len(p), 2)}


def test_voc_and_coco_annotations_parse_back_with_todays_parsers():
    """The annotation text of the VOC and COCO writers, through the pure parsers (whatever
    the tree layout): VOC boxes within 0.5 px, COCO boxes and polygons as they were."""
    from pipeline.export.coco import annotation
    from pipeline.export.voc import to_xml
    from pipeline.ingest.coco import parse_coco
    from pipeline.ingest.voc import parse_voc
    from pipeline.record import Object, Sample

    objs = (Object("x", (3.4, 5.6, 20.5, 30.49)), Object("y", (0.0, 0.0, 50.0, 40.0)),
            Object("z", (10.0, 10.0, 20.0, 20.0), ((10.0, 10.0, 20.0, 10.0, 15.0, 20.0),)))
    s = Sample(id="a.png", image="images/a.png", width=50, height=40, channels=3, objects=objs)
    parsed = parse_voc(to_xml(s, "a.png"))
    assert parsed.image == "a.png" and parsed.size == (50, 40)
    for o, r in zip(objs, parsed.objects):
        assert r.label == o.label and max(abs(u - v) for u, v in zip(r.box, o.box)) <= 0.5
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 50, "height": 40}],
           "annotations": [{"id": k + 1, "image_id": 1, "category_id": 1 + "xyz".index(o.label),
                            **annotation(o, "detect", 50, 40)} for k, o in enumerate(objs)],
           "categories": [{"id": i + 1, "name": c} for i, c in enumerate("xyz")]}
    (name, got), = parse_coco(doc)[0]
    assert name == "a.png" and got.size == (50, 40)
    for o, r in zip(objs, got.objects):
        assert r.label == o.label and (r.polygons == o.polygons)
        if not o.polygons:
            assert max(abs(u - v) for u, v in zip(r.box, o.box)) <= 1e-3


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
