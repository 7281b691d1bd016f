"""Split of tiled data: the tiles of one source image never span two splits, nor do
duplicate groups (chains of the two included); unit counts follow the ratios as the
apportion fixes them; box data is still balanced by object classes."""

from __future__ import annotations

import os
from collections import Counter, defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.apportion import split_sizes
from pipeline.config import SplitParams
from pipeline.record import Dataset, Object, Sample, Tile
from pipeline.split import assign_splits, units

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ratios_st = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)).filter(
    lambda w: w[0] + w[2] > 0).map(lambda w: {k: x / sum(w) for k, x in zip(("train", "val", "test"), w)})
# Per source image: its tiles (0: kept whole), per tile the class indices of its objects,
# and a duplicate tag (sources with the same tag share one tile's pixels).
source_st = st.tuples(st.integers(0, 4), st.lists(st.lists(st.integers(0, 2), max_size=3), min_size=1, max_size=5),
                      st.one_of(st.none(), st.integers(0, 3)))


def dataset(sources, objects: bool) -> Dataset:
    samples = []
    for n, (cls, tiles, dup) in enumerate(sources):
        src = f"img{n}.png"
        for k, labels in enumerate(tiles):
            tiled = len(tiles) > 1
            # A shared tile: equal pixel hashes make the sources an exact duplicate group.
            h = f"dup{dup}" if dup is not None and k == 0 else f"{src}-{k}"
            samples.append(Sample(
                id=f"{src}@{k * 100},0" if tiled else src, image="", width=100, height=100, channels=3,
                label=None if objects else f"c{cls}", pixel_hash=h,
                objects=tuple(Object(f"c{c}", (0, 0, 5, 5)) for c in labels) if objects else (),
                tile=Tile(src, k * 100, 0, 100 * len(tiles), 100) if tiled else None))
    return Dataset(None, tuple(samples), ("c0", "c1", "c2", "c3", "c4"))  # type: ignore[arg-type]


def _check(ds: Dataset, a: dict[str, str], params: SplitParams, classification: bool) -> None:
    assert set(a) == {s.id for s in ds.samples}
    by_source = defaultdict(set)
    for s in ds.samples:
        by_source[s.tile.source_id if s.tile else s.id].add(a[s.id])
    assert all(len(v) == 1 for v in by_source.values()), by_source  # no source image in two splits
    by_hash = defaultdict(set)
    for s in ds.samples:
        by_hash[s.pixel_hash].add(a[s.id])
    assert all(len(v) == 1 for v in by_hash.values())  # no duplicate group crosses
    us = units(ds)
    live = [k for k, r in params.ratios.items() if r > 0]
    got = Counter(a[u[0].id] for u in us)
    assert set(got) <= set(live)
    if len(us) >= len(live):
        assert all(got[k] >= 1 for k in live)
    if classification:  # units per split exactly as the apportion sizes them
        assert {k: got.get(k, 0) for k in params.ratios} == split_sizes(len(us), params.ratios)


@SETTINGS
@given(st.lists(source_st, min_size=1, max_size=12), ratios_st, st.integers(0, 3), st.randoms(use_true_random=False))
def test_tiles_of_one_source_and_duplicate_groups_never_cross_splits(sources, ratios, seed, rnd):
    params = SplitParams(seed=seed, ratios=ratios)
    for objects in (False, True):
        ds = dataset(sources, objects)
        a = assign_splits(ds, params)
        _check(ds, a, params, classification=not objects)
        shuffled = list(ds.samples)
        rnd.shuffle(shuffled)
        assert assign_splits(Dataset(None, tuple(shuffled), ds.classes), params) == a  # type: ignore[arg-type]


def test_a_source_image_is_one_unit_and_tiles_chain_duplicates():
    sources = [(0, [[0], [0], [1]], None), (0, [[1]], 1), (0, [[0], [1]], 1), (0, [[2]], None)]
    ds = dataset(sources, objects=True)
    got = sorted(sorted(s.id for s in u) for u in units(ds))
    # img1 (whole) shares a tile's pixels with img2's first tile: img1 and both tiles of img2 are one unit.
    assert got == [["img0.png@0,0", "img0.png@100,0", "img0.png@200,0"],
                   ["img1.png", "img2.png@0,0", "img2.png@100,0"], ["img3.png"]]


def test_rare_classes_spread_over_the_splits_by_source_image():
    # 30 tiled sources: one class common, one rare (one object per fifth source): every split gets the rare one.
    sources = [(0, [[0, 0], [0] + ([1] if n % 5 == 0 else [])], None) for n in range(30)]
    ds = dataset(sources, objects=True)
    a = assign_splits(ds, SplitParams(seed=0, ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    rare = Counter(a[s.id] for s in ds.samples for o in s.objects if o.label == "c1")
    assert set(rare) == {"train", "val", "test"} and rare["train"] >= max(rare["val"], rare["test"])


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=12), ratios_st, st.integers(0, 5))
def test_every_split_gets_boxes_when_enough_images_have_them(objects, ratios, seed):
    """Images with 0..4 objects (0: a background image): every split with a positive ratio
    holds objects whenever as many images have objects as there are such splits."""
    samples = tuple(Sample(id=f"i{n}", image="", width=8, height=8, channels=3, pixel_hash=f"h{n}",
                           objects=tuple(Object("c0", (0, 0, 1, 1)) for _ in range(k))) for n, k in enumerate(objects))
    ds = Dataset(None, samples, ("c0",))  # type: ignore[arg-type]
    a = assign_splits(ds, SplitParams(seed=seed, ratios=ratios))
    live = [k for k, r in ratios.items() if r > 0]
    with_boxes = {a[s.id] for s in samples if s.objects}
    if sum(1 for k in objects if k) >= len(live):
        assert with_boxes == set(live), (objects, ratios, a)
    if len(samples) >= len(live):
        assert set(a.values()) == set(live)
