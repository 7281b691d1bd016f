"""Detection health at a glance: stats of box data, the objects picture and table."""

from __future__ import annotations

import csv
import io

import numpy as np
from PIL import Image

from pipeline.record import load_dataset
from pipeline.stats import SMALL_AREA, compute, render
from pipeline.stats_plot import COLUMNS, csv_bytes, object_rows, png_bytes
from tests.version_data import make_annotated


def test_box_stats_picture_and_table(tmp_path):
    ds = load_dataset(make_annotated(tmp_path / "c", n=8))
    assignment = {s.id: ("train" if i < 6 else "val") for i, s in enumerate(ds.samples)}
    stats = compute(ds, assignment)
    boxes = [(o.box[2] - o.box[0], o.box[3] - o.box[1]) for s in ds.samples for o in s.objects]
    assert stats["box_width"]["max"] == max(w for w, _ in boxes)
    assert stats["small_objects_share"] == round(sum(w * h < SMALL_AREA for w, h in boxes) / len(boxes), 4)
    assert sum(sum(v.values()) for v in stats["objects_per_split_and_class"].values()) == len(boxes)
    assert "small objects (< 32x32 px)" in render(stats) and "objects in val:" in render(stats)

    rows = list(csv.DictReader(io.StringIO(csv_bytes(object_rows(ds, assignment)).decode())))
    assert len(rows) == len(boxes) and tuple(rows[0]) == COLUMNS
    assert all(0 <= float(r["x_center"]) <= 1 and 0 < float(r["width"]) <= 1 for r in rows)
    png = png_bytes(ds, assignment)
    img = np.asarray(Image.open(io.BytesIO(png)))
    assert img.shape[:2] == (640, 800) and img.std() > 10  # four panels drawn
    assert png_bytes(ds, assignment) == png  # the same data, the same bytes


def test_classification_data_has_no_box_section(tmp_path):
    from pipeline.config import IngestParams
    from pipeline.ingest import ingest
    from tests.conftest import make_imagefolder

    ds = ingest(make_imagefolder(tmp_path / "s", classes=2, per_class=3), tmp_path / "c", IngestParams(workers=1))
    stats = compute(ds)
    assert stats["small_objects_share"] is None and stats["objects_per_split_and_class"] == {}
    assert object_rows(ds) == [] and csv_bytes([]).decode().strip() == ",".join(COLUMNS)
