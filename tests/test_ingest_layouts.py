"""The layouts people have (tests/layout_trees.py), one row each, named and detected.

Each row: the samples (by source path, with their split), objects, classes; no
unlisted or hidden file ingested; report.json counting both; the quarantine rows
exactly; every file of the tree accounted for exactly once (accepted +
quarantined + annotation files read + unlisted + hidden = files found); the tree
byte-identical afterwards; ``--format auto`` detecting the format and giving the
same dataset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import IngestParams
from pipeline.core.errors import InputError
from pipeline.ingest import ingest
from pipeline.ingest.detect import detect_format
from tests.conftest import REPO
from tests.layout_trees import LAYOUTS, Layout, coco_2017, count_entries, voc_flat, write
from tests.test_hostile_annotations import snapshot


def params(**kw) -> IngestParams:
    return IngestParams(workers=1, min_size=4, near_duplicate_bits=-1, **kw)


def files_found(root: Path) -> set[str]:
    """Every entry that is not a real directory (files and links of any kind)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not (os.path.isdir(p) and not os.path.islink(p)):
                out.add(os.path.relpath(p, root).replace(os.sep, "/"))
    return out


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Each layout built once, ingested with its format named and with ``auto``."""
    base = tmp_path_factory.mktemp("layouts")
    out = {}
    for lay in LAYOUTS:
        src = base / lay.name / "src"
        src.mkdir(parents=True)
        lay.build(src)
        before = snapshot(src)
        named = ingest(src, base / lay.name / "named", params(on_loss="warn"), fmt=lay.format)
        auto = ingest(src, base / lay.name / "auto", params(on_loss="warn"), fmt="auto")
        out[lay.name] = (src, before, named, auto)
    return out


@pytest.mark.parametrize("lay", LAYOUTS, ids=[x.name for x in LAYOUTS])
def test_layout_ingests_exactly(ingested, lay: Layout):
    src, before, ds, _ = ingested[lay.name]
    assert snapshot(src) == before  # the source tree is only read
    got = {s.source.path: s.split for s in ds.samples}
    assert got == lay.accepted
    assert sum(len(s.objects) for s in ds.samples) == lay.objects
    report = json.loads((ds.root / "report.json").read_text())
    assert set(report["class_map"]["found"]) == lay.classes
    # the order the format declares (unused names too: ids round-trip), else the names found, sorted
    assert ds.classes == (lay.order or tuple(sorted(lay.classes)))
    files = {r.path: r.reason for r in ds.quarantine if r.index is None}
    rows = sorted((r.path, r.index, r.reason) for r in ds.quarantine if r.index is not None)
    assert files == lay.files
    assert rows == sorted(lay.rows)
    (source,) = report["sources"]
    assert source["layout"] == lay.layout
    assert (report["unlisted"], report["skipped_hidden"]) == (len(lay.unlisted), len(lay.hidden))
    assert (source["unlisted"], source["skipped_hidden"]) == (len(lay.unlisted), len(lay.hidden))
    assert set(source.get("unlisted_examples", [])) <= lay.unlisted
    assert set(source.get("skipped_hidden_examples", [])) <= lay.hidden
    assert report["inputs"] == report["accepted"] + report["quarantined_inputs"] == len(got) + len(files)
    # No unlisted or hidden file became a sample, and every file is counted exactly once.
    parts = [set(got), set(files), set(lay.annotations), set(lay.unlisted), set(lay.hidden), set(lay.ignored)]
    assert sum(len(p) for p in parts) == len(set().union(*parts)), "a file is counted twice"
    assert set().union(*parts) == files_found(src)
    # report.json's fates say the same, and add up to the files on disk and the entries in them.
    fates = source["fates"]
    assert {k: v for k, v in fates.items() if not k.endswith("_examples")} == report["fates"]  # one source
    f = fates["files"]
    assert (f["samples"], f["quarantined"], f["annotations"] + f["indexes"], f["unlisted"], f["hidden"],
            f["ignored"]) == tuple(map(len, parts))
    assert sum(v for k, v in f.items() if k != "total") == f["total"] == len(files_found(src))
    e = fates["entries"]
    parsed = lay.annotations | {p for p, why in lay.files.items() if why == "annotation-without-image"}
    assert sum(v for k, v in e.items() if k != "total") == e["total"] == count_entries(src, parsed)
    assert e["objects"] == lay.objects
    assert e["refused"] == len([r for r in lay.rows if r[2] not in ("listed-without-files", "listed-image-missing")])
    assert [x["loss"] for x in report["loss"]] == list(lay.loss)


@pytest.mark.parametrize("lay", LAYOUTS, ids=[x.name for x in LAYOUTS])
def test_layout_passes_the_default_loss_policy_or_fails_loudly(tmp_path, lay: Layout):
    """Under ``ingest.on_loss: error`` a layout either ingests, or stops with the loss line and
    leaves the earlier output as it was."""
    from pipeline.core.errors import DataLossError

    src = tmp_path / "src"
    src.mkdir()
    lay.build(src)
    out = tmp_path / "out"
    if not lay.loss:
        ingest(src, out, params(), fmt=lay.format)
        return
    ingest(src, out, params(on_loss="warn"), fmt=lay.format)
    before = snapshot(out)
    with pytest.raises(DataLossError, match=r"^data lost: .*--allow-loss \(ingest.on_loss: warn") as err:
        ingest(src, out, params(), fmt=lay.format)
    assert "\n" not in str(err.value)
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


@pytest.mark.parametrize("lay", LAYOUTS, ids=[x.name for x in LAYOUTS])
def test_auto_detects_the_layout_and_gives_the_same_dataset(ingested, lay: Layout):
    src, _, named, auto = ingested[lay.name]
    assert detect_format(src).format == lay.format
    assert (auto.root / "manifest.jsonl").read_bytes() == (named.root / "manifest.jsonl").read_bytes()
    assert (auto.root / "quarantine.jsonl").read_bytes() == (named.root / "quarantine.jsonl").read_bytes()
    report = json.loads((auto.root / "report.json").read_text())["sources"][0]
    assert report["format"] == lay.format and report["detected"]


def test_every_format_is_read_detected_documented_and_has_a_layout():
    """The one list (pipeline/core/formats.py) is what the readers, detection, the docs and these layouts cover."""
    from pipeline.core.formats import INGEST_FORMATS
    from pipeline.ingest.detect import ORDER

    assert set(ORDER) | {"imagefolder"} == set(INGEST_FORMATS)
    assert {lay.format for lay in LAYOUTS} == set(INGEST_FORMATS)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| format | layouts read |"):readme.index("`--format auto` tells")]
    arch = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    layouts = arch[arch.index("| layout (`report.json` `layout`)"):arch.index("`data.yaml` is read as")]
    for f in INGEST_FORMATS:
        assert f"`{f}`" in table, f
        assert f"`{f}`" in layouts or f"`{f}-" in layouts, f


def test_auto_refuses_an_ambiguous_tree_and_says_what_it_found(tmp_path):
    src = tmp_path / "src"
    voc_flat(src)
    coco_2017(src / "more")
    with pytest.raises(InputError, match=r"voc and coco.*VOC XML a.xml.*coco JSON.*--format"):
        detect_format(src)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    write(tmp_path / "empty", "sub/notes.md", "nothing here")
    with pytest.raises(InputError, match="no images and no annotation files"):
        detect_format(tmp_path / "empty")


def test_coco_tree_without_a_coco_file_is_an_error(tmp_path):
    write(tmp_path / "src", "images/a.txt", "x")
    with pytest.raises(InputError, match="no COCO file found"):
        ingest(tmp_path / "src", tmp_path / "out", params(), fmt="coco")


def test_voc_devkit_missing_image_says_where_it_looked(ingested):
    _, _, ds, _ = ingested["voc_devkit"]
    (row,) = [r for r in ds.quarantine if r.reason == "annotation-without-image"]
    assert "'2012_00000f.jpg' not found in VOCdevkit/VOC2012/JPEGImages/" in row.detail
    report = json.loads((ds.root / "report.json").read_text())["sources"][0]
    assert any("train.txt" in n and "test.txt" in n for n in report["notes"])
    # A stem in two split lists goes to the evaluation split, and says so; trainval repeating
    # train and val is no conflict.
    notes = {s.source.path.rsplit("/", 1)[-1]: [n for n in s.notes if n.startswith("listed-in")] for s in ds.samples}
    assert notes == {"2012_00000a.jpg": [], "2012_00000b.jpg": [], "2012_00000c.jpg": [],
                     "2012_00000d.jpg": ["listed-in:test,train"]}


def test_yolo_data_yaml_from_another_machine_is_noted(ingested):
    _, _, ds, _ = ingested["yolo_ultralytics"]
    notes = json.loads((ds.root / "report.json").read_text())["sources"][0]["notes"]
    assert any("/home/someone/datasets/coco8" in n and "another machine" in n for n in notes), notes


@pytest.mark.parametrize("image, label", [
    ("images/train/x.jpg", "labels/train/x.txt"),
    ("data/images/sharks/images/x.jpg", "data/images/sharks/labels/x.txt"),  # the last /images/ only
    ("train/images/a.b.jpeg", "train/labels/a.b.txt"),
    ("images/x.jpg", "labels/x.txt"),
    ("myimages/x.png", "myimages/x.txt"),  # not an images folder: beside the image
    ("x.jpg", "x.txt"),
])
def test_label_path_is_ultralytics_img2label_paths(image, label):
    from pipeline.ingest.datayaml import label_path

    assert label_path(image) == label


def test_yolo_split_paths_from_another_machine_map_to_their_tail_and_say_so(ingested):
    _, _, ds, _ = ingested["yolo_roboflow_foreign_paths"]
    notes = json.loads((ds.root / "report.json").read_text())["sources"][0]["notes"]
    assert ("data.yaml train: '/Users/someone/tmp/sharks-tiny-yolov9/train/images' read as train/images/, "
            "its longest trailing part found here (without 'Users/someone/tmp/sharks-tiny-yolov9')") in notes
    assert any(n.startswith("data.yaml val: '/Users/someone/tmp/sharks-tiny-yolov9/valid/images' read as "
                            "valid/images/") for n in notes), notes
    assert "train: train/images/ holds 2 images" in notes


@pytest.mark.parametrize("path, found, dropped", [
    ("/Users/someone/tmp/sharks/train/images", "train/images", "Users/someone/tmp/sharks"),
    ("C:\\Users\\me\\sharks\\valid\\images", "valid/images", "C:/Users/me/sharks"),
    ("../test/images", "test/images", ".."),
    ("data/obj_train_data/a.jpg", "obj_train_data/a.jpg", "data"),
    ("/elsewhere/nothing/here", None, ""),
])
def test_longest_tail_keeps_the_part_that_names_this_tree(path, found, dropped):
    from pipeline.ingest.datayaml import longest_tail

    here = {"train/images", "valid/images", "test/images", "obj_train_data/a.jpg", "images"}
    assert longest_tail(path, "", here.__contains__) == (found, dropped)


@pytest.mark.parametrize("name", ["darknet_cvat_yolo_1_1", "darknet_split_folders"])
def test_darknet_class_names_come_from_obj_names_never_from_the_ids(ingested, name):
    _, _, ds, _ = ingested[name]
    from tests.layout_trees import DARKNET_OBJECTS

    want = sorted(o[0] for objs in DARKNET_OBJECTS.values() for o in objs)
    assert sorted(o.label for s in ds.samples for o in s.objects) == want
    assert not any("yolo-no-class-names" in s.notes for s in ds.samples)


def test_darknet_paths_under_data_are_read_by_their_tail_and_noted(ingested):
    _, _, ds, _ = ingested["darknet_cvat_yolo_1_1"]
    notes = json.loads((ds.root / "report.json").read_text())["sources"][0]["notes"]
    assert "obj.data names 'data/obj.names': read obj.names" in notes
    assert any(n.startswith("obj.data train: 'data/train.txt' read as train.txt") for n in notes), notes
    assert "train.txt: 3 lines read without 'data', the longest trailing part found here" in notes


def test_a_refused_annotation_never_leaves_a_background_image(tmp_path):
    """A COCO annotation without category_id, a YOLO file whose every line is refused, a VOC XML
    that cannot be read: each image is quarantined with its annotation's reason, not kept empty."""
    from tests.layout_trees import coco_doc, image

    src = tmp_path / "coco"
    doc = coco_doc([(1, "a.jpg", "a"), (2, "b.jpg", "b")], ["cat", "dog", "person"])
    for a in doc["annotations"]:
        if a["image_id"] == 1:
            del a["category_id"]
    write(src, "annotations.json", json.dumps(doc))
    image(src, "images/a.jpg", 0)
    image(src, "images/b.jpg", 1)
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"), fmt="coco")
    assert [s.source.path for s in ds.samples] == ["images/b.jpg"]
    (row,) = [r for r in ds.quarantine if r.index is None]
    assert (row.path, row.reason) == ("images/a.jpg", "annotation-unusable")
    assert "every object of its annotation annotations.json was refused (unknown-category-id)" in row.detail

    src = tmp_path / "yolo"
    write(src, "classes.txt", "cat\n")
    image(src, "a.jpg", 0)
    write(src, "a.txt", "1 2 3\n")
    ds = ingest(src, tmp_path / "out2", params(on_loss="warn"), fmt="yolo")
    assert not ds.samples and {(r.path, r.reason) for r in ds.quarantine} == {
        ("a.jpg", "annotation-unusable"), ("a.txt", "bad-token-count")}

    src = tmp_path / "voc"
    image(src, "images/a.jpg", 0)
    write(src, "annotations/a.xml", "<annotation><filename>a.jpg</filename><object>")
    ds = ingest(src, tmp_path / "out3", params(on_loss="warn"), fmt="voc")
    assert not ds.samples and {(r.path, r.reason) for r in ds.quarantine} == {
        ("images/a.jpg", "annotation-unusable"), ("annotations/a.xml", "malformed-xml")}


@pytest.mark.parametrize("build, fmt, message", [
    ("mit_labelme", "auto", r"MIT LabelMe XML: not supported \(Annotations/street/a.xml: <annotation> whose "
                            r"<object> holds <polygon><pt>\); convert it"),
    ("mit_labelme", "voc", "MIT LabelMe XML: not supported"),
    ("dota_in_yolo_layout", "auto", r"DOTA / oriented boxes: not supported \(labels/a.txt line 3: eight corner "
                                    r"coordinates and a class name\)"),
    ("dota_in_yolo_layout", "yolo", "DOTA / oriented boxes: not supported"),
    ("cvat_task", "voc", r"annotations.xml is CVAT for images XML \(root <annotations>\), not VOC; read the "
                         r"tree with --format cvat"),
])
def test_formats_refused_by_name_are_one_clear_error(tmp_path, build, fmt, message):
    import tests.layout_trees as trees

    src = tmp_path / "src"
    getattr(trees, build)(src)
    with pytest.raises(InputError, match=message):
        ingest(src, tmp_path / "out", params(), fmt=fmt)
    assert not (tmp_path / "out").exists()


def test_tfrecord_alone_is_refused_by_name(tmp_path):
    write(tmp_path / "src", "train.tfrecord-00000-of-00002", b"\0" * 16)
    write(tmp_path / "src", "label_map.pbtxt", "item { id: 1 name: 'cat' }")
    with pytest.raises(InputError, match="TFRecord: not supported"):
        detect_format(tmp_path / "src")


def test_cvat_project_keeps_subsets_tags_and_counts_what_it_cannot_hold(ingested):
    _, _, ds, _ = ingested["cvat_project_export"]
    by_path = {s.source.path: s for s in ds.samples}
    assert by_path["images/Train/a.jpg"].label == "cat"  # the image's <tag>
    assert sorted(len(o.polygons) for o in by_path["images/Validation/d.jpg"].objects) == [0, 1, 1]  # box, polygon, mask
    assert any(n.startswith("cvat-attributes-not-kept:") for n in by_path["images/Train/b.jpg"].notes)
    (row,) = [r for r in ds.quarantine if r.index is not None]
    assert "<polyline> 'dog'" in row.detail
    notes = json.loads((ds.root / "report.json").read_text())["sources"][0]["notes"]
    assert notes == ["annotations.xml: 4 images, subsets Test, Train, Validation; 4 <attribute> values not kept "
                     "(the record has no field for them)"]


@pytest.mark.parametrize("files, fmt, message", [
    # YOLO folders whose label files pair with no image (names differ): not two classes
    ({"images/train/a.jpg": None, "labels/train/a_0.txt": "0 0.5 0.5 0.2 0.2\n"}, "auto",
     r"images/, labels/ are layout folders, not classes: the tree looks like YOLO \(images/ beside labels/"),
    # VOC-like tree read as the default ImageFolder: the evidence says what it is
    ({"Images/a.jpg": None, "Annotations/a.xml": "voc"}, "imagefolder",
     r"Annotations/, Images/ are layout folders, not classes: the tree looks like voc: VOC devkit \./ "),
    ({"train/images/a.jpg": None, "valid/images/b.jpg": None}, "imagefolder",
     r"images/ is a layout folder, not a class: the tree looks like an annotated layout's image folder"),
])
def test_imagefolder_refuses_layout_folders_as_classes(tmp_path, files, fmt, message):
    from tests.layout_trees import OBJECTS, image, labelimg_xml

    src = tmp_path / "src"
    for i, (r, text) in enumerate(files.items()):
        if text is None:
            image(src, r, i)
        else:
            write(src, r, labelimg_xml("a.jpg", OBJECTS["a"]) if text == "voc" else text)
    with pytest.raises(InputError, match=message + ".*--format"):
        ingest(src, tmp_path / "out", params(), fmt=fmt)


def test_imagefolder_names_an_unsupported_format_it_was_given(tmp_path):
    from tests.layout_trees import mit_labelme

    mit_labelme(tmp_path / "src")
    with pytest.raises(InputError, match=r"Annotations/, Images/ are layout folders, not "
                                         r"classes: the tree looks like MIT LabelMe XML: Annotations/street/a.xml"):
        ingest(tmp_path / "src", tmp_path / "out", params(), fmt="imagefolder")


def test_cli_refusal_is_one_line_and_exit_2(tmp_path):
    from tests.layout_trees import dota_in_yolo_layout

    dota_in_yolo_layout(tmp_path / "src")
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(tmp_path / "src"), "--format", "auto",
                        "--out", str(tmp_path / "ds")], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "DOTA / oriented boxes: not supported" in r.stderr
    assert not (tmp_path / "ds").exists()


def test_yolo_path_of_this_tree_needs_no_note(ingested):
    _, _, ds, _ = ingested["yolo_absolute_path_here"]
    notes = json.loads((ds.root / "report.json").read_text())["sources"][0]["notes"]
    assert notes == ["train: images/train/ holds 1 image", "val: images/val/ holds 1 image"]


def test_yolo_image_in_two_splits_goes_to_one_and_is_noted(tmp_path):
    from tests.layout_trees import image, yolo_lines

    src = tmp_path / "src"
    write(src, "data.yaml", "train: images/train\nval: images/train\nnames: [cat, dog, person]\n")
    image(src, "images/train/a.jpg")
    write(src, "labels/train/a.txt", yolo_lines("a"))
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"), fmt="auto")
    assert [(s.split, [n for n in s.notes if n.startswith("listed-in")]) for s in ds.samples] == [
        ("val", ["listed-in:train,val"])]
    report = json.loads((ds.root / "report.json").read_text())
    assert "1 image named by several splits" in report["sources"][0]["notes"][-1]
    # train is left empty: a loss, accepted here
    assert report["loss"] == [{"loss": "split-empty", "source": "src", "split": "train",
                               "named_by": "data.yaml train: images/train"}]


def test_cli_auto_prints_layout_counts(tmp_path):
    src = tmp_path / "src"
    coco_2017(src)
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(src), "--format", "auto", "--out",
                        str(tmp_path / "ds")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "source src: coco, 11 files: 3 samples · 2 annotations · 1 hidden · 5 unlisted; 4 entries: 4 objects" \
        in r.stdout
    assert f"ingest: 3 samples, 4 objects in 3 classes → {tmp_path / 'ds'} (train 2 · val 1;" in r.stdout


def test_hidden_fifos_and_links_are_counted_never_opened(tmp_path):
    """A FIFO, a looping link and a dangling link under hidden names: counted, never opened or walked
    (a reader that opened the FIFO would block: the CLI runs under a timeout)."""
    from tests.layout_trees import image

    src = tmp_path / "src"
    image(src, "cat/a.jpg")
    os.mkfifo(src / "cat" / ".pipe")
    os.symlink("..", src / ".loop")
    os.symlink("/nonexistent/x.jpg", src / "cat" / ".gone.jpg")
    (src / "__MACOSX" / "cat").mkdir(parents=True)
    os.mkfifo(src / "__MACOSX" / "cat" / "._a.jpg")
    before = snapshot(src)
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(src), "--format", "auto", "--out",
                        str(tmp_path / "ds")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert (report["accepted"], report["quarantined_inputs"], report["skipped_hidden"]) == (1, 0, 4)
    assert report["sources"][0]["skipped_hidden_examples"] == [".loop", "__MACOSX/cat/._a.jpg", "cat/.gone.jpg",
                                                               "cat/.pipe"]
    assert snapshot(src) == before


def test_sources_in_three_layouts_merge_with_auto(tmp_path):
    """VOC devkit + COCO 2017 + Ultralytics YOLO as ``ingest.sources`` with ``format: auto``."""
    from tests.layout_trees import coco_2017 as coco, voc_devkit, yolo_ultralytics

    trees = {"voc": voc_devkit, "coco": coco, "yolo": yolo_ultralytics}
    for name, build in trees.items():
        build(tmp_path / name)
    p = params(sources=tuple({"format": "auto", "path": str(tmp_path / n)} for n in trees), on_loss="warn")
    ds = ingest(None, tmp_path / "out", p)
    want = {lay.name: lay for lay in LAYOUTS}
    lays = {"voc": want["voc_devkit"], "coco": want["coco_2017"], "yolo": want["yolo_ultralytics"]}
    assert sorted(s.id for s in ds.samples) == sorted(f"{n}/{path}" for n, lay in lays.items() for path in lay.accepted)
    assert sum(len(s.objects) for s in ds.samples) == sum(lay.objects for lay in lays.values())
    report = json.loads((ds.root / "report.json").read_text())
    assert [(s["name"], s["format"], s["unlisted"], s["skipped_hidden"]) for s in report["sources"]] == [
        (n, n, len(lay.unlisted), len(lay.hidden)) for n, lay in lays.items()]
    assert report["unlisted"] == sum(len(lay.unlisted) for lay in lays.values())
