"""labelme JSON beside each image.

Single-part polygons -> ``polygon`` shapes; several parts -> one ``polygon`` per
part sharing a ``group_id``; box-only objects -> ``rectangle``. A class label goes
into ``flags`` (all classes listed, the sample's one true): re-ingest with
``ingest.labelme.flags_as_label: true``. ``imageData`` is null (labelme 5 style).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from pipeline.export import copy_image, image_relpath
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


def write(ds: Dataset, out: Path, split_of: dict[str, str | None]) -> dict:
    for s in ds.samples:
        rel = image_relpath(ds, s)
        image = copy_image(ds, s, out, rel)
        doc = to_labelme(s, PurePosixPath(rel).name, ds.classes)
        image.with_suffix(".json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return {"images": len(ds.samples)}
