"""Pascal VOC XML beside each image (labelImg layout).

Continuous XYXY -> 1-based inclusive integer indices: ``xmin = round(x1) + 1``,
``xmax = round(x2)`` (the inverse of ingest's ``xmin - 1``), so a re-ingested box
is within 0.5 px. VOC has no polygons: objects keep their box, polygons are counted
as dropped.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from pipeline.export import copy_image, image_relpath, require_objects
from pipeline.record import Dataset, Sample


def voc_box(box) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    xmin, ymin = round(x1) + 1, round(y1) + 1
    return xmin, ymin, max(round(x2), xmin), max(round(y2), ymin)


def to_xml(s: Sample, filename: str) -> str:
    objs = []
    for o in s.objects:
        xmin, ymin, xmax, ymax = voc_box(o.box)
        objs.append(
            f"  <object>\n    <name>{escape(o.label)}</name>\n    <pose>Unspecified</pose>\n"
            f"    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n"
            f"      <xmin>{xmin}</xmin>\n      <ymin>{ymin}</ymin>\n"
            f"      <xmax>{xmax}</xmax>\n      <ymax>{ymax}</ymax>\n    </bndbox>\n  </object>\n")
    return (f"<annotation>\n  <folder></folder>\n  <filename>{escape(filename)}</filename>\n"
            f"  <source>\n    <database>pipeline</database>\n  </source>\n"
            f"  <size>\n    <width>{s.width}</width>\n    <height>{s.height}</height>\n"
            f"    <depth>{s.channels}</depth>\n  </size>\n  <segmented>0</segmented>\n"
            + "".join(objs) + "</annotation>\n")


def write(ds: Dataset, out: Path, split_of: dict[str, str | None]) -> dict:
    require_objects(ds, "voc")
    dropped = 0
    for s in ds.samples:
        rel = image_relpath(ds, s)
        image = copy_image(ds, s, out, rel)
        image.with_suffix(".xml").write_text(to_xml(s, PurePosixPath(rel).name), encoding="utf-8")
        dropped += sum(1 for o in s.objects if o.polygons)
    return {"images": len(ds.samples), "polygons_dropped": dropped}
