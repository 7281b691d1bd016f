"""CVAT for images 1.1 XML: the pure parser on inline documents, one row per element kind."""

from __future__ import annotations

import pytest

from pipeline.ingest.candidate import AnnotationError
from pipeline.ingest.cvat import image_refs, parse_cvat, split_of_subset

META = ("<version>1.1</version><meta><task><id>7</id><name>t</name><mode>annotation</mode><labels>"
        "<label><name>car</name><attributes><attribute><name>color</name><input_type>select</input_type>"
        "</attribute></attributes></label><label><name>wheel</name></label></labels></task></meta>")


def doc(body: str, image: str = 'id="0" name="a.jpg" width="40" height="30"') -> str:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>{META}<image {image}>{body}</image></annotations>'


@pytest.mark.parametrize("body, objects, problems", [
    ('<box label="car" occluded="0" source="manual" xtl="1.50" ytl="2.00" xbr="30.00" ybr="20.25" z_order="0">'
     '<attribute name="color">red</attribute></box>', [("car", (1.5, 2.0, 30.0, 20.25), ())], []),
    ('<polygon label="car" occluded="0" points="1.00,2.00;30.00,2.00;15.50,20.00" z_order="1"></polygon>',
     [("car", None, ((1.0, 2.0, 30.0, 2.0, 15.5, 20.0),))], []),
    ('<box label="car" xtl="0" ytl="0" xbr="10" ybr="4" rotation="90.0"></box>',  # turned about (5, 2)
     [("car", None, ((7.0, -3.0, 7.0, 7.0, 3.0, 7.0, 3.0, -3.0),))], []),
    ('<box label="car" xtl="0" ytl="0" xbr="10" ybr="4" rotation="0.0"></box>', [("car", (0.0, 0.0, 10.0, 4.0), ())],
     []),
    ('<polyline label="wheel" points="1,2;3,4"></polyline><points label="wheel" points="5,6"></points>'
     '<cuboid label="car" xtl1="1" ytl1="1" xbl1="1" ybl1="1" xtr1="1" ytr1="1" xbr1="1" ybr1="1" xtl2="1" '
     'ytl2="1" xbl2="1" ybl2="1" xtr2="1" ytr2="1" xbr2="1" ybr2="1"></cuboid>'
     '<skeleton label="car" points=""><points label="1" points="1,1"></points></skeleton>',
     [], [("unsupported-shape", 0), ("unsupported-shape", 1), ("unsupported-shape", 2), ("unsupported-shape", 3)]),
    ('<box label="" xtl="1" ytl="1" xbr="2" ybr="2"></box>', [], [("missing-label", 0)]),
    ('<box label="car" xtl="1" ytl="nan" xbr="2" ybr="2"></box>', [], [("bad-coordinate", 0)]),
    ('<box label="car" xtl="1" ytl="1" xbr="2"></box>', [], [("bad-coordinate", 0)]),
    ('<polygon label="car" points="1,2;3"></polygon>', [], [("bad-coordinate", 0)]),
    ('<track id="0" label="car"></track>', [], [("unsupported-shape", 0)]),  # inside an image: not a shape
])
def test_cvat_shapes(body, objects, problems):
    [(name, subset, p)], file_problems = parse_cvat(doc(body))
    assert (name, subset, p.size, file_problems) == ("a.jpg", None, (40, 30), [])
    got = [(o.label, o.box, tuple(tuple(round(v, 6) + 0.0 for v in part) for part in o.polygons))
           for o in p.objects]
    assert got == objects
    assert [(r.reason, r.index) for r in p.problems] == problems


def test_cvat_mask_runs_are_row_major_inside_their_box():
    # 3x2 box at (4, 5): rows "011" and "110" -> runs 1 (bg), 2 (fg), 0 (bg), 2 (fg), 1 (bg)
    [(_, _, p)], _ = parse_cvat(doc('<mask label="car" source="manual" occluded="0" rle="1, 2, 0, 2, 1" '
                                    'left="4" top="5" width="3" height="2" z_order="0"></mask>'))
    [obj] = p.objects
    xs, ys = obj.polygons[0][0::2], obj.polygons[0][1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (4.5, 5.5, 6.5, 6.5)  # through the pixel centres


@pytest.mark.parametrize("attrs, message", [
    ('rle="1, 2" left="4" top="5" width="3" height="2"', "cover 3 pixels; size 2x3 needs 6"),
    ('rle="6" left="0" top="0" width="3" height="2"', "mask is empty"),
    ('rle="1, 2, 0, 2, 1" left="39" top="5" width="3" height="2"', "exceeds the 40x30 image"),
    ('rle="1, x" left="0" top="0" width="3" height="2"', "rle:"),
    ('rle="1, 2, 0, 2, 1" top="0" width="3" height="2"', "no left"),
])
def test_cvat_bad_masks_are_refused_with_their_index(attrs, message):
    [(_, _, p)], _ = parse_cvat(doc(f'<box label="car" xtl="1" ytl="1" xbr="2" ybr="2"></box><mask label="car" '
                                    f'{attrs}></mask>'))
    [r] = p.problems
    assert (r.reason, r.index) == ("bad-mask", 1) and message in r.detail
    assert len(p.objects) == 1


def test_cvat_ellipse_becomes_a_polygon_within_its_box():
    [(_, _, p)], _ = parse_cvat(doc('<ellipse label="wheel" cx="20" cy="15" rx="8" ry="4"></ellipse>'))
    [obj] = p.objects
    xs, ys = obj.polygons[0][0::2], obj.polygons[0][1::2]
    assert len(xs) == 32 and (min(xs), max(xs), round(min(ys), 9), round(max(ys), 9)) == (12.0, 28.0, 11.0, 19.0)


@pytest.mark.parametrize("body, label, problems", [
    ('<tag label="day" source="manual"></tag>', "day", []),
    ('<tag label="day"></tag><tag label="night"></tag>', None, [("several-tags", 0), ("several-tags", 1)]),
    ('<tag label=""></tag>', None, [("missing-label", 0)]),
])
def test_cvat_tags_are_the_image_label(body, label, problems):
    [(_, _, p)], _ = parse_cvat(doc(body))
    assert p.label == label and [(r.reason, r.index) for r in p.problems] == problems


def test_cvat_attributes_are_counted_not_dropped_silently():
    [(_, _, p)], _ = parse_cvat(doc('<box label="car" xtl="1" ytl="1" xbr="2" ybr="2"><attribute name="color">red'
                                    '</attribute><attribute name="parked">true</attribute></box>'
                                    '<tag label="day"><attribute name="sun">yes</attribute></tag>'))
    assert "cvat-attributes-not-kept:3" in p.notes


def test_cvat_project_export_keeps_each_image_subset_and_indexes_across_images():
    text = (f"<annotations>{META}"
            '<image id="0" name="img0.jpg" width="8" height="8" subset="Train" task_id="3">'
            '<box label="car" xtl="0" ytl="2" xbr="4" ybr="4"></box><polyline label="wheel" points="1,2;3,4"/>'
            '</image><image id="0" name="img0.jpg" width="8" height="8" subset="Test" task_id="4">'
            '<points label="wheel" points="1,2"/></image>'
            '<image id="1" name="img1.jpg" width="x" height="8" subset="Validation"></image>'
            '<image id="2" width="8" height="8"></image></annotations>')
    per_image, problems = parse_cvat(text)
    assert [(n, s) for n, s, _ in per_image] == [("img0.jpg", "Train"), ("img0.jpg", "Test"),
                                                 ("img1.jpg", "Validation"), ("", None)]
    (_, _, a), (_, _, b), (_, _, c), (_, _, d) = per_image
    assert [(r.reason, r.index) for r in a.problems + b.problems] == [("unsupported-shape", 1),
                                                                     ("unsupported-shape", 2)]
    assert (c.reason, d.reason, problems) == ("bad-image-entry", "bad-image-entry", [])
    assert [split_of_subset(s) for s in ("Train", "Validation", "Test", "default", "batch_2", None)] == [
        "train", "val", "test", None, None, None]


@pytest.mark.parametrize("text, reason", [
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations>&x;</annotations>',
     "unsafe-xml"),
    ("<annotations><image>", "malformed-xml"),
    ("<annotation><filename>a.jpg</filename></annotation>", "not-cvat"),
    (f'<annotations>{META}<track id="0" label="car"><box frame="0" xtl="1" ytl="1" xbr="2" ybr="2" outside="0" '
     'occluded="0" keyframe="1"></box></track></annotations>', "cvat-video"),
])
def test_cvat_refuses_unsafe_broken_foreign_and_video_documents(text, reason):
    with pytest.raises(AnnotationError) as err:
        parse_cvat(text)
    assert err.value.reason == reason


def test_cvat_tracks_beside_images_are_refused_one_by_one():
    text = (f'<annotations>{META}<image id="0" name="a.jpg" width="8" height="8"><box label="car" xtl="0" ytl="0" '
            'xbr="2" ybr="2"/></image><track id="0" label="car"><box frame="0" xtl="1" ytl="1" xbr="2" ybr="2" '
            'outside="0" occluded="0" keyframe="1"/></track></annotations>')
    [(_, _, p)], problems = parse_cvat(text)
    assert len(p.objects) == 1 and [(r.reason, r.index) for r in problems] == [("video-track", 1)]


@pytest.mark.parametrize("name, subset, xml, refs", [
    ("a.jpg", "Train", "annotations.xml", ("images/Train/a.jpg", "images/a.jpg", "a.jpg")),
    ("a.jpg", None, "annotations.xml", ("images/a.jpg", "a.jpg")),
    ("dir/a.jpg", None, "train.xml", ("images/train/dir/a.jpg", "images/dir/a.jpg", "dir/a.jpg")),
    ("C:\\data\\a.jpg", "default", "annotations.xml", ("images/default/a.jpg", "images/a.jpg", "a.jpg")),
])
def test_cvat_image_refs_are_where_its_exports_put_images(name, subset, xml, refs):
    assert image_refs(name, subset, xml) == refs
