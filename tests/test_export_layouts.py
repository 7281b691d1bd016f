"""The layouts each export writes, as their trainers read them (file by file)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import yaml

from pipeline.core.errors import ConfigError
from pipeline.export import export, flat_names
from pipeline.export.yolo import bridged
from pipeline.datasets import load_dataset
from pipeline.record import Object, Sample, Source, save_dataset
from tests.export_data import make_detection


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".pipeline-output.json")


def roboflow_like(root: Path) -> Path:
    """A canonical dataset whose ids are a Roboflow tree's paths (``<ds>/<split>/images/x.jpg``),
    with the same file name in two splits and two names differing only in case and extension."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    ids = ["sharks/train/images/a.jpg", "sharks/valid/images/a.jpg", "sharks/train/images/B.png",
           "sharks/train/images/b.jpg", "sharks/test/images/c.jpg", "sharks/train/images/bg.jpg"]
    samples = []
    for i, sid in enumerate(ids):
        ext = PurePosixPath(sid).suffix
        Image.fromarray(np.full((20, 30, 3), 10 * i, np.uint8)).save(root / "images" / f"{i}{ext}")
        split = {"train": "train", "valid": "val", "test": "test"}[sid.split("/")[1]]
        objs = () if "bg" in sid else (
            Object("shark", (2.0, 3.0, 12.0, 9.0)),
            Object("fish", (-1.0, 0.0, 31.0, 20.5), ((0.0, 0.0, 30.0, 0.0, 15.0, 20.0),)))
        samples.append(Sample(id=sid, image=f"images/{i}{ext}", width=30, height=20, channels=3, objects=objs,
                              split=split, source=Source("yolo", sid)))
    save_dataset(root, samples, ["shark", "fish"], [])
    return root


def ultralytics_label(image: str) -> str:
    """Ultralytics' img2label_paths: the last /images/ becomes /labels/, the extension .txt."""
    a, b = "/images/", "/labels/"
    return b.join(image.rsplit(a, 1)).rsplit(".", 1)[0] + ".txt"


def test_yolo_layout_is_flat_per_split_and_every_image_pairs_with_its_label(tmp_path):
    ds = load_dataset(roboflow_like(tmp_path / "ds"))
    summary = export(ds, tmp_path / "y", "yolo")
    out = tmp_path / "y"
    images = [f for f in files(out) if f.startswith("images/")]
    assert all(len(PurePosixPath(f).parts) == 3 for f in images), images  # images/<split>/<file>
    assert sorted(PurePosixPath(f).parts[1] for f in images) == ["test", "train", "train", "train", "train", "val"]
    stems = [PurePosixPath(f).stem.lower() for f in images]
    assert len(set(stems)) == len(stems)  # a/a, B/b: unique even ignoring case and extension
    for f in images:
        assert (out / ultralytics_label(str(out / f))).is_file(), f
    labels = [f for f in files(out) if f.startswith("labels/")]
    assert len(labels) == len(images) == 6
    assert sum(1 for f in labels if (out / f).read_text() == "") == 1  # the background image
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
                    "test": "images/test", "names": {0: "shark", 1: "fish"}}
    assert Path(data["path"]).is_absolute()
    assert summary["splits"] == {"train": 4, "val": 1, "test": 1} and summary["polygons_not_written"] == 5


@pytest.mark.parametrize("task, tokens", [("detect", {5}), ("segment", None)])
def test_yolo_rows_are_one_kind_per_task_normalized_and_clipped(tmp_path, task, tokens):
    ds = load_dataset(roboflow_like(tmp_path / "ds"))
    export(ds, tmp_path / "y", "yolo", task=task)
    for f in (tmp_path / "y" / "labels").rglob("*.txt"):
        for line in f.read_text().splitlines():
            k, *vals = line.split()
            assert k in ("0", "1")
            if task == "detect":
                assert len(vals) == 4
            else:
                assert len(vals) >= 6 and len(vals) % 2 == 0
            assert all(len(v.split(".")[1]) == 6 and 0.0 <= float(v) <= 1.0 for v in vals), line
    first = (tmp_path / "y" / "labels" / "test" / "c.txt").read_text().splitlines()
    if task == "detect":  # the box (-1, 0, 31, 20.5) on 30x20 is clipped to the image
        assert first == ["0 0.233333 0.300000 0.333333 0.300000", "1 0.500000 0.500000 1.000000 1.000000"]
    else:  # a box-only object becomes its rectangle, a polygon stays itself
        assert first == ["0 0.066667 0.150000 0.400000 0.150000 0.400000 0.450000 0.066667 0.450000",
                         "1 0.000000 0.000000 1.000000 0.000000 0.500000 1.000000"]


def test_bridged_parts_make_one_polygon_with_the_same_area_and_vertices():
    def area(p):
        x, y = np.array(p[0::2]), np.array(p[1::2])
        return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    parts = ((0, 0, 4, 0, 4, 4, 0, 4), (10, 0, 14, 0, 12, 3), (20, 10, 24, 10, 24, 14, 20, 14))
    joined = bridged(tuple(tuple(map(float, p)) for p in parts))
    assert area(joined) == pytest.approx(sum(area(p) for p in parts))
    pts = {(joined[i], joined[i + 1]) for i in range(0, len(joined), 2)}
    assert pts == {(float(p[i]), float(p[i + 1])) for p in parts for i in range(0, len(p), 2)}
    assert bridged(((0.0, 0.0, 1.0, 0.0, 1.0, 1.0),)) == (0.0, 0.0, 1.0, 0.0, 1.0, 1.0)
    many = tuple((3.0 * i, 0.0, 3.0 * i + 2, 0.0, 3.0 * i + 1, 2.0) for i in range(1500))  # a traced mask's blobs
    assert area(bridged(many)) == pytest.approx(1500 * 2.0)  # no recursion, no area from the bridges


def test_coco_layout_one_file_per_split_file_name_relative_to_its_images(tmp_path):
    ds = load_dataset(roboflow_like(tmp_path / "ds"))
    export(ds, tmp_path / "c", "coco", task="segment")
    out = tmp_path / "c"
    assert sorted(p.name for p in (out / "annotations").iterdir()) == [
        "instances_test.json", "instances_train.json", "instances_val.json"]
    ids = []
    for split in ("train", "val", "test"):
        doc = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        assert doc["categories"] == [{"id": 1, "name": "shark", "supercategory": ""},
                                     {"id": 2, "name": "fish", "supercategory": ""}]
        for im in doc["images"]:
            assert "/" not in im["file_name"] and (out / "images" / split / im["file_name"]).is_file()
            ids.append(im["id"])
        for a in doc["annotations"]:
            assert a["iscrowd"] == 0 and len(a["bbox"]) == 4 and a["segmentation"] and a["area"] > 0
    assert sorted(ids) == list(range(1, 7))
    by_name = {PurePosixPath(s.id).as_posix(): s for s in ds.samples}
    first = sorted(by_name)  # ids 1..N in sorted sample-id order
    doc = json.loads((out / "annotations" / "instances_test.json").read_text())
    assert doc["images"][0]["id"] == first.index("sharks/test/images/c.jpg") + 1
    shark = next(a for a in doc["annotations"] if a["category_id"] == 1)
    assert shark["bbox"] == [2.0, 3.0, 10.0, 6.0] and shark["area"] == 60.0
    assert shark["segmentation"] == [[2.0, 3.0, 12.0, 3.0, 12.0, 9.0, 2.0, 9.0]]
    export(ds, tmp_path / "d", "coco")  # detect: a box-only object has no segmentation
    doc = json.loads((tmp_path / "d" / "annotations" / "instances_test.json").read_text())
    assert [a["segmentation"] for a in doc["annotations"]] == [[], [[0.0, 0.0, 30.0, 0.0, 15.0, 20.0]]]
    assert [a["area"] for a in doc["annotations"]] == [60.0, 300.0]


def test_voc_devkit_layout_with_image_sets(tmp_path):
    ds = load_dataset(roboflow_like(tmp_path / "ds"))
    summary = export(ds, tmp_path / "v", "voc")
    out = tmp_path / "v"
    tops = sorted({PurePosixPath(f).parts[0] for f in files(out)})
    assert tops == ["Annotations", "ImageSets", "JPEGImages"]
    sets = {p.stem: p.read_text().split() for p in (out / "ImageSets" / "Main").iterdir()}
    assert sorted(sets) == ["test", "train", "trainval", "val"]
    assert sorted(sets["trainval"]) == sorted(sets["train"] + sets["val"]) and len(sets["train"]) == 4
    for stem in sets["trainval"] + sets["test"]:
        xml = (out / "Annotations" / f"{stem}.xml").read_text()
        name = xml.split("<filename>")[1].split("</filename>")[0]
        assert PurePosixPath(name).stem == stem and (out / "JPEGImages" / name).is_file()
        assert "<segmented>0</segmented>" in xml and "<width>30</width>" in xml
    c = (out / "Annotations" / f"{sets['test'][0]}.xml").read_text()
    assert "<xmin>3</xmin>" in c and "<ymin>4</ymin>" in c and "<xmax>12</xmax>" in c  # 1-based pixel indices
    assert "<xmin>1</xmin>" in c and "<xmax>30</xmax>" in c and "<ymax>20</ymax>" in c  # clipped box: whole image
    assert summary["polygons_dropped"] == 5


def test_voc_counts_the_boxes_it_rounds_to_whole_pixels(tmp_path):
    """VOC holds integers: a fractional box moves (halves to even) and the summary says how many did."""
    from PIL import Image

    from pipeline.ingest import ingest
    from pipeline.config import IngestParams

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "0.png")
    objs = (Object("a", (0.5, 0.5, 3.5, 1.5)), Object("b", (1.0, 2.0, 5.0, 6.0)))
    save_dataset(root, [Sample(id="x.png", image="images/0.png", width=8, height=8, channels=3, objects=objs,
                               split="train", source=Source("createml", "x.png"))], ["a", "b"], [])
    summary = export(load_dataset(root), tmp_path / "v", "voc")
    assert summary["boxes_rounded"] == 1
    back = ingest(tmp_path / "v", tmp_path / "back", IngestParams(workers=1, near_duplicate_bits=-1), fmt="voc")
    assert sorted((o.label, o.box) for o in back.samples[0].objects) == [
        ("a", (0.0, 0.0, 4.0, 2.0)), ("b", (1.0, 2.0, 5.0, 6.0))]


def test_labelme_and_imagefolder_put_each_split_on_top(tmp_path):
    ds = load_dataset(roboflow_like(tmp_path / "ds"))
    export(ds, tmp_path / "l", "labelme")
    got = files(tmp_path / "l")
    assert {PurePosixPath(f).parts[0] for f in got} == {"train", "val", "test"}
    for f in got:
        if f.endswith(".json"):
            doc = json.loads((tmp_path / "l" / f).read_text())
            assert doc["imagePath"] == PurePosixPath(doc["imagePath"]).name
            assert (tmp_path / "l" / PurePosixPath(f).parent / doc["imagePath"]).is_file()
    labelled = [s.__class__(**{**s.__dict__, "label": "fish" if i % 2 else "shark../x"})
                for i, s in enumerate(ds.samples)]
    save_dataset(tmp_path / "ds", labelled, ["shark../x", "fish"], [])
    summary = export(load_dataset(tmp_path / "ds"), tmp_path / "if", "imagefolder")
    got = files(tmp_path / "if")
    assert all(len(PurePosixPath(f).parts) == 3 for f in got)  # <split>/<class>/<file>
    assert {PurePosixPath(f).parts[0] for f in got} == {"train", "val", "test"}
    assert {PurePosixPath(f).parts[1] for f in got} == {"fish", summary["renamed_classes"]["shark../x"]}


def test_unsplit_samples_go_to_train_and_are_counted(tmp_path):
    ds = make_detection(tmp_path / "ds", "box", splits="none", n=3)
    summary = export(ds, tmp_path / "y", "yolo")
    assert summary["splits"] == {"train": 3} and summary["unsplit_as_train"] == 3
    assert "no val split: Ultralytics needs one" in summary["note"]
    assert yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())["train"] == "images/train"
    assert "val" not in yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())


def test_flat_names_are_stable_whatever_else_is_exported():
    def sample(sid):
        return Sample(id=sid, image="images/x.png", width=1, height=1, channels=3)

    a = flat_names([sample("d1/a.jpg"), sample("d2/a.jpg"), sample("d1/b.jpg"), sample("d1/.hidden.jpg")])
    b = flat_names([sample("d2/a.jpg"), sample("d1/a.jpg")])
    assert a["d1/a.jpg"] == b["d1/a.jpg"] and a["d1/a.jpg"] != a["d2/a.jpg"]  # both hashed, stably
    assert a["d1/b.jpg"] == "b.png" and not a["d1/.hidden.jpg"].startswith(".")
    assert all(n.endswith(".png") for n in a.values())  # the stored image's extension


def test_task_is_checked(tmp_path):
    ds = make_detection(tmp_path / "ds", "box", n=3)
    with pytest.raises(ConfigError, match="unknown export task 'segm'"):
        export(ds, tmp_path / "x", "yolo", task="segm")
    with pytest.raises(ConfigError, match="--task segment applies to yolo and coco"):
        export(ds, tmp_path / "x", "voc", task="segment")
    assert not (tmp_path / "x").exists()


def test_cli_export_yolo_segment_from_a_version(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.config import AugmentParams
    from pipeline.version import write_version

    ds = make_detection(tmp_path / "ds", "mixed", n=6)
    write_version(ds, {s.id: s.split for s in ds.samples},
                  AugmentParams(copies=1, pipeline=[{"name": "hflip", "p": 0.5}], device="cpu"), tmp_path / "v")
    res = CliRunner().invoke(app, ["export", str(tmp_path / "v"), "--format", "yolo", "--task", "segment",
                                   "--out", str(tmp_path / "y")])
    assert res.exit_code == 0, res.output
    assert "(yolo segment;" in res.output and "box-only objects written as rectangles" in res.output
    rows = [line for f in (tmp_path / "y" / "labels").rglob("*.txt") for line in f.read_text().splitlines()]
    assert rows and all(len(r.split()) >= 7 for r in rows)
    res = CliRunner().invoke(app, ["export", str(tmp_path / "v"), "--format", "voc", "--task", "segment",
                                   "--out", str(tmp_path / "z")])
    assert res.exit_code == 2 and "applies to yolo and coco" in res.output
