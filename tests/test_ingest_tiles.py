"""Tiling at ingest (``ingest.tile``): the grid (SAHI / DeepForest semantics), objects moved
into tiles by the augment engine's clip-and-rule, tiles stored as exact pixels, and each
tile's lineage back to its source image and offset (stats, split and trace read it)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.config import AugmentParams, IngestParams, TileParams, parse_section
from pipeline.core.errors import ConfigError
from pipeline.ingest import ingest
from pipeline.ingest.tiling import TILE_DROPPED, tile_objects
from pipeline.record import Object
from pipeline.core.tiles import starts, windows

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))


# --- the grid ---------------------------------------------------------------------------------

@pytest.mark.parametrize("side, size, overlap, expected", [
    (1249, 400, 0, [0, 400, 800, 849]),  # the last tile shifted inwards to end at the border
    (1035, 400, 0, [0, 400, 635]),
    (800, 400, 0, [0, 400]),  # an exact fit: no extra tile
    (801, 400, 0, [0, 400, 401]),
    (1000, 400, 100, [0, 300, 600]),  # 600 + 400 = 1000: the last one fits exactly
    (1001, 400, 100, [0, 300, 600, 601]),
    (400, 400, 50, [0]),
    (30, 400, 0, [0]),  # smaller than a tile: stays whole
])
def test_starts(side, size, overlap, expected):
    assert starts(side, size, overlap) == expected


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(32, 600), st.data())
def test_windows_cover_the_image_with_full_size_tiles_inside_it(w, h, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    wins = windows(w, h, size, overlap)
    covered_x, covered_y = set(), set()
    for x, y, tw, th in wins:
        assert 0 <= x and 0 <= y and x + tw <= w and y + th <= h
        assert (tw, th) == (min(size, w), min(size, h))  # full size whenever the image is that large
        covered_x.update(range(x, x + tw))
        covered_y.update(range(y, y + th))
    assert covered_x == set(range(w)) and covered_y == set(range(h))
    for side in (w, h):  # neighbours overlap by at least `overlap` (the last one more, shifted in)
        s = starts(side, size, overlap)
        assert all(b - a <= size - overlap for a, b in zip(s, s[1:])) and s[-1] == max(0, side - size)


def test_tile_params_are_validated():
    assert parse_section("ingest", {"tile": {"size": 64, "overlap": 8}}).tile == TileParams(size=64, overlap=8)
    for bad, key in (({"size": 31}, "ingest.tile.size"), ({"size": 64, "overlap": 64}, "overlap 64 must be below"),
                     ({"size": 64, "overlap": -1}, "ingest.tile.overlap"), ({"overlap": 4}, "ingest.tile.size")):
        with pytest.raises(ConfigError, match=key):
            parse_section("ingest", {"tile": bad})


# --- objects into tiles -----------------------------------------------------------------------

def test_a_box_crossing_a_tile_edge_is_clipped_into_both_tiles():
    wins = [(0, 0, 50, 50), (50, 0, 50, 50)]
    got = tile_objects((Object("t", (40.0, 10.0, 60.0, 20.0)), Object("t", (5.0, 5.0, 15.0, 15.0))), wins, 0.0, 1.0)
    assert [o.box for o in got.per_tile[0]] == [(40.0, 10.0, 50.0, 20.0), (5.0, 5.0, 15.0, 15.0)]
    assert [o.box for o in got.per_tile[1]] == [(0.0, 10.0, 10.0, 20.0)]  # tile pixels: offset 50 taken off
    assert got.clipped == (1, 1) and got.whole == (0, 1) and got.pieces == (2, 0) and got.dropped == ("", "")


def test_the_visibility_and_area_rules_are_the_engines():
    wins = [(0, 0, 50, 50), (50, 0, 50, 50)]
    obj = (Object("t", (30.0, 0.0, 60.0, 10.0)),)  # 2/3 of it in the first tile, 1/3 in the second
    got = tile_objects(obj, wins, 0.5, 1.0)
    assert [len(p) for p in got.per_tile] == [1, 0] and got.dropped == ("min_visibility",)
    got = tile_objects(obj, wins, 0.7, 1.0)  # under the rule in both: in no tile
    assert got.per_tile == ((), ()) and got.whole == (0,) and got.pieces == (0,)
    sliver = (Object("t", (49.5, 0.0, 60.0, 1.0)),)  # 0.5 px^2 in the first tile: under min_area
    got = tile_objects(sliver, wins, 0.0, 1.0)
    assert [len(p) for p in got.per_tile] == [0, 1] and got.dropped == ("min_area",)


def test_polygons_are_clipped_exactly_and_their_box_is_tight():
    tri = Object("t", (40.0, 0.0, 60.0, 20.0), ((40.0, 0.0, 60.0, 0.0, 40.0, 20.0),))
    got = tile_objects((tri,), [(0, 0, 50, 50), (50, 0, 50, 50)], 0.0, 1.0)
    right = got.per_tile[1][0]
    assert right.box == pytest.approx((0.0, 0.0, 10.0, 10.0))  # the triangle's tip, not its full box
    corners = sorted(zip(right.polygons[0][0::2], right.polygons[0][1::2]))
    assert [v for p in corners for v in p] == pytest.approx([0.0, 0.0, 0.0, 10.0, 10.0, 0.0])


# --- ingest end to end ------------------------------------------------------------------------

def _voc(filename: str, w: int, h: int, boxes) -> str:
    objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{a + 1}</xmin><ymin>{b + 1}</ymin><xmax>{c}</xmax>"
                   f"<ymax>{d}</ymax></bndbox></object>" for n, (a, b, c, d) in boxes)
    return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


BIG = [("tree", (2, 2, 20, 20)), ("tree", (28, 10, 40, 30)), ("bush", (60, 50, 90, 69)),
       ("tree", (70, 0, 100, 10))]  # continuous XYXY in the 100x70 image


@pytest.fixture()
def tiled_tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (70, 100, 3), dtype=np.uint8)
    Image.fromarray(big).save(src / "big.png")
    (src / "big.xml").write_text(_voc("big.png", 100, 70, BIG))
    Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(src / "small.jpg", quality=95)
    (src / "small.xml").write_text(_voc("small.jpg", 30, 30, [("tree", (1, 1, 10, 10))]))
    return src, big


def test_ingest_cuts_large_images_keeps_small_ones_and_records_the_lineage(tmp_path, tiled_tree):
    src, big = tiled_tree
    params = IngestParams(workers=1, tile=TileParams(size=32, overlap=8))
    ds = ingest(src, tmp_path / "ds", params, fmt="voc")
    by_id = {s.id: s for s in ds.samples}
    small = by_id["small.jpg"]
    assert small.tile is None and small.image.endswith(".jpg")  # smaller than a tile: whole, bytes as given
    tiles = sorted((s for s in ds.samples if s.tile is not None), key=lambda s: (s.tile.y, s.tile.x))
    # x: 0, 24, 48, then 68 (shifted in to end at 100); y: 0, 24, then 38 (ends at 70)
    assert [(s.tile.x, s.tile.y) for s in tiles] == [(x, y) for y in (0, 24, 38) for x in (0, 24, 48, 68)]
    for s in tiles:
        assert (s.width, s.height) == (32, 32) and s.id == f"big.png@{s.tile.x},{s.tile.y}"
        assert (s.tile.source_id, s.tile.source_width, s.tile.source_height) == ("big.png", 100, 70)
        assert s.source.path == "big.png" and s.source.annotation == "big.xml"
        pixels = np.asarray(Image.open(__import__("io").BytesIO(ds.read_image(s))))
        assert (pixels == big[s.tile.y:s.tile.y + 32, s.tile.x:s.tile.x + 32]).all()  # exact pixels
        for o in s.objects:  # back in source pixels, every box lies inside its source object's box
            x1, y1, x2, y2 = o.box
            back = (x1 + s.tile.x, y1 + s.tile.y, x2 + s.tile.x, y2 + s.tile.y)
            assert any(o.label == n and b[0] - 1e-4 <= back[0] and b[1] - 1e-4 <= back[1] and back[2] <= b[2] + 1e-4
                       and back[3] <= b[3] + 1e-4 for n, b in BIG), (s.id, o)
            assert 0 <= x1 < x2 <= 32 and 0 <= y1 < y2 <= 32
    right = [s for s in tiles if s.tile.x == 68]  # the right border's tiles hold the tree at x 70..100
    assert any(o.box == pytest.approx((2.0, 0.0, 32.0, 10.0)) for s in right for o in s.objects)
    report = json.loads((ds.root / "report.json").read_text())
    t = report["tiling"]
    assert (t["images_tiled"], t["images_whole"], t["tiles"], t["objects"], t["objects_in_no_tile"]) == (1, 1, 12, 4, 0)
    assert t["objects_whole_in_a_tile"] + t["objects_only_in_pieces"] == 4
    assert report["accepted"] == 2 and report["fates"]["files"]["samples"] == 2  # files, not tiles
    assert report["fates"]["entries"]["objects"] == 5 and not ds.quarantine
    from pipeline.reports.stats import compute, render
    stats = compute(ds)
    assert stats["tiling"]["tile_objects_clipped"] == sum(
        int(n.split(":")[1]) for s in tiles for n in s.notes if n.startswith("tile-clipped:")) > 0
    assert "tiles: 12 of 32x32 (overlap 8) from 1 images, 1 kept whole" in render(stats)
    again = ingest(src, tmp_path / "ds2", params, fmt="voc")
    for name in ("manifest.jsonl", "report.json", "duplicates.json"):
        assert (again.root / name).read_bytes() == (ds.root / name).read_bytes()


def test_an_object_in_no_tile_is_refused_with_its_index_not_lost(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(src / "a.png")
    # a box split 50/50 by the edge at x=32 of two tiles without overlap: under 0.6 in both
    (src / "a.xml").write_text(_voc("a.png", 64, 40, [("tree", (22, 5, 42, 15)), ("tree", (2, 2, 12, 12))]))
    params = IngestParams(workers=1, tile=TileParams(size=32, min_visibility=0.6), on_loss="warn")
    ds = ingest(src, tmp_path / "ds", params, fmt="voc")
    assert [(r.path, r.reason, r.index) for r in ds.quarantine] == [("a.xml", TILE_DROPPED, 0)]
    assert "min_visibility in every tile it crosses" in ds.quarantine[0].detail
    report = json.loads((ds.root / "report.json").read_text())
    assert report["fates"]["entries"]["refused"] == 1 and report["fates"]["entries"]["objects"] == 1
    assert report["tiling"]["objects_in_no_tile"] == 1
    assert sum(len(s.objects) for s in ds.samples) == 1


def test_trace_leads_from_a_version_row_of_a_tile_to_the_source_and_its_offset(tmp_path, tiled_tree):
    from pipeline.config import SplitParams
    from pipeline.split import assign_splits
    from pipeline.reports.trace import format_trace, trace, trace_facts
    from pipeline.version import write_version

    src, _ = tiled_tree
    ds = ingest(src, tmp_path / "ds", IngestParams(workers=1, tile=TileParams(size=32, overlap=8)), fmt="voc")
    splits = assign_splits(ds, SplitParams(ratios={"train": 0.5, "test": 0.5}))
    assert len({splits[s.id] for s in ds.samples if s.tile is not None}) == 1  # one source, one split
    version = tmp_path / "v"
    write_version(ds, splits, AugmentParams(copies=1, pipeline=[{"name": "hflip", "p": 1.0}]), version)
    got = trace(version, "big.png@68,38#1", tmp_path / "ds")
    assert got.identical and got.sample.tile.x == 68 and got.sample.tile.y == 38
    text = format_trace(got)
    assert "tile            at (68, 38) of big.png (100x70)" in text and "big.png" in text.split("\n")[1]
    assert trace_facts(got)["canonical"]["tile"]["source_id"] == "big.png"


def test_export_names_a_tile_by_its_source_and_offset_and_voc_reads_it_back(tmp_path, tiled_tree):
    from pipeline.export import export

    src, _ = tiled_tree
    ds = ingest(src, tmp_path / "ds", IngestParams(workers=1, tile=TileParams(size=32, overlap=8)), fmt="voc")
    export(ds, tmp_path / "voc", "voc")
    names = sorted(p.name for p in (tmp_path / "voc").rglob("*.png"))
    assert "big_68_38.png" in names and "big_0_0.png" in names and len(names) == 12
    back = ingest(tmp_path / "voc", tmp_path / "back", IngestParams(workers=1), fmt="voc")
    assert sum(len(s.objects) for s in back.samples) == sum(len(s.objects) for s in ds.samples)


def test_an_image_whose_every_object_is_in_no_tile_is_quarantined_not_kept_as_backgrounds(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(src / "a.png")
    (src / "a.xml").write_text(_voc("a.png", 64, 40, [("tree", (22, 5, 42, 15))]))
    Image.fromarray(np.full((40, 64, 3), 9, np.uint8)).save(src / "b.png")
    (src / "b.xml").write_text(_voc("b.png", 64, 40, [("tree", (2, 2, 12, 12))]))
    params = IngestParams(workers=1, tile=TileParams(size=32, min_visibility=0.6), on_loss="warn")
    ds = ingest(src, tmp_path / "ds", params, fmt="voc")
    assert sorted((r.path, r.reason) for r in ds.quarantine) == [("a.png", "annotation-unusable"),
                                                                  ("a.xml", TILE_DROPPED)]
    assert {s.tile.source_id for s in ds.samples} == {"b.png"}  # a.png's tiles were never stored
    import tarfile
    with tarfile.open(ds.root / "images" / "00000.tar") as tf:  # no orphan tile bytes in the pack
        assert len(tf.getnames()) == len(ds.samples) == 4  # b.png's tiles only
    report = json.loads((ds.root / "report.json").read_text())
    assert report["fates"]["files"]["quarantined"] == 1
    t = report["tiling"]
    assert (t["images_tiled"], t["tiles"], t["objects"], t["objects_in_no_tile"]) == (2, 4, 2, 1)


def test_tiles_are_the_same_bytes_whatever_the_worker_count(tmp_path):
    """64 images go through the worker pool (tiles pickled back to the writer): the dataset's
    bytes equal a one-process run's."""
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(64):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(src / f"im{i:02d}.png")
        (src / f"im{i:02d}.xml").write_text(_voc(f"im{i:02d}.png", 50, 40, [("tree", (i % 30, 5, i % 30 + 12, 30))]))
    runs = {}
    for workers in (1, 2):
        ds = ingest(src, tmp_path / f"w{workers}", IngestParams(workers=workers, near_duplicate_bits=3,
                                                                tile=TileParams(size=32, overlap=4)), fmt="voc")
        assert len(ds.samples) == 64 * 4
        runs[workers] = {p.relative_to(ds.root).as_posix(): p.read_bytes()
                         for p in sorted(ds.root.rglob("*")) if p.is_file()}
    assert runs[1] == runs[2]
