"""Pascal VOC devkit: ``JPEGImages/<file>``, ``Annotations/<stem>.xml``, ``ImageSets/Main/<split>.txt``.

One ``JPEGImages`` for every split (file names unique across the export); each
split's list holds its stems, one a line, and ``trainval.txt`` holds train's and
val's, as the VOC devkits have it. The images keep their format: torchvision's
``VOCDetection`` assumes ``.jpg`` names, other readers take ``<filename>``.

Continuous XYXY -> 1-based inclusive integer indices: ``xmin = round(x1) + 1``,
``xmax = round(x2)`` (the inverse of ingest's ``xmin - 1``), so a re-ingested box
is within 0.5 px. ``round`` is Python's: a half goes to the even integer, so
``(0.5, 0.5, 3.5, 1.5)`` comes back as ``(0, 0, 4, 2)``, one edge moved out and one
kept. VOC holds only integers: every box with a fractional corner is counted in
the summary (``boxes_rounded``). VOC has no polygons: objects keep their box,
polygons are counted as dropped; ``segmented`` is 0.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from pipeline.export import Plan, clipped, copy_image, require_objects, write_text
from pipeline.record import Dataset, Sample


def voc_box(box) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    xmin, ymin = round(x1) + 1, round(y1) + 1
    return xmin, ymin, max(round(x2), xmin), max(round(y2), ymin)


def rounded(box) -> bool:
    """Whether writing ``box`` in VOC moves a corner: it is not on whole pixels."""
    return any(float(v) != round(v) for v in box)


def to_xml(s: Sample, filename: str) -> str:
    objs = []
    for o in s.objects:
        xmin, ymin, xmax, ymax = voc_box(clipped(o.box, s.width, s.height))
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


def write(ds: Dataset, out: Path, plan: Plan) -> dict:
    require_objects(ds, "voc")
    dropped = boxes_rounded = 0
    lists: dict[str, list[str]] = {sp: [] for sp in plan.splits()}
    for s in ds.samples:
        name = plan.file_of[s.id]
        stem = PurePosixPath(name).stem
        copy_image(ds, s, out, "JPEGImages", name)
        write_text(out, "Annotations", stem + ".xml", text=to_xml(s, name))
        lists[plan.split_of[s.id]].append(stem)
        dropped += sum(1 for o in s.objects if o.polygons)
        boxes_rounded += sum(1 for o in s.objects if rounded(clipped(o.box, s.width, s.height)))
    files = {plan.split_dir[sp]: sorted(stems) for sp, stems in lists.items()}
    if ("train" in lists or "val" in lists) and "trainval" not in lists:
        files["trainval"] = sorted(lists.get("train", []) + lists.get("val", []))
    for name, stems in files.items():
        write_text(out, "ImageSets", "Main", name + ".txt", text="".join(st + "\n" for st in stems))
    return {"images": len(ds.samples), "polygons_dropped": dropped, "boxes_rounded": boxes_rounded}
