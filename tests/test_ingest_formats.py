"""Each format ingests a realistic generated tree with the right counts and boxes."""

import json
import os
import subprocess
import sys

import pytest

from pipeline.config import IngestParams
from pipeline.ingest import ingest
from tests.conftest import REPO, tree_digest
from tests.ingest_trees import CLASSES, SPEC, WRITERS, write_yolo


def params(**kw):
    return IngestParams(workers=1, min_size=4, **kw)


def by_name(ds):
    return {s.id.split("/")[-1]: s for s in ds.samples}


def check_spec(ds, tol=1e-3):
    got = by_name(ds)
    assert len(ds.samples) == len(SPEC), [s.id for s in ds.samples]
    for name, w, h, objs in SPEC:
        s = got[name.split("/")[-1]]
        assert (s.width, s.height) == (w, h)
        got_objs = sorted((o.label, *o.box) for o in s.objects)
        want = sorted((lab, float(x1), float(y1), float(x2), float(y2)) for lab, x1, y1, x2, y2 in objs)
        assert [g[0] for g in got_objs] == [w_[0] for w_ in want], name
        assert [g[1:] for g in got_objs] == [pytest.approx(w_[1:], abs=tol) for w_ in want], name
    assert set(ds.classes) == set(CLASSES)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_format_tree_ingests_exactly(tmp_path, fmt):
    src = WRITERS[fmt](tmp_path / "src")
    before = tree_digest(src)
    ds = ingest(src, tmp_path / "out", params(), fmt=fmt)
    assert tree_digest(src) == before
    assert ds.quarantine == (), ds.quarantine
    check_spec(ds)
    bg = by_name(ds)["img_003.jpg"]
    assert bg.objects == () and (fmt == "coco" or "background" in bg.notes)  # COCO lists it, with no objects
    from collections import Counter

    from pipeline.reports.stats import compute
    stats = compute(ds)  # what `pipeline stats --json` prints (the CLI is checked below for COCO)
    assert (stats["samples"], stats["objects"], stats["quarantined"]) == (len(SPEC), 7, 0)
    assert stats["classes"] == dict(Counter(o[0] for *_, objs in SPEC for o in objs))


def test_yolo_ultralytics_layout_keeps_split(tmp_path):
    src = write_yolo(tmp_path / "src", ultralytics=True)
    ds = ingest(src, tmp_path / "out", params(), fmt="yolo")
    check_spec(ds)
    assert by_name(ds)["img_001.jpg"].split == "val" and by_name(ds)["img_000.jpg"].split == "train"


def test_keep_background_false_quarantines_unannotated(tmp_path):
    src = WRITERS["voc"](tmp_path / "src")
    ds = ingest(src, tmp_path / "out", params(keep_background=False, on_loss="warn"), fmt="voc")
    assert [(r.path, r.reason) for r in ds.quarantine] == [("img_003.jpg", "image-without-annotation")]
    assert len(ds.samples) == len(SPEC) - 1


def test_class_map_aliases_unknown_unused_and_case(tmp_path):
    src = WRITERS["voc"](tmp_path / "src")
    xml = src / "img_001.xml"
    xml.write_text(xml.read_text().replace("<name>person</name>", "<name>Person</name>"))
    ds = ingest(src, tmp_path / "out", params(classes=("cat", "dog", "person", "bird"),
                                             aliases={"Person": "person"}), fmt="voc")
    assert ds.classes == ("cat", "dog", "person", "bird") and not ds.quarantine
    report = json.loads((ds.root / "report.json").read_text())["class_map"]
    assert report["unused"] == ["bird"] and report["unknown"] == {}
    ds = ingest(src, tmp_path / "out2", params(classes=("cat", "dog"), on_loss="warn"), fmt="voc")
    rep = json.loads((ds.root / "report.json").read_text())["class_map"]
    assert rep["unknown"] == {"Person": 1, "person": 1}
    assert rep["case_collisions"] == [["Person", "person"]]
    # The objects are refused; an image that had no other object is quarantined with them, never
    # kept as a background image.
    assert sorted((r.path, r.reason, r.index) for r in ds.quarantine) == [
        ("img_001.jpg", "annotation-unusable", None), ("img_001.xml", "unknown-class", 0),
        ("sub/img_004.jpg", "annotation-unusable", None), ("sub/img_004.xml", "unknown-class", 0)]
    assert len(ds.samples) == len(SPEC) - 2


def test_yolo_out_of_range_id_and_orphan_label(tmp_path):
    src = write_yolo(tmp_path / "src")
    (src / "img_001.txt").write_text("7 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n")
    (src / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1")
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"), fmt="yolo")
    got = sorted((r.path, r.reason, r.index) for r in ds.quarantine)
    assert got == [("img_001.txt", "class-id-out-of-range", 1), ("img_001.txt", "duplicate-object", 3),
                   ("orphan.txt", "annotation-without-image", None)]
    assert len(by_name(ds)["img_001.jpg"].objects) == 1


def test_multi_source_merge(tmp_path):
    a = WRITERS["voc"](tmp_path / "a")
    b = WRITERS["labelme"](tmp_path / "b")
    p = params(sources=({"format": "voc", "path": str(a)}, {"format": "labelme", "path": str(b), "name": "lm"}))
    ds = ingest(None, tmp_path / "out", p)
    assert len(ds.samples) == 2 * len(SPEC)
    assert {s.id.split("/")[0] for s in ds.samples} == {"a", "lm"}
    assert set(ds.classes) == set(CLASSES)
    # The same pictures in both sources are exact duplicates across sources.
    groups = json.loads((ds.root / "duplicates.json").read_text())["groups"]
    assert len(groups) == len(SPEC) and all(g["kind"] == "exact" and len(g["ids"]) == 2 for g in groups)


def test_cli_ingest_and_stats_agree(tmp_path):
    src = WRITERS["coco"](tmp_path / "src")
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipeline", *map(str, a)], cwd=tmp_path,  # noqa: E731
                                    env=env, capture_output=True, text=True, timeout=120)
    r = run("ingest", "--format", "coco", src, "--out", tmp_path / "ds")
    assert r.returncode == 0, r.stderr
    r = run("stats", tmp_path / "ds", "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["samples"] == len(SPEC)
    assert stats["objects"] == sum(len(o) for *_, o in SPEC)
    from collections import Counter
    assert stats["classes"] == dict(Counter(o[0] for *_, objs in SPEC for o in objs)) == {"cat": 3, "dog": 2, "person": 2}
    assert stats["quarantined"] == 0 and stats["duplicate_groups"] == 0
    assert stats["splits"] == {"unassigned": len(SPEC)}


def test_config_errors_name_the_key(tmp_path):
    from pipeline.config import parse_section
    from pipeline.core.errors import ConfigError

    with pytest.raises(ConfigError, match="ingest.format.*unknown format 'vocc'"):
        parse_section("ingest", {"format": "vocc"})
    with pytest.raises(ConfigError, match=r"ingest.sources.0.format"):
        parse_section("ingest", {"sources": [{"format": "png", "path": "x"}]})
    with pytest.raises(ConfigError, match=r"ingest.labelme.flags"):
        parse_section("ingest", {"labelme": {"flags": True}})
    with pytest.raises(ConfigError, match="unknown ingest format 'bogus'"):
        ingest(tmp_path, tmp_path / "out", params(), fmt="bogus")
    with pytest.raises(ConfigError, match="two sources named 'a'"):
        ingest(None, tmp_path / "out", params(sources=({"format": "voc", "path": str(tmp_path / "a")},
                                                       {"format": "yolo", "path": str(tmp_path / "x" / "a")})))


def test_cli_split_export_and_stats_with_splits(tmp_path):
    src = write_yolo(tmp_path / "src", ultralytics=True)
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipeline", *map(str, a)], cwd=tmp_path,  # noqa: E731
                                    env=env, capture_output=True, text=True, timeout=120)
    assert run("ingest", "--format", "yolo", src, "--out", "ds").returncode == 0
    (tmp_path / "keep.yaml").write_text("split: {given: keep}\n")  # train/ and val/ given, no test: said at split time
    r = run("split", "ds", "--out", "sp", "--params", "keep.yaml")
    assert r.returncode == 2 and "split(s) test would be empty" in r.stderr and not (tmp_path / "sp").exists()
    r = run("split", "ds", "--out", "sp0")  # carved: 4 given train images are enough for one test image
    assert r.returncode == 0 and "(train 3 · val 1 · test 1; seed 0; carved from the given train split: test 1)" in r.stdout
    (tmp_path / "p.yaml").write_text("split: {ratios: {train: 0.8, val: 0.2, test: 0.0}}\n")
    assert run("split", "ds", "--out", "sp", "--params", "p.yaml").returncode == 0
    r = run("export", "--format", "voc", "ds", "--out", "voc", "--splits", "sp")
    assert r.returncode == 0 and "export: 5 images in" in r.stdout, r.stderr
    assert len(list((tmp_path / "voc").rglob("*.xml"))) == 5
    r = run("stats", "ds", "--splits", "sp", "--json")
    assert json.loads(r.stdout)["splits"] == {"train": 4, "val": 1}
    r = run("export", "--format", "bogus", "ds", "--out", "x")
    assert r.returncode == 2 and "unknown export format" in r.stderr


def test_labelme_backslash_paths_image_data_and_size_mismatch(tmp_path):
    import base64
    import io

    from PIL import Image

    src = tmp_path / "src"
    (src / "ann").mkdir(parents=True)
    (src / "imgs").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(src / "imgs" / "a.png")
    buf = io.BytesIO()
    Image.new("RGB", (20, 16), (10, 200, 10)).save(buf, format="PNG")
    rect = {"label": "x", "shape_type": "rectangle", "points": [[2, 2], [10, 10]]}
    docs = {
        "a.json": {"shapes": [rect], "imagePath": "..\\imgs\\a.png", "imageWidth": 80, "imageHeight": 60},
        "gone.json": {"shapes": [rect], "imagePath": "gone.png", "imageData": base64.b64encode(buf.getvalue()).decode(),
                      "imageWidth": 20, "imageHeight": 16},
        "lost.json": {"shapes": [rect], "imagePath": "lost.png", "imageData": None},
    }
    for name, d in docs.items():
        (src / "ann" / name).write_text(json.dumps(d))
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"), fmt="labelme")
    by = {s.id: s for s in ds.samples}
    assert set(by) == {"imgs/a.png", "ann/gone.png"}
    assert "size-mismatch:declared=80x60,image=40x30" in by["imgs/a.png"].notes
    assert by["imgs/a.png"].source.annotation == "ann/a.json"
    assert "image-from-imageData" in by["ann/gone.png"].notes and by["ann/gone.png"].width == 20
    assert [(r.path, r.reason) for r in ds.quarantine] == [("ann/lost.json", "annotation-without-image")]
    # Four files: an image, two annotations read, one quarantined; the image inside gone.json is no file.
    fates = json.loads((ds.root / "report.json").read_text())["fates"]
    assert fates["files"] == {"samples": 1, "annotations": 2, "indexes": 0, "quarantined": 1, "hidden": 0,
                              "unlisted": 0, "ignored": 0, "total": 4}
    assert fates["embedded_images"] == 1
    assert fates["entries"] == {"objects": 2, "labels": 0, "refused": 0, "ignored": 0,
                                "with_quarantined_input": 1, "total": 3}


def test_declared_class_order_is_kept_and_ids_round_trip_through_a_yolo_export(tmp_path):
    """data.yaml names [person, cat, dog, bird], the labels use ids 2 and 1 only: the classes keep
    the declared order, unused names included, and a YOLO export writes the same ids back."""
    from pipeline.export import export
    from tests.layout_trees import image, write

    src = tmp_path / "src"
    write(src, "data.yaml", "train: images/train\nnames: [person, cat, dog, bird]\n")
    image(src, "images/train/a.jpg")
    write(src, "labels/train/a.txt", "2 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n")
    ds = ingest(src, tmp_path / "ds", params(), fmt="yolo")
    assert ds.classes == ("person", "cat", "dog", "bird")
    report = json.loads((ds.root / "report.json").read_text())["class_map"]
    assert report["order_from"] == ["data.yaml"] and report["unused"] == ["person", "bird"]
    export(ds, tmp_path / "exp", "yolo")
    assert sorted(line.split()[0] for line in (tmp_path / "exp" / "labels" / "train" / "a.txt").read_text()
                  .splitlines()) == ["1", "2"]
    back = ingest(tmp_path / "exp", tmp_path / "back", params(), fmt="yolo")
    assert back.classes == ds.classes
    # COCO declares its order by category id
    from tests.layout_trees import coco_doc

    src = tmp_path / "coco"
    write(src, "annotations.json", json.dumps(coco_doc([(1, "a.jpg", "a")], ["zebra", "cat", "ant"])))
    image(src, "images/a.jpg")
    assert ingest(src, tmp_path / "c", params(), fmt="coco").classes == ("zebra", "cat", "ant")
    # without a declaration (VOC) or with ingest.classes, as before
    assert ingest(WRITERS["voc"](tmp_path / "voc"), tmp_path / "v", params(), fmt="voc").classes == tuple(
        sorted(CLASSES))
