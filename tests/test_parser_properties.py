"""Property tests: random and type-confused documents never escape a parser or a reader.

Every annotation parser is fed valid documents with one value replaced by a
hostile one (a list where a number belongs, ``1e999``, NaN, huge and negative
numbers, strings, deep nesting, wrong types at every key) and plain random
values and bytes. The only exception allowed out is the parser's declared
``AnnotationError``; whatever is returned holds finite coordinates, non-empty
string labels, and survives the after-decode checks. Readers run on generated
trees: candidates + file-level rejections account for every file exactly once.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.ingest.annotations import finalize
from pipeline.core.errors import InputError
from pipeline.ingest.candidate import AnnotationError, Candidate, Parsed, RawObject, Skipped
from pipeline.ingest.coco import parse_coco, read_coco
from pipeline.ingest.createml import parse_createml, read_createml
from pipeline.images.imageread import ImageInfo
from pipeline.ingest.labelme import parse_labelme, read_labelme
from pipeline.ingest.voc import parse_voc, read_voc
from pipeline.ingest.yolo import parse_classes_txt, parse_data_yaml, parse_yolo, read_yolo
from pipeline.record import Rejected, Source

# PROPERTY_EXAMPLES=2000 for a long hunt; the default keeps the suite fast.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10**400, 10**400),
    st.floats(), st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 0.0, -0.0]),
    st.text(max_size=12), st.sampled_from(["", "1", "1e999", "nan", "１", "1_0", "\xa01", "__ignore__"]),
)
hostile = st.recursive(hostile_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def deep(n: int):
    v: object = 1
    for _ in range(n):
        v = [v]
    return v


def _mask_b64() -> str:
    buf = io.BytesIO()
    Image.fromarray(np.eye(4, dtype=np.uint8) * 255).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


MASK = _mask_b64()

LABELME = {"version": "5.4.1", "flags": {"a": True}, "imagePath": "x.png", "imageData": None,
           "imageHeight": 40, "imageWidth": 50, "shapes": [
               {"label": "cat", "shape_type": "rectangle", "points": [[1, 2], [20, 30]], "group_id": None, "flags": {}},
               {"label": "dog", "shape_type": "polygon", "points": [[1, 1], [9, 1], [9, 9]], "group_id": 1},
               {"label": "dog", "shape_type": "circle", "points": [[10, 10], [12, 10]], "group_id": 1},
               {"label": "m", "shape_type": "mask", "points": [[2, 2], [5, 5]], "mask": MASK}]}
COCO = {"images": [{"id": 1, "file_name": "x.png", "width": 50, "height": 40},
                   {"id": "b", "file_name": "y.png", "width": 50, "height": 40}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "iscrowd": 0},
                        {"id": 2, "image_id": "b", "category_id": 2, "segmentation": [[1, 1, 9, 1, 9, 9]]},
                        {"id": 3, "image_id": 1, "category_id": 2,
                         "segmentation": {"size": [40, 50], "counts": [100, 20, 1880]}}]}
CREATEML = [{"image": "x.png", "annotations": [
    {"label": "cat", "coordinates": {"x": 10, "y": 10, "width": 4, "height": 6}}]},
    {"image": "y.png", "annotations": []}]


def paths(doc, prefix=()):
    """Every key path into a JSON document (the root included)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


def replaced(doc, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {k: (replaced(v, rest, value) if k == head else v) for k, v in doc.items()}
    return [replaced(v, rest, value) if i == head else v for i, v in enumerate(doc)]


@st.composite
def mutated(draw, template):
    """The template with 1-3 values (at any depth) replaced by hostile ones."""
    doc = template
    for _ in range(draw(st.integers(1, 3))):
        options = list(paths(doc))
        path = draw(st.sampled_from(options))
        doc = replaced(doc, path, draw(st.one_of(hostile, st.just(deep(80)))))
    return doc


def check_objects(objects):
    for o in objects:
        assert isinstance(o, RawObject) and isinstance(o.label, str) and o.label
        coords = list(o.box or ()) + [v for p in o.polygons for v in p]
        assert all(isinstance(v, float) and math.isfinite(v) for v in coords), o
    # The after-decode checks accept whatever a parser returns.
    info = ImageInfo(50, 40, 3, "", (), 1, (50, 40))
    finalize(Candidate(id="x", path="", source=Source("t", "x.png"), raw=tuple(objects)), info)


def check_parsed(p):
    if isinstance(p, AnnotationError):
        return
    assert isinstance(p, Parsed)
    check_objects(p.objects)
    assert all(isinstance(r, Rejected) and r.reason and " at 0x" not in r.detail for r in p.problems)


def allowed(fn, *args):
    try:
        return fn(*args)
    except AnnotationError as err:
        assert err.reason and " at 0x" not in err.detail and len(err.detail) < 2000
        return err


@SETTINGS
@given(st.one_of(mutated(LABELME), hostile), st.booleans())
def test_labelme_parser(doc, flags):
    check_parsed(allowed(parse_labelme, doc, flags))


@SETTINGS
@given(st.one_of(mutated(COCO), hostile))
def test_coco_parser(doc):
    got = allowed(parse_coco, doc)
    if not isinstance(got, AnnotationError):
        per_image, problems = got
        for name, p in per_image:
            assert isinstance(name, str)
            check_parsed(p)
        assert all(" at 0x" not in r.detail for r in problems)


@SETTINGS
@given(st.one_of(mutated(CREATEML), hostile))
def test_createml_parser(doc):
    got = allowed(parse_createml, doc)
    if not isinstance(got, AnnotationError):
        for name, p in got:
            assert isinstance(name, str)
            check_parsed(p)


number_text = st.one_of(st.floats().map(repr), st.integers().map(str), st.text(max_size=6),
                        st.sampled_from(["1_0", "１", "\xa01", "nan", "inf", "1e999", "-0", ".5", "5."]))


@SETTINGS
@given(st.lists(st.lists(number_text, max_size=9).map(" ".join), max_size=5).map("\n".join),
       st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=5), max_size=3)))
def test_yolo_parser(text, names):
    p = parse_yolo(text, names)  # declares no error: every bad line is a problem with its index
    check_parsed(p)
    assert all(isinstance(r.index, int) and r.index >= 1 for r in p.problems)


@SETTINGS
@given(st.lists(st.tuples(st.text(max_size=6), number_text, number_text, number_text, number_text), max_size=4),
       st.binary(max_size=40))
def test_voc_parser(objects, junk):
    from xml.sax.saxutils import escape

    body = "".join(f"<object><name>{escape(n)}</name><bndbox><xmin>{escape(a)}</xmin><ymin>{escape(b)}</ymin>"
                   f"<xmax>{escape(c)}</xmax><ymax>{escape(d)}</ymax></bndbox></object>" for n, a, b, c, d in objects)
    for doc in (f"<annotation><size><width>50</width><height>40</height></size>{body}</annotation>".encode(), junk):
        check_parsed(allowed(parse_voc, doc))


CVAT_TAGS = ["box", "polygon", "mask", "ellipse", "tag", "points", "polyline", "cuboid", "skeleton", "track", "x"]
CVAT_KEYS = ["label", "xtl", "ytl", "xbr", "ybr", "rotation", "points", "rle", "left", "top", "width", "height",
             "cx", "cy", "rx", "ry"]
cvat_value = st.one_of(number_text, st.text(max_size=8), st.sampled_from(["1,2;3,4;5,6", "0, 6", "2, 2, 2", "cat"]))


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(CVAT_TAGS), st.dictionaries(st.sampled_from(CVAT_KEYS), cvat_value,
                                                                      max_size=8)), max_size=5),
       st.tuples(cvat_value, cvat_value), st.binary(max_size=40))
def test_cvat_parser(shapes, size, junk):
    from xml.sax.saxutils import quoteattr

    from pipeline.ingest.cvat import parse_cvat

    body = "".join(f"<{tag} " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"
                   for tag, attrs in shapes)
    image = f'<image id="0" name="x.png" width={quoteattr(size[0])} height={quoteattr(size[1])}>'
    for doc in (f"<annotations>{image}{body}</image></annotations>".encode(), junk):
        got = allowed(parse_cvat, doc)
        if isinstance(got, AnnotationError):
            continue
        per_image, problems = got
        for _, _, p in per_image:
            check_parsed(p)
            if isinstance(p, Parsed):
                assert all(isinstance(r.index, int) and r.index >= 0 for r in p.problems)


@SETTINGS
@given(st.one_of(st.binary(max_size=60), hostile.map(lambda v: json.dumps({"names": v}, default=str).encode())))
def test_names_files(data):
    allowed(parse_data_yaml, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    got = allowed(parse_classes_txt, text)
    if not isinstance(got, AnnotationError):
        assert len(set(got)) == len(got) and all(isinstance(n, str) and n for n in got)


# --- readers on generated trees -------------------------------------------------------------

PNG = io.BytesIO()
Image.new("RGB", (50, 40)).save(PNG, format="PNG")


def _dump(doc) -> bytes:
    return json.dumps(doc, default=str, allow_nan=True).encode()


def _accounted(root: Path, items: list) -> None:
    """Each file of the tree exactly once (a candidate, a file-level row, or counted: an annotation or
    index file read, unlisted, ignored); a file read and then refused as a whole counts as refused only
    (``pipeline.ingest.fates``); no path named twice."""
    cands = [c for c in items if isinstance(c, Candidate) and c.path]  # not the images inside a labelme file
    rows = [r for r in items if isinstance(r, Rejected) and r.index is None]
    refused = {r.path for r in rows}
    skipped = [s.path for s in items if isinstance(s, Skipped)
               and not (s.kind in ("annotation", "index") and s.path in refused)]
    named = [c.source.path for c in cands] + [r.path for r in rows] + skipped
    assert len(named) == len(set(named)), named
    assert set(named) == {p.name for p in root.iterdir()}
    assert all(" at 0x" not in r.detail and r.reason for r in items if isinstance(r, Rejected))


@settings(max_examples=max(25, EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["labelme", "coco", "createml", "voc", "yolo", "cvat"]),
       st.lists(st.one_of(mutated(LABELME), mutated(COCO), mutated(CREATEML), hostile,
                          st.binary(max_size=30)), min_size=1, max_size=3))
def test_readers_account_for_every_file(fmt, docs):
    from pipeline.ingest.cvat import read_cvat

    readers = {"labelme": read_labelme, "coco": read_coco, "createml": read_createml, "voc": read_voc,
               "yolo": read_yolo, "cvat": read_cvat}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "x.png").write_bytes(PNG.getvalue())
        (root / "y.png").write_bytes(PNG.getvalue())
        ext = {"voc": ".xml", "cvat": ".xml", "yolo": ".txt"}.get(fmt, ".json")
        for i, doc in enumerate(docs):
            name = ["x", "y", "z"][i] + ext
            (root / name).write_bytes(doc if isinstance(doc, bytes) else _dump(doc))
        if fmt == "yolo":
            (root / "classes.txt").write_bytes(_dump(docs[0]) if not isinstance(docs[0], bytes) else docs[0])
        try:
            items = list(readers[fmt](root))
        except InputError as err:  # a COCO or CVAT tree must hold one of its files (or one refused as such)
            assert (fmt, str(err).split(": ", 1)[1][:24]) in {("coco", "no COCO file found (a *."),
                                                              ("cvat", "no CVAT for images XML f")}, err
            return
        _accounted(root, items)
