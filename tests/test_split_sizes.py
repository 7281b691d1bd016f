"""Split sizes: fixed over the whole set, then per class; small data splits whenever it can.

"Possible" is exact: every split with a positive ratio can get a unit exactly when
there are at least as many units (duplicate groups and single samples) as such
splits. Then no such split is empty, each class's count in each split is within one
unit of its exact share of that split, whole-set sizes are within one unit of
``ratio * units`` whenever every positive ratio asks for at least one unit, groups
never straddle splits, and file order changes nothing.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.apportion import largest_remainder, per_class, split_sizes
from pipeline.config import SplitParams
from pipeline.core.errors import InputError
from pipeline.record import Dataset, Object, Sample
from pipeline.split import assign_splits, check_not_empty, units

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULT = {"train": 0.8, "val": 0.1, "test": 0.1}


def dataset(groups_per_class: list[list[int]], objects: bool = False, root=None) -> Dataset:
    """Class ``c`` has one duplicate group (equal pixel hash) per entry, of that many samples."""
    samples = []
    for c, sizes in enumerate(groups_per_class):
        for g, size in enumerate(sizes):
            for j in range(size):
                labels = (f"c{c}",) * (1 + g % 2) if objects else ()
                samples.append(Sample(id=f"c{c}/g{g}-{j}", image="", width=8, height=8, channels=1,
                                      label=None if objects else f"c{c}", pixel_hash=f"{c}-{g}",
                                      objects=tuple(Object(l, (0, 0, 1, 1)) for l in labels)))
    classes = tuple(f"c{c}" for c in range(len(groups_per_class)))
    return Dataset(root=root, samples=tuple(samples), classes=classes)  # type: ignore[arg-type]


ratios_st = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)).filter(
    lambda w: w[0] + w[2] > 0).map(lambda w: {k: x / sum(w) for k, x in zip(("train", "val", "test"), w)})
classes_st = st.lists(st.lists(st.integers(1, 3), max_size=12), min_size=1, max_size=6).filter(
    lambda cs: any(cs))


def _check(ds: Dataset, params: SplitParams, assignment: dict[str, str], classification: bool) -> None:
    us = units(ds)
    assert set(assignment) == {s.id for s in ds.samples}
    for u in us:  # a duplicate group never straddles splits
        assert len({assignment[s.id] for s in u}) == 1
    total = Counter(assignment[u[0].id] for u in us)
    n = len(us)
    live = [k for k, r in params.ratios.items() if r > 0]
    assert set(total) <= set(live)  # a zero ratio gets nothing
    if n >= len(live):
        assert all(total[k] >= 1 for k in live), (total, params.ratios)
    if not classification:
        return  # box data balances object classes, not units: its sizes are its own
    if all(n * params.ratios[k] >= 1 for k in live):
        assert all(abs(total[k] - n * params.ratios[k]) < 1 for k in live), (total, params.ratios)
    by_class: dict[str, Counter] = defaultdict(Counter)  # each class within one unit of its exact share
    for u in us:
        by_class[u[0].label][assignment[u[0].id]] += 1
    for c, got in by_class.items():
        size = sum(got.values())
        for k in live:
            assert abs(got[k] - size * total[k] / n) < 1, (c, k, got, total)


@SETTINGS
@given(classes_st, ratios_st, st.integers(0, 3), st.randoms(use_true_random=False))
def test_classification_splits_are_never_empty_when_possible(groups, ratios, seed, rnd):
    ds = dataset(groups)
    params = SplitParams(seed=seed, ratios=ratios)
    a = assign_splits(ds, params)
    _check(ds, params, a, classification=True)
    shuffled = list(ds.samples)
    rnd.shuffle(shuffled)
    assert assign_splits(Dataset(None, tuple(shuffled), ds.classes), params) == a  # type: ignore[arg-type]


@SETTINGS
@given(classes_st, ratios_st, st.integers(0, 3), st.randoms(use_true_random=False))
def test_box_data_splits_are_never_empty_when_possible(groups, ratios, seed, rnd):
    ds = dataset(groups, objects=True)
    params = SplitParams(seed=seed, ratios=ratios)
    a = assign_splits(ds, params)
    _check(ds, params, a, classification=False)
    shuffled = list(ds.samples)
    rnd.shuffle(shuffled)
    assert assign_splits(Dataset(None, tuple(shuffled), ds.classes), params) == a  # type: ignore[arg-type]


@SETTINGS
@given(st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(0, 40), min_size=1, max_size=8),
       ratios_st)
def test_per_class_rounds_every_share_down_or_up_and_adds_up(rows, ratios):
    n = sum(rows.values())
    sizes = split_sizes(n, ratios)
    assert sum(sizes.values()) == n
    out = per_class(rows, sizes, sorted(rows))
    for c, got in out.items():
        assert sum(got.values()) == rows[c]
        for k, x in got.items():
            assert (rows[c] * sizes[k]) // n <= x <= -(-(rows[c] * sizes[k]) // n) if n else x == 0
    for k in sizes:
        assert sum(out[c][k] for c in rows) == sizes[k]
    # Each class rounded on its own (largest remainder, ties to the split named first):
    # whenever those add up to the split sizes, they are the answer.
    alone = {}
    for c, u in rows.items():
        got = {k: (u * sizes[k]) // n if n else 0 for k in sizes}
        for k in sorted(sizes, key=lambda k: (-((u * sizes[k]) % n) if n else 0, k))[:u - sum(got.values())]:
            got[k] += 1
        alone[c] = got
    if all(sum(alone[c][k] for c in rows) == sizes[k] for k in sizes):
        assert out == alone


def test_twelve_images_split_ten_one_one():
    """2 classes of 6 at 0.8/0.1/0.1: rounding each class alone left val empty."""
    ds = dataset([[1] * 6, [1] * 6])
    a = assign_splits(ds, SplitParams(ratios=DEFAULT))
    assert Counter(a.values()) == {"train": 10, "val": 1, "test": 1}
    per = Counter((i.split("/")[0], k) for i, k in a.items())
    assert per[("c0", "train")] == per[("c1", "train")] == 5


def test_fifty_duplicate_groups_split_by_groups():
    """2,000 images in 50 duplicate groups, 5 per class: 40/5/5 groups, none split apart."""
    ds = dataset([[40] * 5 for _ in range(10)])
    params = SplitParams(ratios=DEFAULT)
    a = assign_splits(ds, params)
    _check(ds, params, a, classification=True)
    groups = Counter(a[u[0].id] for u in units(ds))
    assert groups == {"train": 40, "val": 5, "test": 5}
    assert Counter(a.values()) == {"train": 1600, "val": 200, "test": 200}


@pytest.mark.parametrize("groups, expected", [
    ([[1], [1]], "only 2 samples to split, too few for split.ratios"),
    ([[40], [30]], "only 2 duplicate groups (70 samples; a group stays in one split) to split"),
    ([[40, 1]], "only 2 units: 1 duplicate group (40 samples; a group stays in one split) and 1 single sample"),
])
def test_only_the_impossible_is_refused_and_the_message_counts_units(tmp_path, groups, expected):
    ds = dataset(groups, root=tmp_path)
    params = SplitParams(ratios=DEFAULT)
    counts = Counter(assign_splits(ds, params).values())
    with pytest.raises(InputError) as info:
        check_not_empty(counts, params, ds)
    assert expected in str(info.value) and "each of the 3 splits with a positive ratio needs one" in str(info.value)
    assert str(info.value).startswith(f"{tmp_path}: split(s) ")


def test_three_units_at_skewed_ratios_still_fill_every_split():
    ds = dataset([[1, 1, 1]])
    a = assign_splits(ds, SplitParams(ratios={"train": 0.98, "val": 0.01, "test": 0.01}))
    assert sorted(a.values()) == ["test", "train", "val"]
    boxes = dataset([[1, 1, 1]], objects=True)
    b = assign_splits(boxes, SplitParams(ratios={"train": 0.98, "val": 0.01, "test": 0.01}))
    assert sorted(b.values()) == ["test", "train", "val"]


def test_largest_remainder_ties_and_float_sums():
    assert largest_remainder(5, DEFAULT) == {"train": 4, "val": 0, "test": 1}  # a tie: the name first
    assert largest_remainder(10, {"train": 0.7, "val": 0.2, "test": 0.1}) == {"train": 7, "val": 2, "test": 1}
    assert largest_remainder(7, {"train": 1.0, "test": 0.0}) == {"train": 7, "test": 0}
    assert largest_remainder(0, DEFAULT) == {"train": 0, "val": 0, "test": 0}


def test_carving_from_a_given_train_split_too_small_says_so(tmp_path):
    samples = tuple(Sample(id=f"{k}/{i}", image="", width=8, height=8, channels=1, label="c", split=k)
                    for k, n in (("train", 1), ("val", 2)) for i in range(n))
    ds = Dataset(root=tmp_path, samples=samples, classes=("c",))
    params = SplitParams(ratios=DEFAULT)
    with pytest.raises(InputError, match=r"split\(s\) test would be empty: the given train split holds only "
                                         r"1 sample, too few to carve test from it and keep train"):
        check_not_empty(Counter(assign_splits(ds, params).values()), params, ds)
    two = Dataset(root=tmp_path, samples=samples + (Sample(id="train/1", image="", width=8, height=8, channels=1,
                                                           label="c", split="train"),), classes=("c",))
    assert Counter(assign_splits(two, params).values()) == {"train": 1, "val": 2, "test": 1}
