"""Pure parsers on inline strings: one row per format quirk (FORMATS.md)."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from pipeline.ingest.candidate import AnnotationError
from pipeline.ingest.coco import parse_coco
from pipeline.ingest.createml import parse_createml
from pipeline.ingest.labelme import parse_labelme
from pipeline.ingest.tree import normalize_ref
from pipeline.ingest.voc import parse_voc
from pipeline.ingest.yolo import parse_classes_txt, parse_data_yaml, parse_yolo


def voc(objects: str, extra: str = "<size><width>100</width><height>50</height><depth>3</depth></size>") -> str:
    return f"<annotation><folder>f</folder><filename>a.jpg</filename>{extra}{objects}</annotation>"


def obj(name="cat", box=("11", "21", "30", "40"), more=""):
    b = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    return f"<object><name>{name}</name>{more}<bndbox>{b}</bndbox></object>"


@pytest.mark.parametrize("text, boxes, problems", [
    # 1-based inclusive indices -> continuous (xmin-1, ymin-1, xmax, ymax)
    (voc(obj()), [("cat", (10.0, 20.0, 30.0, 40.0))], []),
    (voc(obj(box=("11.0", "21.0", "30.0", "40.0"))), [("cat", (10.0, 20.0, 30.0, 40.0))], []),  # floats
    (voc(obj(more="<pose></pose><truncated/><difficult></difficult><occluded>1</occluded>")),
     [("cat", (10.0, 20.0, 30.0, 40.0))], []),  # empty / extra tags ignored
    (voc(obj(more="<part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
               "<ymax>2</ymax></bndbox></part>")), [("cat", (10.0, 20.0, 30.0, 40.0))], []),  # parts ignored
    (voc(obj(box=("a", "1", "2", "3"))), [], [("bad-coordinate", 0)]),
    (voc("<object><name>x</name></object>" + obj()), [("cat", (10.0, 20.0, 30.0, 40.0))], [("missing-box", 0)]),
    (voc("<object><bndbox/></object>"), [], [("missing-label", 0)]),
    (voc(obj(box=("30", "1", "10", "5"))), [("cat", (29.0, 0.0, 10.0, 5.0))], []),  # inverted: checked after decode
    (voc(obj(), extra=""), [("cat", (10.0, 20.0, 30.0, 40.0))], []),  # no size element
])
def test_voc_objects(text, boxes, problems):
    p = parse_voc(text)
    assert [(o.label, o.box) for o in p.objects] == boxes
    assert [(r.reason, r.index) for r in p.problems] == problems


def test_voc_size_and_filename():
    p = parse_voc(voc(obj()))
    assert p.size == (100, 50) and p.image == "a.jpg"
    assert parse_voc(voc(obj(), extra="<size><width>0</width><height>5</height></size>")).size is None


@pytest.mark.parametrize("text, reason", [
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotation>&x;</annotation>',
     "unsafe-xml"),
    ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
     "<annotation>&lol2;</annotation>", "unsafe-xml"),
    ("<!DOCTYPE annotation><annotation/>", "unsafe-xml"),
    ("<annotation><object>", "malformed-xml"),
    ("", "malformed-xml"),
    ("<root/>", "not-voc"),
])
def test_voc_refuses_unsafe_and_broken_xml(text, reason):
    with pytest.raises(AnnotationError) as err:
        parse_voc(text)
    assert err.value.reason == reason


def test_voc_utf16_doctype_is_still_refused():
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><annotation/>'
    with pytest.raises(AnnotationError, match="unsafe-xml"):
        parse_voc(text.encode("utf-16"))


NAMES = ["cat", "dog"]


@pytest.mark.parametrize("text, objs, problems", [
    ("0 0.5 0.5 0.2 0.4", [("cat", (0.4, 0.3, 0.6, 0.7), ())], []),
    ("1 0.5 0.5 0.2 0.4\n", [("dog", (0.4, 0.3, 0.6, 0.7), ())], []),  # trailing newline
    ("\n\n0 0.5 0.5 0.2 0.4\n\n", [("cat", (0.4, 0.3, 0.6, 0.7), ())], []),  # blank lines
    ("0 0.1 0.1 0.9 0.1 0.5 0.9", [("cat", None, ((0.1, 0.1, 0.9, 0.1, 0.5, 0.9),))], []),  # polygon
    ("5 0.5 0.5 0.2 0.2", [], [("class-id-out-of-range", 1)]),
    ("-1 0.5 0.5 0.2 0.2", [], [("class-id-out-of-range", 1)]),
    ("cat 0.5 0.5 0.2 0.2", [], [("bad-class-id", 1)]),
    ("0 0.5 0.5 0.2 0.2 0.9", [], [("bad-token-count", 1)]),  # a confidence column
    ("0 0.5 0.5", [], [("bad-token-count", 1)]),
    ("1 2 3", [], [("bad-token-count", 1)]),  # the count is wrong whatever the class id
    ("7 0.5 0.5 0.2 0.2 0.9", [], [("bad-token-count", 1)]),
    ("0 0.5 x 0.2 0.2", [], [("bad-number", 1)]),
    ("1.0 0.5 0.5 1.2 0.2", [("dog", (-0.1, 0.4, 1.1, 0.6), ())], []),  # out of [0,1]: clipped later
])
def test_yolo_lines(text, objs, problems):
    p = parse_yolo(text, NAMES)
    got = [(o.label, None if o.box is None else tuple(round(v, 6) for v in o.box), o.polygons) for o in p.objects]
    assert got == objs
    assert [(r.reason, r.index) for r in p.problems] == problems


def test_voc_image_set_comment_lines_are_not_stems():
    from pipeline.ingest.voc import parse_image_set

    assert parse_image_set("# written by a script\n2008_000001\n\n  # indented\n2008_000002  1\n") == [
        (2, "2008_000001"), (5, "2008_000002")]


@pytest.mark.parametrize("line", [
    "0 nan 0.5 0.1 0.1", "0 inf 0.5 0.1 0.1", "0 1e999 0.5 0.1 0.1", "0 0.5 0.5 0.1 1_0",
    "0 \uff10.5 0.5 0.1 0.1",  # full-width digit
    "0 0.5\xa00.5 0.1 0.1",  # a non-breaking space is not a separator
    "0 0.5 0.5 0.1 0.1\u2028",  # nor a line separator
    "0 +-1 0.5 0.1 0.1", "0 1.2.3 0.5 0.1 0.1", "0 0x1 0.5 0.1 0.1", "0 .5e 0.5 0.1 0.1",
])
def test_yolo_numbers_are_parsed_strictly(line):
    p = parse_yolo(line, NAMES)
    assert p.objects == () and [(r.reason, r.index) for r in p.problems] == [("bad-number", 1)]


@pytest.mark.parametrize("text, ok", [
    ("1", True), ("-1.5", True), ("+.5", True), ("5.", True), ("1e3", True), ("1E-3", True),
    ("", False), (" 1", False), ("1_0", False), ("\u0661", False), ("\uff11", False), ("nan", False),
    ("Infinity", False), ("1e999", False), ("1e", False), ("--1", False), (".", False),
])
def test_strict_number_parser(text, ok):
    from pipeline.ingest.numbers import parse_number

    if ok:
        assert parse_number(text) == float(text)
    else:
        with pytest.raises(ValueError):
            parse_number(text)


@pytest.mark.parametrize("text, names", [
    ("cat\ndog", ["cat", "dog"]), ("cat\ndog\n", ["cat", "dog"]), ("cat\r\n\r\ndog\r\n", ["cat", "dog"]),
])
def test_classes_txt(text, names):
    assert parse_classes_txt(text) == names


@pytest.mark.parametrize("text, names", [
    ("names: [cat, dog]\ntrain: /home/someone/images/train", {0: "cat", 1: "dog"}),
    ("path: x\nnames:\n  0: cat\n  2: dog\n", {0: "cat", 2: "dog"}),
])
def test_data_yaml(text, names):
    assert parse_data_yaml(text) == names


def test_createml_centre_coordinates():
    [(name, p)] = parse_createml([{"image": "a.jpg", "annotations": [
        {"label": "cat", "coordinates": {"x": 50, "y": 40, "width": 20, "height": 10}},
        {"label": "cat", "coordinates": {"x": 50}}]}])
    assert name == "a.jpg" and p.objects[0].box == (40.0, 35.0, 60.0, 45.0)
    assert [(r.reason, r.index) for r in p.problems] == [("bad-annotation", 1)]
    assert isinstance(parse_createml([{"annotations": []}])[0][1], AnnotationError)
    with pytest.raises(AnnotationError):
        parse_createml({"image": "a.jpg"})


def _mask_b64(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8) * 255).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def lm(*shapes, **top):
    d = {"version": "5.4.1", "flags": {}, "shapes": list(shapes), "imagePath": "a.jpg",
         "imageData": None, "imageHeight": 50, "imageWidth": 100}
    d.update(top)
    return d


def sh(label, kind, pts, gid=None, **kw):
    return {"label": label, "points": pts, "group_id": gid, "shape_type": kind, "flags": {}, **kw}


def test_labelme_shapes():
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    p = parse_labelme(lm(
        sh("a", "rectangle", [[30, 40], [10, 20]]),  # any corner order
        sh("b", "polygon", [[0, 0], [10, 0], [10, 10]]),
        sh("c", "circle", [[50, 25], [60, 25]]),
        sh("d", "polygon", [[0, 0], [5, 0], [5, 5]], gid=1),
        sh("d", "rectangle", [[20, 20], [30, 30]], gid=1),  # same group: one instance
        sh("d", "polygon", [[40, 0], [45, 0], [45, 5]], gid=2),  # another instance
        sh("k", "point", [[1, 1]]),
        sh("l", "line", [[1, 1], [2, 2]]),
        sh("m", "linestrip", [[1, 1], [2, 2], [3, 1]]),
        sh("e", "mask", [[10, 10], [15, 13]], mask=_mask_b64(mask)),
        sh("__ignore__", "polygon", [[0, 0], [1, 0], [1, 1]]),
        sh("f", "oriented_rectangle", [[0, 0], [4, 0], [4, 2], [0, 2]]),
        sh("g", "hexagon", [[0, 0]]),
        sh("", "polygon", [[0, 0], [1, 0], [1, 1]]),
        {"label": "h", "points": [[0, 0], [3, 0], [3, 3]]},  # old files: no shape_type = polygon
    ))
    by = {(o.label, o.index): o for o in p.objects}
    assert by[("a", 0)].box == (10.0, 20.0, 30.0, 40.0)
    assert by[("b", 1)].polygons == ((0.0, 0.0, 10.0, 0.0, 10.0, 10.0),)
    circle = by[("c", 2)].polygons[0]
    assert len(circle) == 64 and max(circle[0::2]) == pytest.approx(60) and min(circle[0::2]) == pytest.approx(40)
    assert len(by[("d", 3)].polygons) == 2 and by[("d", 3)].polygons[1] == (20, 20, 30, 20, 30, 30, 20, 30)
    assert len(by[("d", 5)].polygons) == 1
    m = by[("e", 9)].polygons
    xs, ys = [v for q in m for v in q[0::2]], [v for q in m for v in q[1::2]]
    assert (min(xs), min(ys), max(xs), max(ys)) == (12.5, 11.5, 14.5, 12.5)  # pixel centres
    assert ("f", 11) in by and ("h", 14) in by
    assert sorted((r.reason, r.index) for r in p.problems) == [
        ("missing-label", 13), ("unknown-shape-type", 12), ("unsupported-shape", 6),
        ("unsupported-shape", 7), ("unsupported-shape", 8)]
    assert "labelme-region-shapes:1" in p.notes
    assert p.size == (100, 50) and p.image == "a.jpg"


def test_labelme_flags_image_data_and_paths():
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    p = parse_labelme(lm(flags={"dog": True, "cat": False}, imageData=base64.b64encode(png.getvalue()).decode()),
                      flags_as_label=True)
    assert p.label == "dog" and p.image_data == png.getvalue()
    assert parse_labelme(lm(flags={"dog": True})).label is None  # flags ignored unless asked
    with pytest.raises(AnnotationError, match="ambiguous-flags"):
        parse_labelme(lm(flags={"dog": True, "cat": True}), flags_as_label=True)
    with pytest.raises(AnnotationError, match="not-labelme"):
        parse_labelme([1, 2])
    assert normalize_ref("..\\images\\a b(1).jpg") == "../images/a b(1).jpg"
    assert normalize_ref("C:\\Users\\x\\a.jpg") == "C:/Users/x/a.jpg"


def test_coco():
    per_image, problems = parse_coco({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
                   {"id": 1, "file_name": "b.jpg"}, {"file_name": "c.jpg"}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 5]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 4, 4],
             "segmentation": [[0, 0, 4, 0, 4, 4]]},
            {"id": 3, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]},
            {"id": 4, "image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]},
            {"id": 5, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "iscrowd": 1,
             "segmentation": {"counts": [0, 1], "size": [50, 100]}},
            {"id": 6, "image_id": 1, "category_id": 3},
            {"id": 7, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "iscrowd": "a"},
        ]})
    (name, p), (b, b_err), (c, c_err) = per_image
    assert name == "a.jpg" and p.size == (100, 50)
    assert [(o.label, o.box, o.polygons) for o in p.objects] == [
        ("cat", (10.0, 20.0, 40.0, 25.0), ()), ("cat", None, ((0.0, 0.0, 4.0, 0.0, 4.0, 4.0),))]
    assert "coco-duplicate-category:cat" in p.notes
    # Refused image entries keep their file name: the reader quarantines those images.
    assert (b, b_err.reason, c, c_err.reason) == ("b.jpg", "duplicate-image-id", "c.jpg", "bad-image-entry")
    # An image's refused annotations are its own problems; the file keeps those no image owns.
    assert [(r.reason, r.index) for r in p.problems] == [
        ("unknown-category-id", 3), ("crowd-region", 4), ("bad-annotation", 5), ("bad-annotation", 6)]
    assert [(r.reason, r.index) for r in problems] == [("annotation-without-image", 2)]


def _rle_mask() -> np.ndarray:
    m = np.zeros((12, 16), np.uint8)
    m[2:7, 3:10] = 1  # a 7x5 rectangle
    m[8:11, 12:15] = 1  # a 3x3 blob
    m[5:9, 0:2] = 1  # a 2x4 bar on the left edge
    return m


def _column_major_runs(m: np.ndarray) -> list[int]:
    flat = m.T.reshape(-1)
    runs, value, n = [], 0, 0
    for v in flat:
        if v == value:
            n += 1
        else:
            runs.append(n)
            value, n = v, 1
    return runs + [n]


# The compressed string is what pycocotools 2.0.11 `mask.encode` gives for _rle_mask()
# (area 52, bbox [0, 2, 15, 9]): a golden value, not our own encoder's output.
RLE_GOLDEN = "548091F00000000000n0NTO0004"


@pytest.mark.parametrize("counts", [RLE_GOLDEN, RLE_GOLDEN.encode(), "uncompressed"])
def test_coco_rle_becomes_polygons(counts):
    from pipeline.ingest.masks import rle_to_mask

    counts = _column_major_runs(_rle_mask()) if counts == "uncompressed" else counts
    rle = {"size": [12, 16], "counts": counts}
    assert (rle_to_mask(rle) == _rle_mask()).all()
    per_image, problems = parse_coco({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 16, "height": 12}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [0, 2, 15, 9], "segmentation": rle}]})
    [(_, p)] = per_image
    assert problems == []
    [obj] = p.objects
    assert obj.label == "cat" and len(obj.polygons) == 3
    xs = [v for part in obj.polygons for v in part[0::2]]
    ys = [v for part in obj.polygons for v in part[1::2]]
    # Contours run through the outermost pixels' centres: the COCO bbox shrunk by half a pixel.
    assert (min(xs), min(ys), max(xs), max(ys)) == (0.5, 2.5, 14.5, 10.5)


@pytest.mark.parametrize("seg, image, message", [
    ({"size": [12, 16], "counts": [10, 5]}, {}, "cover 15 pixels; size 12x16 needs 192"),
    ({"size": [12, 16], "counts": "5~8"}, {}, "character '~'"),
    ({"size": [12, 16], "counts": "5P"}, {}, "ends inside a run length"),
    ({"size": [12, 16], "counts": [192]}, {}, "mask is empty"),
    ({"size": [12, 16], "counts": RLE_GOLDEN}, {"width": 16, "height": 20}, "differs from the image entry's 20x16"),
    ({"counts": RLE_GOLDEN}, {}, "needs size"),
])
def test_coco_bad_rle_is_reported_with_its_index(seg, image, message):
    per_image, problems = parse_coco({
        "images": [{"id": 1, "file_name": "a.jpg", **image}], "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": seg}]})
    [(_, p)] = per_image
    assert p.objects == () and problems == []
    [r] = p.problems
    assert (r.reason, r.index) == ("bad-rle", 0) and message in r.detail


def test_a_parser_failure_becomes_a_deterministic_refusal():
    import io as _io

    from pipeline.ingest.candidate import guarded
    from pipeline.core.inputfile import InputRefused

    def crash(x):
        raise TypeError(f"cannot use {x}")

    got = guarded(crash, _io.BytesIO())
    assert isinstance(got, AnnotationError) and got.reason == "annotation-error"
    assert got.detail == "the parser failed: TypeError: cannot use <_io.BytesIO object>"
    assert guarded(lambda: (_ for _ in ()).throw(InputRefused("not-utf8", "x"))).reason == "not-utf8"
    assert guarded(lambda: 5) == 5
