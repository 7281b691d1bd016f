"""Source trees in the layouts real tools write, generated (tiny random images, no binaries).

Shapes taken from the tools themselves: labelImg's ``pascal_voc_io.py`` (flat XML
beside the image), the VOC devkit as Datumaro's ``tests/assets/voc_dataset`` holds
it (``Annotations/``, ``JPEGImages/``, ``ImageSets/{Main,Segmentation}``,
``SegmentationClass/``, ``SegmentationObject/``; ``Main`` also holds per-class
``<class>_train.txt`` lists), COCO 2017 (``annotations/{instances,captions,
person_keypoints}_<split>2017.json`` beside ``<split>2017/``), Datumaro's
``coco_instances`` (``images/<split>/``), labelme2coco (``annotations.json``,
``JPEGImages/``, ``Visualization/``), Roboflow's COCO and YOLOv8 exports
(``train/``, ``valid/``, ``test/``, ``README.roboflow.txt``), and Ultralytics'
dataset docs (``data.yaml`` with ``path``, folder / list / ``.txt`` splits, names
as a list or a mapping). Each builder returns what a correct ingest must give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.ingest_trees import draw

Box = tuple[str, float, float, float, float]  # label, x1, y1, x2, y2 in continuous pixels
W, H = 48, 40
OBJECTS: dict[str, list[Box]] = {
    "a": [("cat", 2, 3, 20, 30)],
    "b": [("dog", 5, 5, 40, 35), ("cat", 1, 1, 10, 10)],
    "c": [("person", 10, 2, 30, 38)],
    "d": [("dog", 0, 0, 48, 40), ("person", 20, 10, 30, 20), ("cat", 30, 5, 45, 15)],
    "e": [("cat", 4, 4, 12, 12)],
}


@dataclass(frozen=True)
class Layout:
    """A tree and what ingesting it must give."""

    name: str
    format: str  # what --format auto must detect
    layout: str  # report.json sources[0].layout
    build: Callable[[Path], None]
    accepted: dict[str, str | None]  # source path -> split
    objects: int
    classes: frozenset[str]
    unlisted: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()
    annotations: frozenset[str] = frozenset()  # annotation / index / names files read
    files: dict[str, str] = field(default_factory=dict)  # file-level quarantine rows: path -> reason
    rows: tuple[tuple[str, int, str], ...] = ()  # object-level rows: (path, index, reason)
    ignored: frozenset[str] = frozenset()  # files the format passes over on purpose
    loss: tuple[str, ...] = ()  # what the default loss policy refuses (pipeline.ingest.loss findings)
    order: tuple[str, ...] = ()  # the class order the format declares (unused names too); () = found, sorted


def write(root: Path, rel: str, data: str | bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)


def image(root: Path, rel: str, seed: int = 0) -> None:
    draw(root / rel, W, H, seed)


def labelimg_xml(filename: str, objs: list[Box], folder: str = "images") -> str:
    """What labelImg's ``PascalVocWriter`` writes (1-based integer corners, pretty printed)."""
    o = "".join(
        f"\t<object>\n\t\t<name>{lab}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x1 + 1:g}</xmin>\n\t\t\t<ymin>{y1 + 1:g}</ymin>\n"
        f"\t\t\t<xmax>{x2:g}</xmax>\n\t\t\t<ymax>{y2:g}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for lab, x1, y1, x2, y2 in objs)
    return (f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n"
            f"\t<path>C:\\Users\\someone\\{folder}\\{filename}</path>\n\t<source>\n\t\t<database>Unknown</database>\n"
            f"\t</source>\n\t<size>\n\t\t<width>{W}</width>\n\t\t<height>{H}</height>\n\t\t<depth>3</depth>\n"
            f"\t</size>\n\t<segmented>0</segmented>\n{o}</annotation>\n")


def coco_doc(images: list[tuple[int, str, str]], classes: list[str]) -> dict:
    """An instances file: ``images`` [(id, file_name, key into OBJECTS)], boxes as [x, y, w, h]."""
    anns = []
    for iid, _, key in images:
        for lab, x1, y1, x2, y2 in OBJECTS[key]:
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": classes.index(lab) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                         "segmentation": []})
    return {"info": {"description": "generated", "version": "1.0", "year": 2017},
            "licenses": [{"id": 1, "name": "CC BY 4.0", "url": ""}],
            "images": [{"id": iid, "file_name": fn, "width": W, "height": H, "license": 1}
                       for iid, fn, _ in images],
            "annotations": anns,
            "categories": [{"id": k + 1, "name": n, "supercategory": "animal"} for k, n in enumerate(classes)]}


CLASSES = ["cat", "dog", "person"]


def yolo_lines(key: str, classes: list[str] = CLASSES) -> str:
    return "\n".join(f"{classes.index(lab)} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} "
                     f"{(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}" for lab, x1, y1, x2, y2 in OBJECTS[key]) + "\n"


def n_objects(*keys: str) -> int:
    return sum(len(OBJECTS[k]) for k in keys)


def classes_of(*keys: str) -> frozenset[str]:
    return frozenset(o[0] for k in keys for o in OBJECTS[k])


# --- VOC ----------------------------------------------------------------------------------

KIT = "VOCdevkit/VOC2012"


def voc_devkit(root: Path) -> None:
    for i, k in enumerate("abcde"):
        image(root, f"{KIT}/JPEGImages/2012_00000{k}.jpg", i)
        # <filename> case differs from the disk for "c" (resolved case-insensitively)
        fn = f"2012_00000{k}.JPG" if k == "c" else f"2012_00000{k}.jpg"
        write(root, f"{KIT}/Annotations/2012_00000{k}.xml", labelimg_xml(fn, OBJECTS[k], "VOC2012"))
    write(root, f"{KIT}/Annotations/2012_00000f.xml", labelimg_xml("2012_00000f.jpg", OBJECTS["a"]))  # no image
    main = f"{KIT}/ImageSets/Main"
    write(root, f"{main}/train.txt", "2012_00000a\n2012_00000b\n2012_00000d\n")  # d is in test.txt too
    write(root, f"{main}/val.txt", "2012_00000c\n2012_00000f\n")
    write(root, f"{main}/trainval.txt", "2012_00000a\n2012_00000b\n2012_00000c\n2012_00000f\n")
    write(root, f"{main}/test.txt", "2012_00000d\n2012_00000g\n")  # g: neither XML nor image
    write(root, f"{main}/cat_train.txt", "2012_00000a  1\n2012_00000b  1\n")  # per-class list: not a split
    write(root, f"{KIT}/ImageSets/Segmentation/train.txt", "2012_00000a\n")
    for d in ("SegmentationClass", "SegmentationObject"):
        write(root, f"{KIT}/{d}/2012_00000a.png", _png())
    write(root, "README.txt", "VOC 2012, trimmed")
    write(root, f"{KIT}/JPEGImages/.DS_Store", b"\0\0\0\1Bud1")
    image(root, f"{KIT}/JPEGImages/.ipynb_checkpoints/2012_00000a-checkpoint.jpg", 9)
    write(root, "__MACOSX/VOCdevkit/VOC2012/JPEGImages/._2012_00000a.jpg", b"\0\5\26\7")


def voc_devkit_trainval(root: Path) -> None:
    """``trainval.txt`` alone: every listed stem is train."""
    for i, k in enumerate("ab"):
        image(root, f"JPEGImages/{k}.jpg", i)
        write(root, f"Annotations/{k}.xml", labelimg_xml(f"{k}.jpg", OBJECTS[k]))
    image(root, "JPEGImages/unlisted.jpg", 5)
    write(root, "ImageSets/Main/trainval.txt", "a\nb\n")


def voc_devkit_no_lists(root: Path) -> None:
    """No ImageSets: every annotation is a sample, unannotated JPEGImages are backgrounds,
    the other folders are not samples."""
    for i, k in enumerate("ab"):
        image(root, f"JPEGImages/{k}.jpg", i)
        write(root, f"Annotations/{k}.xml", labelimg_xml(f"{k}.jpg", OBJECTS[k]))
    image(root, "JPEGImages/bg.jpg", 7)
    write(root, "SegmentationClass/a.png", _png())
    image(root, "visualisation/a_boxes.jpg", 8)


def voc_flat(root: Path) -> None:
    """labelImg: XML beside each image; README and strays are inputs (not-an-image), as before."""
    for i, k in enumerate("abc"):
        image(root, f"{k}.jpg", i)
        write(root, f"{k}.xml", labelimg_xml(f"{k}.jpg", OBJECTS[k]))
    image(root, "bg.jpg", 4)
    write(root, "README.md", "labelled with labelImg")
    write(root, ".DS_Store", b"\0\0\0\1Bud1")
    write(root, "__MACOSX/._a.jpg", b"\0\5\26\7")
    write(root, ".readme/notes.md", "hidden folder")


def voc_annotations_images(root: Path) -> None:
    """``annotations/<stem>.xml`` beside ``images/`` (lower case, as many exports write it): a devkit
    whose image folder is ``images/``; ``<filename>`` is resolved there."""
    for i, k in enumerate("ab"):
        image(root, f"images/{k}.jpg", i)
        write(root, f"annotations/{k}.xml", labelimg_xml(f"{k}.jpg", OBJECTS[k]))
    write(root, "ImageSets/Main/train.txt", "# made by split.py\na\n")
    write(root, "ImageSets/Main/val.txt", "b\n")


def voc_flat_xml_folder(root: Path) -> None:
    """Flat XML in ``xml/``, images in the sibling ``Images/``, and ImageSets lists with no devkit to
    belong to (one of them empty): the lists are counted, never read as images."""
    for i, k in enumerate("ab"):
        image(root, f"Images/{k}.jpg", i)
        write(root, f"xml/{k}.xml", labelimg_xml(f"{k}.jpg", OBJECTS[k]))
    image(root, "Images/bg.jpg", 5)
    write(root, "ImageSets/Main/train.txt", "a\nb\n")
    write(root, "ImageSets/Main/cat_train.txt", "")


# --- COCO ---------------------------------------------------------------------------------

def coco_2017(root: Path) -> None:
    write(root, "annotations/instances_train2017.json",
          json.dumps(coco_doc([(1, "000000000001.jpg", "a"), (2, "000000000002.jpg", "b")], CLASSES)))
    write(root, "annotations/instances_val2017.json", json.dumps(coco_doc([(3, "000000000003.jpg", "c")], CLASSES)))
    write(root, "annotations/captions_train2017.json", json.dumps({
        "images": [{"id": 1, "file_name": "000000000001.jpg", "width": W, "height": H}],
        "annotations": [{"id": 1, "image_id": 1, "caption": "a cat"}]}))
    write(root, "annotations/person_keypoints_val2017.json", json.dumps(coco_doc([(3, "000000000003.jpg", "c")],
                                                                                 CLASSES)))
    for i, (d, n) in enumerate([("train2017", 1), ("train2017", 2), ("val2017", 3), ("train2017", 99)]):
        image(root, f"{d}/{n:012d}.jpg", i)  # 99: in no images list
    image(root, "vis/000000000001_overlay.jpg", 7)
    write(root, "README.md", "COCO 2017, trimmed")
    write(root, ".ipynb_checkpoints/instances_train2017-checkpoint.json", "{}")


def coco_datumaro(root: Path) -> None:
    """Datumaro's ``coco_instances``: ``annotations/instances_<split>.json`` beside ``images/<split>/``."""
    write(root, "annotations/instances_train.json", json.dumps(coco_doc([(1, "a.jpg", "a"), (2, "b.jpg", "b")],
                                                                         CLASSES)))
    write(root, "annotations/instances_val.json", json.dumps(coco_doc([(1, "c.jpg", "c")], CLASSES)))
    image(root, "images/train/a.jpg", 0)
    image(root, "images/train/b.jpg", 1)
    image(root, "images/val/c.jpg", 2)


def coco_cvat(root: Path) -> None:
    """CVAT's COCO 1.0 export: ``annotations/instances_default.json``, images in ``images/default/``."""
    write(root, "annotations/instances_default.json", json.dumps(coco_doc([(1, "a.jpg", "a"), (2, "b.jpg", "b")],
                                                                           CLASSES)))
    image(root, "images/default/a.jpg", 0)
    image(root, "images/default/b.jpg", 1)


def coco_labelme2coco(root: Path) -> None:
    """labelme2coco: one ``annotations.json`` beside ``JPEGImages/`` (file_name ``JPEGImages/x.jpg``; one
    written as an absolute Windows path, as some exporters do)."""
    write(root, "annotations.json", json.dumps(coco_doc([(0, "JPEGImages/a.jpg", "a"),
                                                         (1, "C:\\Users\\me\\pets\\JPEGImages\\d.jpg", "d")],
                                                        CLASSES)))
    image(root, "JPEGImages/a.jpg", 0)
    image(root, "JPEGImages/d.jpg", 3)
    image(root, "Visualization/a.jpg", 5)
    image(root, "Visualization/d.jpg", 6)
    write(root, "__MACOSX/._annotations.json", b"\0\5\26\7")


def coco_roboflow(root: Path) -> None:
    """Roboflow's COCO export: ``<split>/_annotations.coco.json`` beside the split's images."""
    for i, (split, k) in enumerate([("train", "a"), ("train", "b"), ("valid", "c"), ("test", "d")]):
        image(root, f"{split}/{k}.rf.0123abcd.jpg", i)
    write(root, "train/_annotations.coco.json", json.dumps(coco_doc([(0, "a.rf.0123abcd.jpg", "a"),
                                                                     (1, "b.rf.0123abcd.jpg", "b")], CLASSES)))
    write(root, "valid/_annotations.coco.json", json.dumps(coco_doc([(0, "c.rf.0123abcd.jpg", "c")], CLASSES)))
    write(root, "test/_annotations.coco.json", json.dumps(coco_doc([(0, "d.rf.0123abcd.jpg", "d")], CLASSES)))
    write(root, "README.roboflow.txt", "Exported via roboflow.com")


# --- YOLO ---------------------------------------------------------------------------------

def yolo_ultralytics(root: Path) -> None:
    """coco8-like: ``path`` from someone else's machine, folders, names as a mapping."""
    write(root, "data.yaml", "path: /home/someone/datasets/coco8\ntrain: images/train\nval: images/val\n"
                             "names:\n  0: cat\n  1: dog\n  2: person\n")
    image(root, "images/train/a.jpg", 0)
    write(root, "labels/train/a.txt", yolo_lines("a"))
    image(root, "images/train/bg.jpg", 1)  # no label: a background image
    image(root, "images/val/c.jpg", 2)
    write(root, "labels/val/c.txt", yolo_lines("c"))
    image(root, "images/extra/d.jpg", 3)  # no split names it
    write(root, "labels/extra/d.txt", yolo_lines("d"))
    write(root, "labels/train.cache", b"\x80\x04cache")
    write(root, "README.md", "coco8")
    write(root, ".DS_Store", b"\0\0\0\1Bud1")


def yolo_lists(root: Path) -> None:
    """``train`` a ``.txt`` list (``./`` lines and plain ones), ``val`` a list of folders, names a list;
    an image path with two ``images`` folders takes its label from the last one."""
    write(root, "data.yaml", "path: .\ntrain: train2017.txt\nval: [images/val2017, images/sharks/images]\n"
                             "names: [cat, dog, person]\n")
    write(root, "train2017.txt", "./images/train2017/a.jpg\nimages/train2017/b.jpg\n\n"
                                 "./images/train2017/missing.jpg\n")
    for i, k in enumerate("ab"):
        image(root, f"images/train2017/{k}.jpg", i)
        write(root, f"labels/train2017/{k}.txt", yolo_lines(k))
    image(root, "images/train2017/z.jpg", 9)  # not in train2017.txt
    image(root, "images/val2017/c.jpg", 2)
    write(root, "labels/val2017/c.txt", yolo_lines("c"))
    image(root, "images/sharks/images/e.jpg", 4)
    write(root, "images/sharks/labels/e.txt", yolo_lines("e"))


def yolo_this_machine(root: Path) -> None:
    """``path`` absolute and this very tree (Ultralytics wrote it here); an absolute split entry under it."""
    write(root, "data.yaml", f"path: {root.resolve()}\ntrain: {root.resolve()}/images/train\nval: images/val\n"
                             "names: {0: cat, 1: dog, 2: person}\n")
    for split, k in (("train", "a"), ("val", "b")):
        image(root, f"images/{split}/{k}.jpg", 0)
        write(root, f"labels/{split}/{k}.txt", yolo_lines(k))


def yolo_roboflow(root: Path) -> None:
    """Roboflow YOLOv8 export: split folders with ``images``/``labels``, paths from another machine."""
    write(root, "data.yaml", "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 3\n"
                             "names: ['cat', 'dog', 'person']\n\nroboflow:\n  workspace: someone\n"
                             "  project: pets\n  version: 2\n  license: CC BY 4.0\n"
                             "  url: https://universe.roboflow.com/someone/pets/dataset/2\n")
    for i, (split, k) in enumerate([("train", "a"), ("train", "b"), ("valid", "c"), ("test", "d")]):
        image(root, f"{split}/images/{k}_jpg.rf.5f3a.jpg", i)
        write(root, f"{split}/labels/{k}_jpg.rf.5f3a.txt", yolo_lines(k))
    write(root, "README.dataset.txt", "# pets > 2023-01-01")
    write(root, "README.roboflow.txt", "Exported via roboflow.com")
    write(root, "__MACOSX/train/images/._a_jpg.rf.5f3a.jpg", b"\0\5\26\7")


def yolo_roboflow_foreign(root: Path) -> None:
    """Roboflow's YOLOv9 export as it often comes: ``train``/``val`` absolute paths of the exporting
    machine, ``test`` relative, ``nc`` and a ``roboflow:`` block; the folders are beside the yaml."""
    write(root, "data.yaml", "train: /Users/someone/tmp/sharks-tiny-yolov9/train/images\n"
                             "val: /Users/someone/tmp/sharks-tiny-yolov9/valid/images\ntest: ../test/images\n\n"
                             "nc: 3\nnames: ['cat', 'dog', 'person']\n\nroboflow:\n  workspace: someone\n"
                             "  project: sharks-tiny\n  version: 9\n  license: CC BY 4.0\n")
    for i, (split, k) in enumerate([("train", "a"), ("train", "b"), ("valid", "c"), ("test", "d")]):
        image(root, f"{split}/images/{k}_jpg.rf.9c1e.jpg", i)
        write(root, f"{split}/labels/{k}_jpg.rf.9c1e.txt", yolo_lines(k))
    write(root, "README.roboflow.txt", "Exported via roboflow.com")


DARKNET_NAMES = [f"label_{i}" for i in range(10)]  # obj.names: the ids in the label files are 2 and 4
DARKNET_OBJECTS = {"a": [("label_2", 2, 3, 20, 30)], "b": [("label_4", 5, 5, 40, 35), ("label_2", 1, 1, 10, 10)],
                   "c": [("label_4", 10, 2, 30, 38)]}


def darknet_lines(key: str) -> str:
    return "\n".join(f"{DARKNET_NAMES.index(lab)} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} "
                     f"{(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}" for lab, x1, y1, x2, y2 in DARKNET_OBJECTS[key]) + "\n"


def darknet_cvat(root: Path) -> None:
    """CVAT's "YOLO 1.1" export (Datumaro's yolo layout): ``obj.data`` with paths under ``data/``,
    ``obj.names``, ``train.txt``/``valid.txt`` listing ``data/obj_<subset>_data/<image>``, labels beside."""
    write(root, "obj.data", "classes = 10\ntrain = data/train.txt\nvalid = data/valid.txt\n"
                            "names = data/obj.names\nbackup = backup/\n")
    write(root, "obj.names", "\n".join(DARKNET_NAMES) + "\n")
    for i, (subset, k) in enumerate([("train", "a"), ("train", "b"), ("valid", "c")]):
        image(root, f"obj_{subset}_data/frame_00000{i}.jpg", i)
        write(root, f"obj_{subset}_data/frame_00000{i}.txt", darknet_lines(k))
    image(root, "obj_train_data/frame_000009.jpg", 9)  # no label file: a background image
    write(root, "train.txt", "data/obj_train_data/frame_000000.jpg\ndata/obj_train_data/frame_000001.jpg\n"
                             "data/obj_train_data/frame_000009.jpg\n")
    write(root, "valid.txt", "data/obj_valid_data/frame_000002.jpg\n")


def darknet_split_folders(root: Path) -> None:
    """``images/<split>/`` + ``labels/<split>/`` with ``obj.names`` and no ``data.yaml``."""
    write(root, "obj.names", "\n".join(DARKNET_NAMES))  # no trailing newline
    for i, (split, k) in enumerate([("train", "a"), ("train", "b"), ("val", "c")]):
        image(root, f"images/{split}/{k}.jpg", i)
        write(root, f"labels/{split}/{k}.txt", darknet_lines(k))


# --- CVAT for images 1.1 -------------------------------------------------------------------

def cvat_meta(project: bool) -> str:
    """``<meta>`` as CVAT writes it: a task, or a project holding tasks (one per subset), with its labels."""
    labels = "".join(f"<label><name>{n}</name><color>#33ddff</color><type>any</type><attributes>"
                     "<attribute><name>quality</name><mutable>False</mutable><input_type>select</input_type>"
                     "<default_value>good</default_value><values>good\nbad</values></attribute></attributes>"
                     "</label>" for n in CLASSES)
    if project:
        tasks = "".join(f"<task><id>{i}</id><name>{s}</name><size>2</size><mode>annotation</mode>"
                        f"<subset>{s}</subset></task>" for i, s in enumerate(("Train", "Validation", "Test"), 1))
        return (f"<meta><project><id>3</id><name>pets</name><tasks>{tasks}</tasks>"
                f"<subsets>Train\nValidation\nTest</subsets><labels>{labels}</labels></project>"
                "<dumped>2024-05-01 10:00:00.000000+00:00</dumped></meta>")
    return (f"<meta><task><id>7</id><name>pets</name><size>3</size><mode>annotation</mode><overlap>0</overlap>"
            f"<labels>{labels}</labels><original_size><width>{W}</width><height>{H}</height></original_size>"
            "</task><dumped>2024-05-01 10:00:00.000000+00:00</dumped></meta>")


def cvat_image(i: int, name: str, key: str | None, subset: str | None = None) -> str:
    """An ``<image>`` with each object of ``OBJECTS[key]``: the first as a box (with an attribute), the
    second as a polygon (its rectangle), the third as a mask over its box (every pixel set)."""
    shapes = []
    for k, (lab, x1, y1, x2, y2) in enumerate(OBJECTS[key] if key else []):
        if k == 0:
            shapes.append(f'    <box label="{lab}" source="manual" occluded="0" xtl="{x1:.2f}" ytl="{y1:.2f}" '
                          f'xbr="{x2:.2f}" ybr="{y2:.2f}" z_order="0">\n'
                          '      <attribute name="quality">good</attribute>\n    </box>\n')
        elif k == 1:
            shapes.append(f'    <polygon label="{lab}" source="manual" occluded="0" points="{x1:.2f},{y1:.2f};'
                          f'{x2:.2f},{y1:.2f};{x2:.2f},{y2:.2f};{x1:.2f},{y2:.2f}" z_order="0">\n    </polygon>\n')
        else:
            w, h = x2 - x1, y2 - y1
            shapes.append(f'    <mask label="{lab}" source="manual" occluded="0" rle="0, {w * h}" left="{x1}" '
                          f'top="{y1}" width="{w}" height="{h}" z_order="0">\n    </mask>\n')
    sub = f' subset="{subset}"' if subset else ""
    return f'  <image id="{i}" name="{name}" width="{W}" height="{H}"{sub}>\n' + "".join(shapes) + "  </image>\n"


def cvat_doc(project: bool, images: str, tracks: str = "") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
            f"  {cvat_meta(project)}\n{images}{tracks}</annotations>\n")


def cvat_project(root: Path) -> None:
    """A project export: one ``annotations.xml``, images in ``images/<subset>/`` (one name in two subsets),
    a polyline and a tag beside the shapes."""
    imgs = [(0, "a.jpg", "a", "Train"), (1, "b.jpg", "b", "Train"), (0, "a.jpg", "c", "Test"),
            (2, "d.jpg", "d", "Validation")]
    body = "".join(cvat_image(i, n, k, s) for i, n, k, s in imgs)
    body = body.replace('  </image>\n', '    <polyline label="dog" source="manual" occluded="0" '
                                         'points="1.00,1.00;5.00,5.00" z_order="0">\n    </polyline>\n'
                                         '    <tag label="cat" source="manual">\n    </tag>\n  </image>\n', 1)
    write(root, "annotations.xml", cvat_doc(True, body))
    for j, (_, n, _, s) in enumerate(imgs):
        image(root, f"images/{s}/{n}", j)


def cvat_task(root: Path) -> None:
    """A task export: ``annotations.xml`` and ``images/``, one image without shapes (a background)."""
    body = cvat_image(0, "a.jpg", "a") + cvat_image(1, "frames/b.jpg", "b") + cvat_image(2, "bg.jpg", None)
    write(root, "annotations.xml", cvat_doc(False, body))
    image(root, "images/a.jpg", 0)
    image(root, "images/frames/b.jpg", 1)
    image(root, "images/bg.jpg", 2)
    image(root, "images/not_in_task.jpg", 3)


def cvat_video(root: Path) -> None:
    """CVAT for video: tracks, no ``<image>``; the frames beside it are not background images."""
    track = ('  <track id="0" label="cat" source="manual">\n    <box frame="0" keyframe="1" outside="0" '
             'occluded="0" xtl="2.00" ytl="3.00" xbr="20.00" ybr="30.00" z_order="0">\n    </box>\n  </track>\n')
    write(root, "annotations.xml", cvat_doc(False, "", track))
    image(root, "images/frame_000000.jpg", 0)
    image(root, "images/frame_000001.jpg", 1)


# --- Formats refused by name ----------------------------------------------------------------

def mit_labelme(root: Path) -> None:
    """MIT LabelMe's own tree: ``Annotations/<collection>/x.xml`` (root ``<annotation>``, polygons as
    ``<pt><x/><y/></pt>``) beside ``Images/``, ``Masks/`` and ``Scribbles/`` PNGs that are not samples."""
    for i, k in enumerate("ab"):
        objs = "".join(
            f"<object><name>{lab}</name><deleted>0</deleted><verified>0</verified><occluded>no</occluded>"
            f"<attributes></attributes><parts><hasparts></hasparts><ispartof></ispartof></parts>"
            f"<date>12-Mar-2011 15:42:10</date><id>{n}</id><polygon><username>anonymous</username>"
            + "".join(f"<pt><x>{x}</x><y>{y}</y></pt>" for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)))
            + "</polygon></object>" for n, (lab, x1, y1, x2, y2) in enumerate(OBJECTS[k]))
        write(root, f"Annotations/street/{k}.xml",
              f"<annotation><filename>{k}.jpg</filename><folder>street</folder><source><sourceImage>The MIT-CSAIL "
              "database of objects and scenes</sourceImage><sourceAnnotation>LabelMe Webtool</sourceAnnotation>"
              f"</source>{objs}<imagesize><nrows>{H}</nrows><ncols>{W}</ncols></imagesize></annotation>")
        image(root, f"Images/street/{k}.jpg", i)
        write(root, f"Masks/street/{k}_mask_0.png", _png())
        write(root, f"Scribbles/street/{k}_scribble_0.png", _png())


def dota_in_yolo_layout(root: Path) -> None:
    """DOTA's oriented boxes (``x1 y1 ... x4 y4 class difficulty`` after its header lines) in
    ``labels/`` beside ``images/``, where a YOLO reader looks."""
    for i, k in enumerate("ab"):
        image(root, f"images/{k}.png", i)
        lines = "".join(f"{x1:.1f} {y1:.1f} {x2:.1f} {y1:.1f} {x2:.1f} {y2:.1f} {x1:.1f} {y2:.1f} {lab} 0\n"
                        for lab, x1, y1, x2, y2 in OBJECTS[k])
        write(root, f"labels/{k}.txt", "imagesource:GoogleEarth\ngsd:0.146343590398\n" + lines)


# --- labelme, CreateML, ImageFolder ---------------------------------------------------------

def labelme_tree(root: Path) -> None:
    for i, k in enumerate("ab"):
        image(root, f"{k}.jpg", i)
        shapes = [{"label": lab, "points": [[x1, y1], [x2, y2]], "group_id": None, "description": "",
                   "shape_type": "rectangle", "flags": {}, "mask": None} for lab, x1, y1, x2, y2 in OBJECTS[k]]
        write(root, f"{k}.json", json.dumps({"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{k}.jpg",
                                             "imageData": None, "imageHeight": H, "imageWidth": W}))
    write(root, ".ipynb_checkpoints/a-checkpoint.json", "{}")
    write(root, "__MACOSX/._a.json", b"\0\5\26\7")


def createml_tree(root: Path) -> None:
    entries = []
    for i, k in enumerate("ab"):
        image(root, f"{k}.jpg", i)
        entries.append({"image": f"{k}.jpg", "annotations": [
            {"label": lab, "coordinates": {"x": (x1 + x2) / 2, "y": (y1 + y2) / 2, "width": x2 - x1,
                                           "height": y2 - y1}} for lab, x1, y1, x2, y2 in OBJECTS[k]]})
    write(root, "annotations.json", json.dumps(entries))
    write(root, ".DS_Store", b"\0\0\0\1Bud1")


def imagefolder_tree(root: Path) -> None:
    image(root, "train/cat/a.jpg", 0)
    image(root, "train/dog/b.jpg", 1)
    image(root, "val/cat/c.jpg", 2)
    write(root, "train/cat/.DS_Store", b"\0\0\0\1Bud1")
    write(root, "__MACOSX/train/cat/._a.jpg", b"\0\5\26\7")  # would otherwise break the split folders
    image(root, ".ipynb_checkpoints/a-checkpoint.jpg", 3)


def _png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _kit(*names: str) -> frozenset[str]:
    return frozenset(f"{KIT}/{n}" for n in names)


LAYOUTS = [
    Layout("voc_devkit", "voc", "voc-devkit", voc_devkit,
           accepted={f"{KIT}/JPEGImages/2012_00000a.jpg": "train", f"{KIT}/JPEGImages/2012_00000b.jpg": "train",
                     f"{KIT}/JPEGImages/2012_00000c.jpg": "val", f"{KIT}/JPEGImages/2012_00000d.jpg": "test"},
           objects=n_objects("a", "b", "c", "d"), classes=classes_of("a", "b", "c", "d"),
           unlisted=_kit("JPEGImages/2012_00000e.jpg", "Annotations/2012_00000e.xml", "ImageSets/Main/cat_train.txt",
                         "ImageSets/Segmentation/train.txt", "SegmentationClass/2012_00000a.png",
                         "SegmentationObject/2012_00000a.png") | {"README.txt"},
           hidden=_kit("JPEGImages/.DS_Store", "JPEGImages/.ipynb_checkpoints/2012_00000a-checkpoint.jpg")
           | {"__MACOSX/VOCdevkit/VOC2012/JPEGImages/._2012_00000a.jpg"},
           annotations=_kit(*(f"Annotations/2012_00000{k}.xml" for k in "abcd"),
                            *(f"ImageSets/Main/{n}.txt" for n in ("train", "val", "trainval", "test"))),
           files={f"{KIT}/Annotations/2012_00000f.xml": "annotation-without-image"},
           rows=((f"{KIT}/ImageSets/Main/test.txt", 2, "listed-without-files"),), loss=("quarantined",)),
    Layout("voc_devkit_trainval_only", "voc", "voc-devkit", voc_devkit_trainval,
           accepted={"JPEGImages/a.jpg": "train", "JPEGImages/b.jpg": "train"},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"), unlisted=frozenset({"JPEGImages/unlisted.jpg"}),
           annotations=frozenset({"Annotations/a.xml", "Annotations/b.xml", "ImageSets/Main/trainval.txt"})),
    Layout("voc_devkit_without_lists", "voc", "voc-devkit", voc_devkit_no_lists,
           accepted={"JPEGImages/a.jpg": None, "JPEGImages/b.jpg": None, "JPEGImages/bg.jpg": None},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           unlisted=frozenset({"SegmentationClass/a.png", "visualisation/a_boxes.jpg"}),
           annotations=frozenset({"Annotations/a.xml", "Annotations/b.xml"})),
    Layout("voc_annotations_beside_images", "voc", "voc-devkit", voc_annotations_images,
           accepted={"images/a.jpg": "train", "images/b.jpg": "val"},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           annotations=frozenset({"annotations/a.xml", "annotations/b.xml", "ImageSets/Main/train.txt",
                                  "ImageSets/Main/val.txt"})),
    Layout("voc_flat_sibling_images", "voc", "voc-flat", voc_flat_xml_folder,
           accepted={"Images/a.jpg": None, "Images/b.jpg": None, "Images/bg.jpg": None},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           unlisted=frozenset({"ImageSets/Main/train.txt", "ImageSets/Main/cat_train.txt"}),
           annotations=frozenset({"xml/a.xml", "xml/b.xml"})),
    Layout("voc_flat_labelimg", "voc", "voc-flat", voc_flat,
           accepted={"a.jpg": None, "b.jpg": None, "c.jpg": None, "bg.jpg": None},
           objects=n_objects("a", "b", "c"), classes=classes_of("a", "b", "c"),
           hidden=frozenset({".DS_Store", "__MACOSX/._a.jpg", ".readme/notes.md"}),
           annotations=frozenset({"a.xml", "b.xml", "c.xml"}), ignored=frozenset({"README.md"})),
    Layout("coco_2017", "coco", "coco", coco_2017,
           accepted={"train2017/000000000001.jpg": "train", "train2017/000000000002.jpg": "train",
                     "val2017/000000000003.jpg": "val"},
           objects=n_objects("a", "b", "c"), classes=frozenset(CLASSES),
           unlisted=frozenset({"annotations/captions_train2017.json", "annotations/person_keypoints_val2017.json",
                               "train2017/000000000099.jpg", "vis/000000000001_overlay.jpg", "README.md"}),
           hidden=frozenset({".ipynb_checkpoints/instances_train2017-checkpoint.json"}),
           annotations=frozenset({"annotations/instances_train2017.json", "annotations/instances_val2017.json"}),
           order=tuple(CLASSES)),
    Layout("coco_datumaro_images_split", "coco", "coco", coco_datumaro,
           accepted={"images/train/a.jpg": "train", "images/train/b.jpg": "train", "images/val/c.jpg": "val"},
           objects=n_objects("a", "b", "c"), classes=frozenset(CLASSES),
           annotations=frozenset({"annotations/instances_train.json", "annotations/instances_val.json"}),
           order=tuple(CLASSES)),
    Layout("coco_cvat", "coco", "coco", coco_cvat, accepted={"images/default/a.jpg": None, "images/default/b.jpg": None},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           annotations=frozenset({"annotations/instances_default.json"}), order=tuple(CLASSES)),
    Layout("coco_labelme2coco", "coco", "coco", coco_labelme2coco,
           accepted={"JPEGImages/a.jpg": None, "JPEGImages/d.jpg": None},
           objects=n_objects("a", "d"), classes=frozenset(CLASSES),
           unlisted=frozenset({"Visualization/a.jpg", "Visualization/d.jpg"}),
           hidden=frozenset({"__MACOSX/._annotations.json"}), annotations=frozenset({"annotations.json"}),
           order=tuple(CLASSES)),
    Layout("coco_roboflow", "coco", "coco", coco_roboflow,
           accepted={"train/a.rf.0123abcd.jpg": "train", "train/b.rf.0123abcd.jpg": "train",
                     "valid/c.rf.0123abcd.jpg": "val", "test/d.rf.0123abcd.jpg": "test"},
           objects=n_objects("a", "b", "c", "d"), classes=frozenset(CLASSES),
           unlisted=frozenset({"README.roboflow.txt"}),
           annotations=frozenset(f"{s}/_annotations.coco.json" for s in ("train", "valid", "test")),
           order=tuple(CLASSES)),
    Layout("yolo_ultralytics", "yolo", "yolo-ultralytics", yolo_ultralytics,
           accepted={"images/train/a.jpg": "train", "images/train/bg.jpg": "train", "images/val/c.jpg": "val"},
           objects=n_objects("a", "c"), classes=classes_of("a", "c"),
           unlisted=frozenset({"images/extra/d.jpg", "labels/extra/d.txt", "README.md"}),
           hidden=frozenset({".DS_Store"}), ignored=frozenset({"labels/train.cache"}),
           annotations=frozenset({"data.yaml", "labels/train/a.txt", "labels/val/c.txt"}), order=tuple(CLASSES)),
    Layout("yolo_list_files", "yolo", "yolo-ultralytics", yolo_lists,
           accepted={"images/train2017/a.jpg": "train", "images/train2017/b.jpg": "train",
                     "images/val2017/c.jpg": "val", "images/sharks/images/e.jpg": "val"},
           objects=n_objects("a", "b", "c", "e"), classes=frozenset(CLASSES),
           unlisted=frozenset({"images/train2017/z.jpg"}),
           annotations=frozenset({"data.yaml", "train2017.txt", "labels/train2017/a.txt", "labels/train2017/b.txt",
                                  "labels/val2017/c.txt", "images/sharks/labels/e.txt"}),
           rows=(("train2017.txt", 4, "listed-image-missing"),), order=tuple(CLASSES)),
    Layout("yolo_absolute_path_here", "yolo", "yolo-ultralytics", yolo_this_machine,
           accepted={"images/train/a.jpg": "train", "images/val/b.jpg": "val"},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           annotations=frozenset({"data.yaml", "labels/train/a.txt", "labels/val/b.txt"}), order=tuple(CLASSES)),
    Layout("yolo_roboflow", "yolo", "yolo-ultralytics", yolo_roboflow,
           accepted={"train/images/a_jpg.rf.5f3a.jpg": "train", "train/images/b_jpg.rf.5f3a.jpg": "train",
                     "valid/images/c_jpg.rf.5f3a.jpg": "val", "test/images/d_jpg.rf.5f3a.jpg": "test"},
           objects=n_objects("a", "b", "c", "d"), classes=frozenset(CLASSES),
           unlisted=frozenset({"README.dataset.txt", "README.roboflow.txt"}),
           hidden=frozenset({"__MACOSX/train/images/._a_jpg.rf.5f3a.jpg"}),
           annotations=frozenset({"data.yaml"} | {f"{s}/labels/{k}_jpg.rf.5f3a.txt"
                                                  for s, k in [("train", "a"), ("train", "b"), ("valid", "c"),
                                                               ("test", "d")]}), order=tuple(CLASSES)),
    Layout("yolo_roboflow_foreign_paths", "yolo", "yolo-ultralytics", yolo_roboflow_foreign,
           accepted={"train/images/a_jpg.rf.9c1e.jpg": "train", "train/images/b_jpg.rf.9c1e.jpg": "train",
                     "valid/images/c_jpg.rf.9c1e.jpg": "val", "test/images/d_jpg.rf.9c1e.jpg": "test"},
           objects=n_objects("a", "b", "c", "d"), classes=frozenset(CLASSES),
           unlisted=frozenset({"README.roboflow.txt"}),
           annotations=frozenset({"data.yaml"} | {f"{s}/labels/{k}_jpg.rf.9c1e.txt"
                                                  for s, k in [("train", "a"), ("train", "b"), ("valid", "c"),
                                                               ("test", "d")]}), order=tuple(CLASSES)),
    Layout("darknet_cvat_yolo_1_1", "yolo", "yolo-darknet", darknet_cvat,
           accepted={"obj_train_data/frame_000000.jpg": "train", "obj_train_data/frame_000001.jpg": "train",
                     "obj_train_data/frame_000009.jpg": "train", "obj_valid_data/frame_000002.jpg": "val"},
           objects=3 + 1, classes=frozenset({"label_2", "label_4"}),
           annotations=frozenset({"obj.data", "obj.names", "train.txt", "valid.txt",
                                  "obj_train_data/frame_000000.txt", "obj_train_data/frame_000001.txt",
                                  "obj_valid_data/frame_000002.txt"}), order=tuple(DARKNET_NAMES)),
    Layout("darknet_split_folders", "yolo", "yolo-flat", darknet_split_folders,
           accepted={"images/train/a.jpg": "train", "images/train/b.jpg": "train", "images/val/c.jpg": "val"},
           objects=4, classes=frozenset({"label_2", "label_4"}),
           annotations=frozenset({"obj.names", "labels/train/a.txt", "labels/train/b.txt", "labels/val/c.txt"}),
           order=tuple(DARKNET_NAMES)),
    Layout("cvat_project_export", "cvat", "cvat", cvat_project,
           accepted={"images/Train/a.jpg": "train", "images/Train/b.jpg": "train", "images/Test/a.jpg": "test",
                     "images/Validation/d.jpg": "val"},
           objects=n_objects("a", "b", "c", "d"), classes=frozenset(CLASSES),
           annotations=frozenset({"annotations.xml"}), rows=(("annotations.xml", 1, "unsupported-shape"),),
           loss=("refused",)),
    Layout("cvat_task_export", "cvat", "cvat", cvat_task,
           accepted={"images/a.jpg": None, "images/frames/b.jpg": None, "images/bg.jpg": None},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           unlisted=frozenset({"images/not_in_task.jpg"}), annotations=frozenset({"annotations.xml"})),
    Layout("cvat_for_video", "cvat", "cvat", cvat_video, accepted={}, objects=0, classes=frozenset(),
           files={"annotations.xml": "cvat-video", "images/frame_000000.jpg": "annotation-unusable",
                  "images/frame_000001.jpg": "annotation-unusable"}, loss=("no-samples", "no-objects", "quarantined")),
    Layout("labelme", "labelme", "labelme", labelme_tree, accepted={"a.jpg": None, "b.jpg": None},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"),
           hidden=frozenset({".ipynb_checkpoints/a-checkpoint.json", "__MACOSX/._a.json"}),
           annotations=frozenset({"a.json", "b.json"})),
    Layout("createml", "createml", "createml", createml_tree, accepted={"a.jpg": None, "b.jpg": None},
           objects=n_objects("a", "b"), classes=classes_of("a", "b"), hidden=frozenset({".DS_Store"}),
           annotations=frozenset({"annotations.json"})),
    Layout("imagefolder", "imagefolder", "imagefolder", imagefolder_tree,
           accepted={"train/cat/a.jpg": "train", "train/dog/b.jpg": "train", "val/cat/c.jpg": "val"},
           objects=0, classes=frozenset({"cat", "dog"}),
           hidden=frozenset({"train/cat/.DS_Store", "__MACOSX/train/cat/._a.jpg", ".ipynb_checkpoints/a-checkpoint.jpg"})),
]


def count_entries(root: Path, paths) -> int:
    """Annotation entries in the files ``paths`` of the tree, counted from the files themselves
    (standard library only): VOC ``<object>``, YOLO lines of numbers, labelme shapes, COCO and
    CreateML annotations, CVAT elements inside ``<image>`` and ``<track>`` elements. Other
    files (lists, names, data.yaml) hold none."""
    import xml.etree.ElementTree as ET

    n = 0
    for rel in filter(None, paths):
        data = (root / rel).read_bytes()
        if rel.endswith(".xml"):
            doc = ET.fromstring(data)
            n += (len(doc.findall("object")) if doc.tag == "annotation"
                  else sum(len(im) for im in doc.findall("image")) + len(doc.findall("track")))
        elif rel.endswith(".txt"):
            for line in data.decode().splitlines():
                try:
                    n += len([float(t) for t in line.split()]) >= 5
                except ValueError:
                    pass
        elif rel.endswith(".json"):
            doc = json.loads(data)
            n += (len(doc["shapes"]) if isinstance(doc, dict) and "shapes" in doc
                  else len(doc["annotations"]) if isinstance(doc, dict)
                  else sum(len(e.get("annotations", [])) for e in doc))
    return n
