"""The loss policy: a run that loses data exits 3 with one line, and leaves the previous output alone.

Each loss the policy knows (no sample kept, a named split left empty, annotation
files giving no object, more than ``ingest.max_loss`` quarantined or refused) is
built as a small tree and run through the CLI, the DVC stage and the library;
``--allow-loss`` / ``ingest.on_loss: warn`` accept it with the same line. Also
here: a refused annotation never becomes a background image, and what a user must
know after ingest (pictures under two classes, duplicates) is in its own summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import IngestParams, parse_section
from pipeline.core.errors import ConfigError, DataLossError
from pipeline.ingest import ingest
from tests.conftest import REPO, make_imagefolder
from tests.layout_trees import CLASSES, coco_doc, image, labelimg_xml, write, yolo_lines
from tests.test_hostile_annotations import snapshot


def params(**kw) -> IngestParams:
    return IngestParams(**{"workers": 1, "min_size": 4, "near_duplicate_bits": -1, **kw})


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# -- trees that lose data ---------------------------------------------------------------------

def yolo_missing_val(root: Path) -> None:
    """data.yaml names a val folder that is not there."""
    write(root, "data.yaml", "train: images/train\nval: images/val\nnames: [cat, dog, person]\n")
    for k in "ab":
        image(root, f"images/train/{k}.jpg")
        write(root, f"labels/train/{k}.txt", yolo_lines(k))


def voc_val_list_missing(root: Path) -> None:
    """ImageSets/Main/val.txt lists stems with neither XML nor image."""
    for k in "ab":
        image(root, f"JPEGImages/{k}.jpg")
        write(root, f"Annotations/{k}.xml", labelimg_xml(f"{k}.jpg", [("cat", 2, 3, 20, 30)]))
    write(root, "ImageSets/Main/train.txt", "a\nb\n")
    write(root, "ImageSets/Main/val.txt", "c\nd\n")


def coco_val_images_missing(root: Path) -> None:
    """instances_val.json lists images none of which is in the tree."""
    write(root, "annotations/instances_train.json", json.dumps(coco_doc([(1, "a.jpg", "a")], CLASSES)))
    write(root, "annotations/instances_val.json", json.dumps(coco_doc([(1, "c.jpg", "c")], CLASSES)))
    image(root, "images/train/a.jpg")


def yolo_empty_labels(root: Path) -> None:
    """Every label file is empty: annotation files, no object (a failed export)."""
    write(root, "classes.txt", "cat\n")
    for k in "abc":
        image(root, f"{k}.jpg")
        write(root, f"{k}.txt", "")


def labelme_regions_only(root: Path) -> None:
    """Shapes, but only region markers (counted as ignored): no object read."""
    for k in "ab":
        image(root, f"{k}.jpg")
        write(root, f"{k}.json", json.dumps({"shapes": [{"label": "__ignore__", "shape_type": "rectangle",
                                                          "points": [[1, 1], [9, 9]]}], "imagePath": f"{k}.jpg"}))


def all_too_small(root: Path) -> None:
    make_imagefolder(root, classes=2, per_class=3, size=6)


LOSSES = [
    ("yolo", yolo_missing_val, "src: split val named by data.yaml val: images/val kept no sample"),
    ("voc", voc_val_list_missing, "src: split val named by ImageSets/Main/val.txt kept no sample"),
    ("coco", coco_val_images_missing, "src: split val named by annotations/instances_val.json kept no sample"),
    ("yolo", yolo_empty_labels, "src: 3 annotation files gave no object (no entry in them)"),
    ("labelme", labelme_regions_only, "src: 2 annotation files gave no object (2 entries in them, none an object)"),
    ("imagefolder", all_too_small, "no sample kept; 6 of 6 inputs quarantined (100.0% > ingest.max_loss 0.05: "
                                   "too-small 6)"),
]


@pytest.mark.parametrize("fmt, build, said", LOSSES, ids=[b.__name__ for _, b, _ in LOSSES])
def test_a_loss_exits_3_with_one_line_and_allow_loss_accepts_it(tmp_path, fmt, build, said):
    build(tmp_path / "src")
    r = cli("ingest", "src", "--format", fmt, "--out", "ds", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: data lost: {said}")
    assert "to accept the loss, run with --allow-loss (ingest.on_loss: warn in params.yaml)" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing written, no leftovers
    r = cli("ingest", "src", "--format", fmt, "--out", "ds", "--allow-loss", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warning = r.stdout.splitlines()[-1]  # the same line, after the summary
    assert warning.startswith(f"warning: data lost: {said}") and warning.endswith("accepted (ingest.on_loss: warn)")
    assert json.loads((tmp_path / "ds" / "report.json").read_text())["loss"]
    j = json.loads(cli("ingest", "src", "--format", fmt, "--out", "ds", "--allow-loss", "--json",
                       cwd=tmp_path).stdout)
    assert j["loss"] and j["fates"]["files"]["total"]


def test_a_refused_run_leaves_the_previous_output_untouched(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=3, size=12)
    ingest(src, tmp_path / "out", params())
    before = snapshot(tmp_path / "out")
    with pytest.raises(DataLossError, match=r"^data lost: no sample kept; 6 of 6 inputs quarantined .*too-small 6"):
        ingest(src, tmp_path / "out", params(min_size=16))
    assert snapshot(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    ds = ingest(src, tmp_path / "out", params(min_size=16, on_loss="warn"))  # accepted: written, and said
    assert not ds.samples
    assert [x["loss"] for x in json.loads((ds.root / "report.json").read_text())["loss"]] == [
        "no-samples", "quarantined"]


def test_max_loss_is_the_share_that_is_not_a_loss(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=10, size=12)
    (src / "class0" / "broken.png").write_bytes(b"not a png")  # 1 of 21: under 0.05
    ingest(src, tmp_path / "a", params())
    (src / "class1" / "broken.png").write_bytes(b"not a png")  # 2 of 22: over
    with pytest.raises(DataLossError, match=r"2 of 22 inputs quarantined \(9.1% > ingest.max_loss 0.05: "
                                            r"not-an-image 2\).*or raise ingest.max_loss$"):
        ingest(src, tmp_path / "b", params())
    ingest(src, tmp_path / "b", params(max_loss=0.1))


def test_refused_objects_over_the_share_are_a_loss(tmp_path):
    src = tmp_path / "src"
    for k in "abcd":
        image(src, f"{k}.jpg")
        objs = [("cat", 2, 3, 20, 30), ("dog", 5, 5, 40, 35)] + ([("cat", 30, 30, 30, 38)] if k == "a" else [])
        write(src, f"{k}.xml", labelimg_xml(f"{k}.jpg", objs))
    with pytest.raises(DataLossError, match=r"^data lost: 1 of 9 object entries refused \(11.1% > ingest.max_loss "
                                            r"0.05: zero-area-box 1\)"):
        ingest(src, tmp_path / "out", params(), fmt="voc")
    ds = ingest(src, tmp_path / "out", params(max_loss=0.2), fmt="voc")
    assert sum(len(s.objects) for s in ds.samples) == 8


def test_the_dvc_stage_fails_the_same_way(tmp_path):
    all_too_small(tmp_path / "src")
    (tmp_path / "params.yaml").write_text("ingest: {workers: 1}\n")
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "stages.ingest", "--params", str(tmp_path / "params.yaml"), "--src",
           str(tmp_path / "src"), "--out", str(tmp_path / "ds"), "--stats", str(tmp_path / "stats.json")]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and r.stderr.startswith("ingest: error: data lost: no sample kept; 6 of 6"), r.stderr
    assert not (tmp_path / "ds").exists() and not (tmp_path / "stats.json").exists()
    (tmp_path / "params.yaml").write_text("ingest: {workers: 1, on_loss: warn}\n")
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "warning: data lost: no sample kept" in r.stdout, r.stderr


@pytest.mark.parametrize("key, value, said", [
    ("on_loss", "ignore", "on_loss"), ("max_loss", 1.5, "max_loss"), ("max_loss", -0.1, "max_loss")])
def test_the_knobs_are_checked_up_front(key, value, said):
    with pytest.raises(ConfigError, match=said):
        parse_section("ingest", {key: value})


# -- a refused annotation is never a background image ------------------------------------------

def test_objects_refused_after_decode_quarantine_their_image(tmp_path):
    """Every box of a.xml is degenerate, outside the image or a duplicate: a.jpg is quarantined
    with the reasons; bg.jpg has no annotation at all and stays a background image."""
    src = tmp_path / "src"
    for k in ("a", "b", "bg"):
        image(src, f"{k}.jpg")
    write(src, "a.xml", labelimg_xml("a.jpg", [("cat", 5, 5, 5, 20), ("cat", 100, 100, 120, 120)]))
    write(src, "b.xml", labelimg_xml("b.jpg", [("dog", 1, 1, 30, 30), ("dog", 1, 1, 30, 30)]))
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"), fmt="voc")
    assert sorted((s.source.path, len(s.objects)) for s in ds.samples) == [("b.jpg", 1), ("bg.jpg", 0)]
    assert "background" in next(s for s in ds.samples if s.source.path == "bg.jpg").notes
    rows = {(r.path, r.index): r for r in ds.quarantine}
    assert rows["a.jpg", None].reason == "annotation-unusable"
    assert rows["a.jpg", None].detail == ("every object of its annotation a.xml was refused after decode "
                                          "(outside-image, zero-area-box)")
    assert {(p, i, r.reason) for (p, i), r in rows.items() if i is not None} == {
        ("a.xml", 0, "zero-area-box"), ("a.xml", 1, "outside-image"), ("b.xml", 1, "duplicate-object")}
    e = json.loads((ds.root / "report.json").read_text())["fates"]["entries"]
    assert (e["objects"], e["refused"], e["total"]) == (1, 3, 4)


def test_objects_of_unknown_classes_quarantine_an_image_left_without_any(tmp_path):
    src = tmp_path / "src"
    image(src, "a.jpg")
    image(src, "b.jpg")
    write(src, "a.xml", labelimg_xml("a.jpg", [("zebra", 2, 3, 20, 30)]))
    write(src, "b.xml", labelimg_xml("b.jpg", [("zebra", 2, 3, 20, 30), ("cat", 5, 5, 40, 35)]))
    ds = ingest(src, tmp_path / "out", params(classes=("cat",), on_loss="warn"), fmt="voc")
    assert [(s.source.path, [o.label for o in s.objects]) for s in ds.samples] == [("b.jpg", ["cat"])]
    assert {(r.path, r.reason) for r in ds.quarantine if r.index is None} == {("a.jpg", "annotation-unusable")}


# -- what a user must know is in ingest's own summary --------------------------------------------

def test_the_summary_names_pictures_under_two_classes_and_counts_duplicates(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=5, size=12)
    (src / "class1" / "copied.png").write_bytes((src / "class0" / "001.png").read_bytes())  # an ant among bees
    (src / "class0" / "again.png").write_bytes((src / "class0" / "002.png").read_bytes())
    r = cli("ingest", "src", "--out", "ds", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "source src: imagefolder, 12 files: 12 samples"
    assert lines[1].endswith("(no splits given; nothing quarantined; duplicates: 2 exact groups)")
    assert lines[2] == "  1 picture filed under several classes: class0/001.png, class1/copied.png (class0, class1)"
    j = json.loads(cli("ingest", "src", "--out", "ds", "--json", cwd=tmp_path).stdout)
    assert j["duplicates"] == {"groups": 2, "exact": 2, "near": 0, "samples": 4, "label_conflicts": 1,
                               "label_conflict_examples": [{"ids": ["class0/001.png", "class1/copied.png"],
                                                            "labels": ["class0", "class1"]}]}
    assert j["loss"] == [] and j["fates"]["files"]["samples"] == 12
    stats = json.loads(cli("stats", "ds", "--json", cwd=tmp_path).stdout)  # the same numbers as `pipeline stats`
    assert (stats["duplicate_groups"], stats["duplicate_label_conflicts"]) == (2, 1)
