"""COCO instances, one file per split: ``annotations/instances_<split>.json`` + ``images/<split>/<file>``.

``file_name`` is relative to the split's image folder, as in the 2017 layout
(``instances_val2017.json`` beside ``val2017/``): pycocotools, torchvision's
``CocoDetection(root="images/<split>", annFile="annotations/instances_<split>.json")``
and detectron2's ``register_coco_instances`` take it as it is.

Image ids are 1..N over all samples in sorted id order (stable, unique across the
split files); annotation ids likewise; category ids are 1-based in class-list
order, every category in every file. ``bbox`` is ``[x, y, w, h]``; ``area`` is the
polygon area, else the box area; ``iscrowd`` is 0 (our objects are instances;
ingest reads crowd regions as regions to ignore). ``segmentation`` holds the
object's polygon parts (our records carry no masks: ingest traces RLE masks into
polygons, so no RLE is written). With ``task = detect`` a box-only object has an
empty ``segmentation`` (as box-only COCO exports have; its ``bbox`` is the object);
with ``segment`` it gets its rectangle, so mask consumers (``COCOeval`` segm,
``annToMask``) take every object.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.export import Plan, clipped, copy_image, require_objects, write_text
from pipeline.ingest.clip import points, polygon_area
from pipeline.record import Dataset, Object


def annotation(o: Object, task: str, width: int, height: int) -> dict:
    x1, y1, x2, y2 = clipped(o.box, width, height)
    parts = list(o.polygons) or ([(x1, y1, x2, y1, x2, y2, x1, y2)] if task == "segment" else [])
    area = sum(polygon_area(points(p)) for p in parts) if parts else (x2 - x1) * (y2 - y1)
    return {"bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
            "segmentation": [[round(v, 3) for v in p] for p in parts], "area": round(area, 3), "iscrowd": 0}


def write(ds: Dataset, out: Path, plan: Plan) -> dict:
    require_objects(ds, "coco")
    cats = {c: i + 1 for i, c in enumerate(ds.classes)}
    categories = [{"id": i, "name": c, "supercategory": ""} for c, i in cats.items()]
    docs = {sp: {"images": [], "annotations": []} for sp in plan.splits()}
    n_ann = rectangles = 0
    for n, s in enumerate(sorted(ds.samples, key=lambda s: s.id), start=1):
        split = plan.split_of[s.id]
        name = plan.file_of[s.id]
        copy_image(ds, s, out, "images", plan.split_dir[split], name)
        docs[split]["images"].append({"id": n, "file_name": name, "width": s.width, "height": s.height})
        for o in s.objects:
            n_ann += 1
            rectangles += plan.task == "segment" and not o.polygons
            docs[split]["annotations"].append({"id": n_ann, "image_id": n, "category_id": cats[o.label],
                                               **annotation(o, plan.task, s.width, s.height)})
    for sp, doc in docs.items():
        full = {"info": {"description": f"exported by pipeline from {ds.root.name}, split {sp}"},
                "licenses": [], **doc, "categories": categories}
        write_text(out, "annotations", f"instances_{plan.split_dir[sp]}.json", text=json.dumps(full, indent=1))
    return {"images": len(ds.samples), "annotations": n_ann, **({"boxes_as_rectangles": rectangles} if rectangles else {})}
