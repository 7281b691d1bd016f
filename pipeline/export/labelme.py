"""labelme: ``<split>/<file>`` with ``<split>/<stem>.json`` beside it, one JSON per image.

``imagePath`` is the image's file name (relative to the JSON, labelme's own
convention). Single-part polygons -> ``polygon`` shapes; several parts -> one
``polygon`` per part sharing a ``group_id``; box-only objects -> ``rectangle``. A
class label goes into ``flags`` (all classes listed, the sample's one true):
re-ingest with ``ingest.labelme.flags_as_label: true``. ``imageData`` is null
(labelme 5 style).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from pipeline.export import Plan, copy_image, write_text
from pipeline.record import Dataset, Sample


def to_labelme(s: Sample, filename: str, classes: tuple[str, ...]) -> dict:
    shapes, group = [], 0
    for o in s.objects:
        gid = None
        if len(o.polygons) > 1:
            group += 1
            gid = group
        for p in o.polygons:
            shapes.append({"label": o.label, "points": [[p[i], p[i + 1]] for i in range(0, len(p), 2)],
                           "group_id": gid, "description": "", "shape_type": "polygon", "flags": {}})
        if not o.polygons:
            x1, y1, x2, y2 = o.box
            shapes.append({"label": o.label, "points": [[x1, y1], [x2, y2]], "group_id": None,
                           "description": "", "shape_type": "rectangle", "flags": {}})
    flags = {c: c == s.label for c in classes} if s.label is not None else {}
    return {"version": "5.4.1", "flags": flags, "shapes": shapes, "imagePath": filename,
            "imageData": None, "imageHeight": s.height, "imageWidth": s.width}


def write(ds: Dataset, out: Path, plan: Plan) -> dict:
    for s in ds.samples:
        split, name = plan.split_dir[plan.split_of[s.id]], plan.file_of[s.id]
        copy_image(ds, s, out, split, name)
        doc = to_labelme(s, name, ds.classes)
        write_text(out, split, str(PurePosixPath(name).with_suffix(".json")), text=json.dumps(doc, indent=1))
    return {"images": len(ds.samples)}
