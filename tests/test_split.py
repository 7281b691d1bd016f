"""Split: stratified, deterministic, independent of file order, given splits kept."""

from collections import Counter

import pytest

from pipeline.config import SplitParams
from pipeline.record import Dataset, Sample
from pipeline.split import assign_splits


def ds(n_per_class=(50, 30, 20), given=None):
    samples = [Sample(id=f"c{c}/{i}", image="", width=1, height=1, channels=1, label=f"c{c}",
                      split=(given or {}).get(f"c{c}/{i}"))
               for c, n in enumerate(n_per_class) for i in range(n)]
    return Dataset(root=None, samples=tuple(samples), classes=("c0", "c1", "c2"))  # type: ignore[arg-type]


def test_stratified_counts_per_class():
    a = assign_splits(ds(), SplitParams(ratios={"train": 0.8, "val": 0.1, "test": 0.1}))
    per = Counter((i.split("/")[0], s) for i, s in a.items())
    assert per[("c0", "train")] == 40 and per[("c0", "val")] == 5 and per[("c0", "test")] == 5
    assert per[("c1", "train")] == 24 and per[("c1", "val")] + per[("c1", "test")] == 6
    assert per[("c2", "train")] == 16 and per[("c2", "val")] == 2 and per[("c2", "test")] == 2


def test_deterministic_and_order_independent():
    d = ds()
    rev = Dataset(d.root, tuple(reversed(d.samples)), d.classes)
    p = SplitParams(seed=3)
    assert assign_splits(d, p) == assign_splits(rev, p)
    assert assign_splits(d, p) != assign_splits(d, SplitParams(seed=4))


def test_the_order_of_the_ratio_keys_does_not_change_the_splits():
    """yaml.safe_dump sorts keys: {test, train, val} once dealt other samples to each split."""
    d = ds()
    listed = SplitParams(ratios={"train": 0.8, "val": 0.1, "test": 0.1})
    for order in (("test", "train", "val"), ("val", "test", "train")):
        p = SplitParams(ratios={k: listed.ratios[k] for k in order})
        assert list(p.ratios) == ["train", "val", "test"]
        assert assign_splits(d, p) == assign_splits(d, listed)


def test_given_split_is_kept():
    given = {"c0/0": "test", "c0/1": "test"}
    a = assign_splits(ds(given=given), SplitParams())
    assert a["c0/0"] == "test" and a["c0/1"] == "test"


def _given_tree(tmp_path, splits=("train", "val"), per=(30, 6)):
    from PIL import Image

    from pipeline.config import IngestParams
    from pipeline.ingest import ingest
    from tests.conftest import class_image

    root = tmp_path / "src"
    for k, (name, n) in enumerate(zip(splits, per)):
        for c in range(2):
            d = root / name / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(class_image(c, i + 100 * k, 12)).save(d / f"{i:03d}.png")
    return ingest(root, tmp_path / "canonical", IngestParams(workers=1, near_duplicate_bits=-1))


def test_a_split_the_source_lacks_is_carved_from_its_train_split(tmp_path):
    """ants/bees: train/ and val/ given, the ratios ask for test: carve it from train."""
    from pipeline.split import write_splits
    from pipeline.reports.summary import split_facts, split_line

    ds = _given_tree(tmp_path)
    params = SplitParams(ratios={"train": 0.8, "val": 0.1, "test": 0.1})
    summary = write_splits(ds, params, tmp_path / "s")
    a = summary["assignment"]
    given = {s.id: s.split for s in ds.samples}
    assert all(a[i] == "val" for i, g in given.items() if g == "val")  # given val untouched
    test = [i for i in a if a[i] == "test"]
    assert test and all(given[i] == "train" for i in test)
    # its share of train + test, over the whole given train split first: 0.1 / 0.9 of
    # 60 images is 6.67 -> 7, then per class 3.5 each -> 4 and 3
    assert summary["carved"] == {"test": len(test)} and len(test) == 7
    label = {s.id: s.label for s in ds.samples}
    assert sorted(Counter(label[i] for i in test).values()) == [3, 4]
    assert "carved from the given train split: test" in split_line(split_facts(summary, tmp_path / "s"))
    assert write_splits(ds, params, tmp_path / "s2")["assignment"] == a  # deterministic


def test_keep_leaves_given_splits_and_an_empty_split_stops_split(tmp_path):
    from pipeline.core.errors import InputError
    from pipeline.split import write_splits

    ds = _given_tree(tmp_path)
    params = SplitParams(ratios={"train": 0.8, "val": 0.1, "test": 0.1}, given="keep")
    with pytest.raises(InputError, match=r"split\(s\) test would be empty.*split.given"):
        write_splits(ds, params, tmp_path / "s")
    assert not (tmp_path / "s").exists()
    ok = write_splits(ds, SplitParams(ratios={"train": 0.9, "val": 0.1, "test": 0.0}, given="keep"), tmp_path / "k")
    assert ok["assignment"] == {s.id: s.split for s in ds.samples}
