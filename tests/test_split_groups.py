"""Split: duplicate groups never span splits; box data balanced by object classes."""

import json
from collections import Counter

from pipeline.config import IngestParams, SplitParams
from pipeline.ingest import ingest
from pipeline.record import Dataset, Object, Sample
from pipeline.split import assign_splits, write_splits
from tests.conftest import make_imagefolder


def sample(i, label=None, objects=(), h="", split=None):
    return Sample(id=i, image="", width=10, height=10, channels=1, label=label,
                  objects=tuple(Object(l, (0, 0, 1, 1)) for l in objects), pixel_hash=h, split=split)


def test_exact_duplicates_stay_together_and_given_split_wins():
    samples = [sample(f"c/{i}", "c", h=f"h{i % 7}") for i in range(70)]  # 7 groups of 10
    samples += [sample("g/1", "c", h="x", split="test"), sample("g/2", "c", h="x", split="test"),
                sample("g/3", "c", h="x", split="train")]
    for seed in range(5):
        a = assign_splits(Dataset(None, tuple(samples), ("c",)), SplitParams(seed=seed))  # type: ignore[arg-type]
        for k in range(7):
            assert len({a[f"c/{i}"] for i in range(k, 70, 7)}) == 1
        assert a["g/1"] == a["g/2"] == a["g/3"] == "test"


def smooth_image(seed: int, size: int = 64):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8))
    return small.resize((size, size), Image.Resampling.BICUBIC)


def near_tree(root):
    """80 smooth images: every third one also as a re-encoded, resized copy (a near duplicate)."""
    from PIL import Image
    for c in range(2):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(30):
            im = smooth_image(100 * c + i)
            im.save(d / f"{i:03d}.png")
            if i % 3 == 0:  # re-encoded, resized copies: near, not exact, duplicates
                im.resize((60, 60), Image.Resampling.BILINEAR).save(d / f"{i:03d}_copy.jpg", quality=70)
    return root


NEAR_PAIRS = sorted((f"class{c}/{i:03d}.png", f"class{c}/{i:03d}_copy.jpg") for c in range(2) for i in range(0, 30, 3))


def test_near_duplicates_from_ingest_never_leak(tmp_path):
    ds = ingest(near_tree(tmp_path / "src"), tmp_path / "ds", IngestParams(workers=1, near_duplicate_bits=3))
    groups = json.loads((ds.root / "duplicates.json").read_text())["groups"]
    assert sorted(tuple(g["ids"]) for g in groups) == NEAR_PAIRS
    assert all(g["kind"] == "near" for g in groups)
    for seed in range(3):
        summary = write_splits(ds, SplitParams(seed=seed, ratios={"train": 0.5, "val": 0.2, "test": 0.3}),
                               tmp_path / "splits")
        a = summary["assignment"]
        assert all(len({a[i] for i in g["ids"]}) == 1 for g in groups)
        assert summary["duplicate_groups"] == 20 and set(a.values()) == {"train", "val", "test"}


def test_near_duplicates_found_by_worker_processes(tmp_path):
    # 80 images and two workers: the dHash is computed in the decode processes (the pool path).
    ds = ingest(near_tree(tmp_path / "src"), tmp_path / "ds", IngestParams(workers=2, near_duplicate_bits=3))
    groups = json.loads((ds.root / "duplicates.json").read_text())["groups"]
    assert sorted(tuple(g["ids"]) for g in groups) == NEAR_PAIRS
    assert all(len(s.dhash) == 16 for s in ds.samples)


def test_no_dhash_is_computed_when_near_duplicates_are_off(tmp_path, monkeypatch):
    from pipeline.images import imagehash, imageread

    def refuse(img):
        raise AssertionError("dHash computed with near duplicates off")

    # where the decode path reads it, and the module tiling imports it from
    monkeypatch.setattr(imageread, "dhash", refuse)
    monkeypatch.setattr(imagehash, "dhash", refuse)
    src = near_tree(tmp_path / "src")
    (src / "class1" / "exact.png").write_bytes((src / "class1" / "004.png").read_bytes())
    ds = ingest(src, tmp_path / "off", IngestParams(workers=1, near_duplicate_bits=-1))
    assert len(ds.samples) == 81 and not ds.quarantine
    assert "dhash" not in (ds.root / "manifest.jsonl").read_text()
    groups = json.loads((ds.root / "duplicates.json").read_text())["groups"]
    assert groups == [{"ids": ["class1/004.png", "class1/exact.png"], "kind": "exact"}]  # exact ones still found
    # The same run with near duplicates on does reach the (refusing) dHash: the patch is live.
    on = ingest(src, tmp_path / "on", IngestParams(workers=1, near_duplicate_bits=3, on_loss="warn"))
    assert not on.samples and {r.reason for r in on.quarantine} == {"decode-failed"}


def test_boxes_balanced_by_object_class_and_deterministic():
    samples = []
    for i in range(200):
        labels = ["car"] * (1 + i % 3) + (["bike"] if i % 10 == 0 else []) + (["bus"] if i % 25 == 0 else [])
        samples.append(sample(f"img{i:03d}", objects=labels))
    samples += [sample(f"bg{i}") for i in range(20)]
    ds = Dataset(None, tuple(samples), ("bike", "bus", "car"))  # type: ignore[arg-type]
    p = SplitParams(seed=3, ratios={"train": 0.8, "val": 0.1, "test": 0.1})
    a = assign_splits(ds, p)
    assert a == assign_splits(Dataset(None, tuple(reversed(samples)), ds.classes), p)  # type: ignore[arg-type]
    objs = {k: Counter() for k in ("train", "val", "test")}
    for s in samples:
        objs[a[s.id]].update(o.label for o in s.objects)
    for cls, n in (("bike", 20), ("bus", 8), ("car", 399)):
        assert abs(objs["train"][cls] - 0.8 * n) <= max(2, 0.05 * n), (cls, objs)
        assert objs["val"][cls] >= 1 and objs["test"][cls] >= 1
    bg = Counter(a[f"bg{i}"] for i in range(20))
    assert bg == {"train": 16, "val": 2, "test": 2}


def test_same_picture_under_two_classes_is_reported_as_a_label_conflict(tmp_path):
    from pipeline.reports.stats import compute, render

    src = make_imagefolder(tmp_path / "src", classes=2, per_class=4, channels=3)
    (src / "class1" / "again.png").write_bytes((src / "class0" / "002.png").read_bytes())
    (src / "class0" / "twin.png").write_bytes((src / "class0" / "003.png").read_bytes())
    ds = ingest(src, tmp_path / "ds", IngestParams(workers=1, near_duplicate_bits=-1))
    groups = json.loads((ds.root / "duplicates.json").read_text())["groups"]
    assert groups == [
        {"ids": ["class0/002.png", "class1/again.png"], "kind": "exact", "labels": ["class0", "class1"]},
        {"ids": ["class0/003.png", "class0/twin.png"], "kind": "exact"},
    ]
    stats = compute(ds)
    assert (stats["duplicate_groups"], stats["duplicate_label_conflicts"]) == (2, 1)
    assert "duplicate groups: 2 (4 samples; 1 with conflicting labels)" in render(stats)
