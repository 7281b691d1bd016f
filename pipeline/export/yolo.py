"""Ultralytics YOLO: ``images/<split>/…``, ``labels/<split>/….txt``, ``data.yaml``.

Box lines ``class cx cy w h`` and, for single-part polygons, polygon lines, all
normalized with 6 decimals. A YOLO line holds one polygon part, so an object in
several parts is written as its box (counted). Every image gets a label file
(empty for background images).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.export import copy_image, image_relpath, require_objects
from pipeline.record import Dataset, Sample
from pipeline.safepaths import join_inside, safe_names


def lines(s: Sample, classes: list[str]) -> tuple[list[str], int]:
    out, boxed = [], 0
    for o in s.objects:
        k = classes.index(o.label)
        if len(o.polygons) == 1:
            p = o.polygons[0]
            coords = " ".join(f"{v / (s.width if i % 2 == 0 else s.height):.6f}" for i, v in enumerate(p))
            out.append(f"{k} {coords}")
            continue
        boxed += len(o.polygons) > 1
        x1, y1, x2, y2 = o.box
        out.append(f"{k} {(x1 + x2) / 2 / s.width:.6f} {(y1 + y2) / 2 / s.height:.6f} "
                   f"{(x2 - x1) / s.width:.6f} {(y2 - y1) / s.height:.6f}")
    return out, boxed


def write(ds: Dataset, out: Path, split_of: dict[str, str | None]) -> dict:
    require_objects(ds, "yolo")
    classes = list(ds.classes)
    multipart = 0
    splits = set()
    split_dir = safe_names(str(v) for v in split_of.values() if v)
    for s in ds.samples:
        split = split_of.get(s.id)
        splits.add(split)
        rel = image_relpath(ds, s)
        sub = (split_dir[split], rel) if split else (rel,)
        copy_image(ds, s, out, "images", *sub)
        txt, boxed = lines(s, classes)
        multipart += boxed
        label = join_inside(out, "labels", *sub).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(t + "\n" for t in txt), encoding="utf-8")
    yaml = ["path: .", *(f"{k}: images/{k}" for k in ("train", "val", "test") if k in splits)]
    if splits - {"train", "val", "test"}:
        yaml.append("train: images")
    yaml.append("names:")
    yaml += [f"  {i}: {_quote(n)}" for i, n in enumerate(classes)]
    join_inside(out, "data.yaml").write_text("\n".join(yaml) + "\n", encoding="utf-8")
    return {"images": len(ds.samples), "multipart_as_box": multipart}


def _quote(name: str) -> str:
    import json

    return json.dumps(name)  # a JSON string is valid YAML, whatever the name holds
