"""Spatial-block splits of tiled images (``split.block``): one large image splits at
all, no two tiles of different splits share a pixel (the overlapping ones become the
buffer, in no split), the buffer is the least that makes it so, and the version leaves
the buffer out."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import SplitParams
from pipeline.core.errors import InputError
from pipeline.record import Dataset, Object, Sample, Tile
from pipeline.split import _assign, assign_splits, units, write_splits
from pipeline.record import BUFFER

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def orthomosaic(cols: int, rows: int, size: int = 100, overlap: int = 10, images: int = 1, root=None) -> Dataset:
    """Tiles as ingest.tile cuts them: a grid at stride size - overlap, each with a box."""
    step = size - overlap
    w, h = step * (cols - 1) + size, step * (rows - 1) + size
    samples = []
    for n in range(images):
        src = f"ortho{n}.png"
        for r in range(rows):
            for c in range(cols):
                x, y = c * step, r * step
                samples.append(Sample(id=f"{src}@{x},{y}", image="", width=size, height=size, channels=3,
                                      pixel_hash=f"{src}-{x}-{y}",
                                      objects=(Object("tree", (10, 10, 40, 40)), Object("tree", (50, 50, 80, 90))),
                                      tile=Tile(src, x, y, w, h)))
    return Dataset(root, tuple(samples), ("tree",))  # type: ignore[arg-type]


def overlapping_pairs_across(ds: Dataset, a: dict[str, str]) -> list[tuple[str, str]]:
    tiles = [s for s in ds.samples if a[s.id] != BUFFER]
    out = []
    for i, s in enumerate(tiles):
        for t in tiles[i + 1:]:
            if s.tile.source_id != t.tile.source_id or a[s.id] == a[t.id]:
                continue
            if s.tile.x < t.tile.x + t.width and t.tile.x < s.tile.x + s.width and \
                    s.tile.y < t.tile.y + t.height and t.tile.y < s.tile.y + s.height:
                out.append((s.id, t.id))
    return out


def test_one_orthomosaic_splits_by_blocks_where_it_could_not_split_before():
    ds = orthomosaic(12, 12)
    whole = assign_splits(ds, SplitParams())
    assert len(set(whole.values())) == 1  # one image: one unit, all of it in one split
    a = assign_splits(ds, SplitParams(block=360))
    counts = Counter(a.values())
    assert counts["train"] > counts["val"] >= 1 and counts["test"] >= 1 and 0 < counts[BUFFER] < len(ds.samples) / 2
    assert not overlapping_pairs_across(ds, a)


@SETTINGS
@given(cols=st.integers(2, 9), rows=st.integers(2, 9), overlap=st.sampled_from([0, 10, 40]),
       block=st.sampled_from([180, 250, 400, 1000]), images=st.integers(1, 3), seed=st.integers(0, 10))
def test_no_pixel_in_two_splits_and_every_buffered_tile_had_a_reason(cols, rows, overlap, block, images, seed):
    ds = orthomosaic(cols, rows, overlap=overlap, images=images)
    params = SplitParams(block=block, seed=seed)
    try:
        a = assign_splits(ds, params)
    except InputError as err:
        assert "split.block" in str(err) and "buffer" in str(err)
        return
    assert set(a) == {s.id for s in ds.samples}
    assert not overlapping_pairs_across(ds, a)
    assert a == assign_splits(ds, params)  # deterministic
    # no more than needed: a buffered tile, back in the split it was dealt, overlaps a kept
    # tile of a higher-ranked split (test over val over train)
    dealt: dict[str, str] = {}
    _assign(units(ds, block), params.ratios, seed, dealt)
    assert all(a[i] in (k, BUFFER) for i, k in dealt.items())
    rank = {"train": 0, "val": 1, "test": 2}
    by_id = {s.id: s for s in ds.samples}
    for i in (i for i, k in a.items() if k == BUFFER):
        back = {**a, i: dealt[i]}
        assert any(rank[a[t]] > rank[dealt[i]] for pair in overlapping_pairs_across(ds, back) if i in pair
                   for t in pair if t != i), (i, by_id[i].tile)
    if overlap == 0:  # tiles that only touch share no pixel: nothing to buffer
        assert BUFFER not in a.values()


def test_the_scored_splits_keep_their_tiles_and_train_gives_up_its_edge():
    ds = orthomosaic(10, 10, overlap=40)
    a = assign_splits(ds, SplitParams(block=300, seed=3))
    dealt: dict[str, str] = {}
    _assign(units(ds, 300), {"train": 0.8, "val": 0.1, "test": 0.1}, 3, dealt)  # before the buffer
    lost = Counter(dealt[i] for i, k in a.items() if k == BUFFER)
    assert lost["test"] == 0 and lost["train"] > lost["val"]
    assert all(a[i] in (k, BUFFER) for i, k in dealt.items())


def test_a_block_smaller_than_the_tiles_is_refused_with_a_size_that_works():
    with pytest.raises(InputError) as err:
        assign_splits(orthomosaic(8, 8, overlap=40), SplitParams(block=50))
    assert "split.block 50" in str(err.value) and "400" in str(err.value)


def test_splits_json_counts_the_buffer_and_the_version_leaves_it_out(tmp_path):
    from pipeline.config import AugmentParams
    from pipeline.reports.summary import split_line, split_facts
    from pipeline.version.plan import Plan

    ds = orthomosaic(8, 8, overlap=40, root=tmp_path / "canonical")
    summary = write_splits(ds, SplitParams(block=300), tmp_path / "splits")
    saved = json.loads((tmp_path / "splits" / "splits.json").read_text())
    n = saved["buffer"]["tiles"]
    assert saved["block"] == 300 and n > 0 and saved["buffer"]["objects"] == 2 * n
    assert sum(saved["counts"].values()) + n == len(ds.samples) and BUFFER not in saved["counts"]
    # these tiles' objects lie in one tile each: every buffered one is lost
    assert saved["buffer"]["objects_in_no_kept_tile"] == 2 * n
    line = split_line(split_facts(summary, tmp_path / "splits"))
    assert f"{n} tiles ({2 * n} objects; {2 * n} of them in no kept tile) left out as the buffer" in line
    plan = Plan(ds, saved["assignment"], AugmentParams(copies=0))
    assert sum(len(v) for v in plan.by_split.values()) == len(ds.samples) - n
    plain = write_splits(orthomosaic(4, 4, images=2, root=tmp_path / "c2"),
                         SplitParams(ratios={"train": 0.5, "test": 0.5}), tmp_path / "s2")
    assert "buffer" not in plain and "block" not in plain  # without blocks, splits.json as before


def test_one_large_image_without_blocks_is_told_about_blocks(tmp_path):
    with pytest.raises(InputError) as err:
        write_splits(orthomosaic(8, 8, root=tmp_path / "c"), SplitParams(), tmp_path / "s")
    msg = str(err.value)
    assert "1 image cut into 64 tiles" in msg and "split.block" in msg and "duplicate" not in msg


def test_ingest_tiles_split_by_blocks_and_the_version_holds_no_buffered_tile(tmp_path):
    """Through the CLI, as a drone user would: one annotated 600x600 orthomosaic in
    labelImg's layout, cut into 100 px tiles at ingest, dealt by 300 px blocks."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from tests.test_ingest_tiles import _voc

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(src / "ortho.png")
    boxes = [("tree", (x, y, x + 20, y + 20)) for x in range(10, 580, 50) for y in range(10, 580, 50)]
    (src / "ortho.xml").write_text(_voc("ortho.png", 600, 600, boxes))
    (tmp_path / "params.yaml").write_text(
        "ingest: {workers: 1, format: voc, tile: {size: 100, overlap: 20}}\n"
        "split: {seed: 1, block: 300}\naugment: {copies: 0}\n")
    out = {}
    for step in (("ingest", src, "--out", "canonical"), ("split", "canonical", "--out", "splits"),
                 ("augment", "canonical", "--splits", "splits", "--out", "version")):
        r = subprocess.run([sys.executable, "-m", "pipeline", *map(str, step)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "PIPELINE_NO_PROGRESS": "1"})
        assert r.returncode == 0, (step, r.stdout, r.stderr)
        out[step[0]] = r.stdout
    saved = json.loads((tmp_path / "splits" / "splits.json").read_text())
    buffered = {i for i, k in saved["assignment"].items() if k == BUFFER}
    assert buffered and set(saved["counts"]) == {"train", "val", "test"}
    assert f"{len(buffered)} tiles" in out["split"] and "left out as the buffer" in out["split"]
    rows = [json.loads(line) for line in (tmp_path / "version" / "manifest.jsonl").read_text().splitlines()]
    sources = {r["source_id"] for r in rows}
    assert not sources & buffered and len(sources) == sum(saved["counts"].values())


def test_a_buffered_object_that_a_kept_tile_also_holds_is_not_counted_lost():
    """Overlapping tiles repeat the objects near their edges: only those that no kept tile
    holds (same image, same label, a box around the centre) are lost."""
    from pipeline.split_blocks import objects_in_no_kept_tile

    def tile(x, objects):
        return Sample(id=f"o.png@{x},0", image="", width=100, height=100, channels=3, pixel_hash=f"{x}",
                      objects=tuple(objects), tile=Tile("o.png", x, 0, 160, 100))

    kept = tile(0, [Object("tree", (70, 10, 90, 30)),      # source (70..90): also in the buffered tile
                    Object("bush", (65, 60, 75, 70)),      # source (65..75)
                    Object("tree", (95, 80, 100, 90))])    # a sliver of a tree whose centre is at x 102
    buffered = tile(60, [Object("tree", (10, 10, 30, 30)),  # the kept tile's first tree: not lost
                         Object("tree", (5, 60, 15, 70)),   # where the kept tile has a bush: lost
                         Object("tree", (35, 80, 49, 90)),  # centre at source x 102: the sliver does not hold it
                         Object("tree", (60, 40, 80, 60))])  # only here: lost
    ds = Dataset(None, (kept, buffered), ("bush", "tree"))  # type: ignore[arg-type]
    assert objects_in_no_kept_tile(ds, {kept.id: "train", buffered.id: BUFFER}) == 3
    assert objects_in_no_kept_tile(ds, {kept.id: "train", buffered.id: "val"}) == 0
    assert objects_in_no_kept_tile(ds, {kept.id: BUFFER, buffered.id: BUFFER}) == 7
