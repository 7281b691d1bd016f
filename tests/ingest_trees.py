"""Generators of realistic annotation trees, written independently of our exporters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["cat", "dog", "person"]

# (image path, width, height, [(label, x1, y1, x2, y2)]) in continuous pixel coordinates.
SPEC = [
    ("img_000.jpg", 64, 48, [("cat", 4, 6, 30, 40), ("dog", 32, 2, 60, 20)]),
    ("img_001.jpg", 64, 48, [("person", 10, 10, 20, 44)]),
    ("img_002.png", 40, 40, [("dog", 0, 0, 40, 40), ("cat", 5, 5, 15, 15), ("cat", 20, 20, 30, 30)]),
    ("img_003.jpg", 64, 48, []),  # background
    ("sub/img_004.jpg", 50, 30, [("person", 1, 1, 49, 29)]),
]


def draw(path: Path, w: int, h: int, i: int) -> None:
    rng = np.random.default_rng(i)
    a = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(a).save(path)


def write_voc(root: Path, spec=SPEC) -> Path:
    for i, (name, w, h, objs) in enumerate(spec):
        draw(root / name, w, h, i)
        if not objs:
            continue
        o = "".join(
            f"<object><name>{lab}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
            f"<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for lab, x1, y1, x2, y2 in objs)
        xml = (f"<annotation><folder>x</folder><filename>{Path(name).name}</filename><path>/home/u/{name}</path>"
               f"<source><database>Unknown</database></source><size><width>{w}</width><height>{h}</height>"
               f"<depth>3</depth></size><segmented>0</segmented>{o}</annotation>")
        (root / name).with_suffix(".xml").write_text(xml)
    return root


def yolo_line(lab, x1, y1, x2, y2, w, h, classes=CLASSES) -> str:
    return (f"{classes.index(lab)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
            f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")


def write_yolo(root: Path, spec=SPEC, ultralytics: bool = False) -> Path:
    for i, (name, w, h, objs) in enumerate(spec):
        split = "val" if i == 1 else "train"
        img = root / "images" / split / name if ultralytics else root / name
        draw(img, w, h, i)
        if not objs:
            continue
        lab = (root / "labels" / split / name if ultralytics else root / name)
        lab = lab.with_suffix(".txt")
        lab.parent.mkdir(parents=True, exist_ok=True)
        lab.write_text("\n".join(yolo_line(*o, w, h) for o in objs))  # no trailing newline
    if ultralytics:
        (root / "data.yaml").write_text(
            "path: /home/someone/data\ntrain: /home/someone/data/images/train\nval: images/val\n"
            "names:\n" + "".join(f"  {k}: {n}\n" for k, n in enumerate(CLASSES)))
    else:
        (root / "classes.txt").write_text("\n".join(CLASSES))
    return root


def write_createml(root: Path, spec=SPEC) -> Path:
    entries = []
    for i, (name, w, h, objs) in enumerate(spec):
        draw(root / name, w, h, i)
        if objs:
            entries.append({"image": name, "annotations": [
                {"label": lab, "coordinates": {"x": (x1 + x2) / 2, "y": (y1 + y2) / 2,
                                               "width": x2 - x1, "height": y2 - y1}}
                for lab, x1, y1, x2, y2 in objs]})
    (root / "annotations.json").write_text(json.dumps(entries))
    return root


def write_labelme(root: Path, spec=SPEC) -> Path:
    for i, (name, w, h, objs) in enumerate(spec):
        draw(root / name, w, h, i)
        if not objs:
            continue
        shapes = []
        for k, (lab, x1, y1, x2, y2) in enumerate(objs):
            if k % 2:  # polygons and rectangles (corners given bottom-right first)
                shapes.append({"label": lab, "shape_type": "polygon", "group_id": None, "flags": {},
                               "points": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]})
            else:
                shapes.append({"label": lab, "shape_type": "rectangle", "group_id": None, "flags": {},
                               "points": [[x2, y2], [x1, y1]]})
        doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": Path(name).name,
               "imageData": None, "imageHeight": h, "imageWidth": w}
        (root / name).with_suffix(".json").write_text(json.dumps(doc))
    return root


def write_coco(root: Path, spec=SPEC) -> Path:
    images, anns = [], []
    for i, (name, w, h, objs) in enumerate(spec):
        draw(root / "images" / name, w, h, i)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for lab, x1, y1, x2, y2 in objs:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": CLASSES.index(lab) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                         "segmentation": []})
    cats = [{"id": k + 1, "name": n, "supercategory": "x"} for k, n in enumerate(CLASSES)]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


WRITERS = {"voc": write_voc, "yolo": write_yolo, "createml": write_createml, "labelme": write_labelme,
           "coco": write_coco}
