"""COCO instances: ``images/…`` and one ``annotations.json``.

Category ids are 1-based in class-list order; ``bbox`` is ``[x, y, w, h]``;
polygon parts go to ``segmentation`` (the box is then derived from them on
re-ingest); ``area`` is the polygon area, else the box area.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.export import copy_image, image_relpath, require_objects
from pipeline.ingest.clip import points, polygon_area
from pipeline.record import Dataset
from pipeline.safepaths import join_inside


def write(ds: Dataset, out: Path, split_of: dict[str, str | None]) -> dict:
    require_objects(ds, "coco")
    cats = {c: i + 1 for i, c in enumerate(ds.classes)}
    images, anns = [], []
    for n, s in enumerate(ds.samples, start=1):
        rel = image_relpath(ds, s)
        copy_image(ds, s, out, "images", rel)
        images.append({"id": n, "file_name": rel, "width": s.width, "height": s.height})
        for o in s.objects:
            x1, y1, x2, y2 = o.box
            area = sum(polygon_area(points(p)) for p in o.polygons) if o.polygons else (x2 - x1) * (y2 - y1)
            anns.append({"id": len(anns) + 1, "image_id": n, "category_id": cats[o.label],
                         "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                         "segmentation": [[round(v, 3) for v in p] for p in o.polygons],
                         "area": round(area, 3), "iscrowd": 0})
    doc = {"info": {"description": f"exported by pipeline from {ds.root}"}, "images": images,
           "annotations": anns, "categories": [{"id": i, "name": c, "supercategory": ""} for c, i in cats.items()]}
    join_inside(out, "annotations.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return {"images": len(images), "annotations": len(anns)}
