"""Split: stratified, deterministic, independent of file order, given splits kept."""

from collections import Counter

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


def test_given_split_is_kept():
    given = {"c0/0": "test", "c0/1": "test"}
    a = assign_splits(ds(given=given), SplitParams())
    assert a["c0/0"] == "test" and a["c0/1"] == "test"
