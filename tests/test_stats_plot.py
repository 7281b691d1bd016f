"""A dataset's health at a glance: the stats, the picture and the table, for box data and for
classification data."""

from __future__ import annotations

import csv
import io

import numpy as np
from PIL import Image

from pipeline.datasets import load_dataset
from pipeline.reports.stats import SMALL_AREA, compute, render
from pipeline.reports.stats_plot import (IMAGE_COLUMNS, OBJECT_COLUMNS, csv_bytes, describe, object_rows, png_bytes,
                                         table)
from tests.conftest import make_version
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

    assert table(ds, assignment) == (OBJECT_COLUMNS, object_rows(ds, assignment))
    rows = list(csv.DictReader(io.StringIO(csv_bytes(*table(ds, assignment)).decode())))
    assert len(rows) == len(boxes) and tuple(rows[0]) == OBJECT_COLUMNS
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
    assert object_rows(ds) == []


def _panels_drawn(png: bytes, width: int) -> list[float]:
    """Pixel spread of each panel: a panel with nothing drawn in it is nearly flat."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    assert img.shape[1] == width
    return [img[:, i * width // 2:(i + 1) * width // 2].std() for i in range(2)]


def test_classification_version_draws_images_per_class_and_sizes(tmp_path):
    ds = load_dataset(make_version(tmp_path, per_class=6, ratios={"train": 0.5, "test": 0.5}, copies=1))
    columns, rows = table(ds)
    assert columns == IMAGE_COLUMNS and len(rows) == len(ds.samples) > 0
    assert {r["split"] for r in rows} == {"train", "test"} and {r["label"] for r in rows} == set(ds.classes)
    assert all((r["width"], r["height"]) == (16, 16) for r in rows)
    parsed = list(csv.DictReader(io.StringIO(csv_bytes(columns, rows).decode())))
    assert len(parsed) == len(rows) and tuple(parsed[0]) == IMAGE_COLUMNS
    per_split = {sp: sum(1 for r in rows if r["split"] == sp) for sp in ("train", "test")}
    assert per_split == compute(ds)["splits"]

    png = png_bytes(ds)
    assert all(spread > 10 for spread in _panels_drawn(png, 800))  # bars and the size marker, not blank axes
    assert png_bytes(ds) == png
    assert describe(ds).startswith(f"classification data, {len(rows)} images and no boxes")


def test_detection_describe_counts_objects(tmp_path):
    ds = load_dataset(make_annotated(tmp_path / "c", n=4))
    n = sum(len(s.objects) for s in ds.samples)
    assert describe(ds).startswith(f"detection data, {n} objects in 4 images")


def test_stats_command_says_what_it_drew(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    version = make_version(tmp_path, per_class=4, ratios={"train": 0.5, "test": 0.5})
    png, table_csv = tmp_path / "s.png", tmp_path / "s.csv"
    res = CliRunner().invoke(app, ["stats", str(version), "--png", str(png), "--csv", str(table_csv)])
    assert res.exit_code == 0, res.output
    assert f"{png}, {table_csv}: classification data, 12 images and no boxes" in res.output
    assert len(table_csv.read_text().splitlines()) == 1 + 12 and png.stat().st_size > 0
