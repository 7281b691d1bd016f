"""Dataset versions: byte-identical reruns, manifest, card, objects, PNG storage, stale temp dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.config import AugmentParams, IngestParams, SplitParams
from pipeline.ingest import ingest
from pipeline.datasets import load_dataset
from pipeline.split import assign_splits
from pipeline.version import write_version
from pipeline.version.card import VersionCard
from pipeline.core.atomic import OWNER, STALE_UNOWNED_S, clean_stale
from tests.conftest import make_imagefolder
from tests.version_data import digests, make_annotated

AUG = [{"name": "rotate", "p": 0.8, "degrees": 10}, {"name": "crop", "p": 0.8, "padding": 2}]
GEO = [{"name": "rotate", "p": 1.0, "degrees": 25}, {"name": "hflip", "p": 0.5},
       {"name": "crop", "p": 1.0, "padding": 4}]


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    root = tmp_path_factory.mktemp("v")
    src = make_imagefolder(root / "src", classes=3, per_class=12, size=20, channels=3)
    ds = ingest(src, root / "canonical", IngestParams(workers=1))
    return ds, assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    ds = load_dataset(make_annotated(tmp_path_factory.mktemp("a") / "canonical"))
    return ds, assign_splits(ds, SplitParams(ratios={"train": 0.5, "val": 0.25, "test": 0.25}))


MIX = AUG + [{"name": "mixup", "p": 0.5}]  # cutmix in versions: tests/test_trace.py
ARRAYS = {f"{s}_{k}.npy" for s in ("train", "val", "test") for k in ("images", "labels", "mix_labels", "mix_weights")}


@pytest.mark.parametrize("pipeline", [AUG, MIX], ids=["geometric", "with_mixup"])
def test_bytes_do_not_depend_on_batch_size_or_workers_only_on_seed(canonical, tmp_path, pipeline):
    ds, assignment = canonical
    base = dict(copies=2, pipeline=pipeline, image_size=(16, 18))
    write_version(ds, assignment, AugmentParams(**base, batch_size=1, workers=1), tmp_path / "a")
    write_version(ds, assignment, AugmentParams(**base, batch_size=7, workers=4), tmp_path / "b")
    write_version(ds, assignment, AugmentParams(**base, batch_size=64, workers=2, seed=1), tmp_path / "c")
    a, b, c = (digests(tmp_path / x) for x in "abc")
    assert set(a) == ARRAYS | {"manifest.jsonl", "classes.json", "card.json", "CARD.md", ".pipeline-output.json"}
    assert a == b  # every file, card included
    changed = {k for k in a if a[k] != c[k]}
    # Only the seed moved: the augmented train images, their manifest rows and the card
    # (and, with mixing, which partner and how much).
    mixed = {"train_mix_labels.npy", "train_mix_weights.npy"} if pipeline is MIX else set()
    assert changed == {"train_images.npy", "manifest.jsonl", "card.json", "CARD.md"} | mixed


def test_manifest_card_and_packed_arrays_agree(canonical, tmp_path):
    ds, assignment = canonical
    typed = write_version(ds, assignment, AugmentParams(copies=2, pipeline=AUG), tmp_path / "v")
    v = tmp_path / "v"
    # The card is a record built once: card.json is its JSON, and reads back to it.
    assert (v / "card.json").read_text() == typed.to_json() and VersionCard.from_json(typed.to_json()) == typed
    card = typed.to_dict()
    rows = [json.loads(x) for x in (v / "manifest.jsonl").read_text().splitlines()]
    n_train = sum(1 for s in assignment.values() if s == "train")
    assert n_train == 22  # 0.6 of 36 is 21.6: the whole set is rounded first, val and test 7 each
    assert card["splits"]["train"]["samples"] == 3 * n_train and len(rows) == 3 * n_train + 2 * 7
    train = [r for r in rows if r["split"] == "train"]
    assert [r["index"] for r in train] == list(range(len(train)))
    assert {r["copy"] for r in train} == {0, 1, 2}
    assert all(r["ops"] == [] for r in rows if r["copy"] == 0)
    aug = [r for r in train if r["copy"]]
    assert all([o["op"] for o in r["ops"]] == ["rotate", "crop"] for r in aug)
    assert any(r["ops"][0]["angle"] != round(r["ops"][0]["angle"], 4) for r in aug)  # unrounded
    assert all(r["id"] == f"{r['source_id']}#{r['copy']}" for r in rows)
    imgs = np.load(v / "train_images.npy", mmap_mode="r")
    labels = np.load(v / "train_labels.npy")
    assert imgs.shape == (len(train), 20, 20, 3) and imgs.dtype == np.uint8
    assert [ds.classes[i] for i in labels] == [r["label"] for r in train]
    mean = imgs.reshape(-1, 3).mean(0) / 255.0
    assert card["splits"]["train"]["pixel_mean"] == pytest.approx(mean.tolist(), abs=1e-6)
    assert card["splits"]["train"]["pixel_std"] == pytest.approx((imgs.reshape(-1, 3).std(0) / 255).tolist(),
                                                                 abs=1e-6)
    assert sum(card["splits"]["train"]["per_class"].values()) == len(train)
    assert card["files"]["train_images.npy"] == digests(v)["train_images.npy"]
    assert card["pipeline"]["ops"][0]["name"] == "rotate" and card["seed"] == 0
    assert set(card["source"]) >= {"manifest_sha256", "images_sha256", "splits_sha256"}
    assert card["lineage"]["package_version"] and "batch_size" not in card["params"]
    # No commit and no time: a commit that changes no byte must not make a new version.
    assert "git_commit" not in card["lineage"] and "commit" not in (v / "CARD.md").read_text()
    md = (v / "CARD.md").read_text()
    assert "## Augmentation pipeline" in md and card["source"]["images_sha256"] in md
    assert json.loads((v / "card.json").read_text()) == card


def test_objects_follow_the_geometric_ops(annotated, tmp_path):
    ds, assignment = annotated
    write_version(ds, assignment, AugmentParams(copies=3, pipeline=GEO), tmp_path / "v")
    rows = [json.loads(x) for x in (tmp_path / "v/manifest.jsonl").read_text().splitlines()]
    imgs = np.load(tmp_path / "v/train_images.npy")
    labels = np.load(tmp_path / "v/train_labels.npy")
    assert (labels == -1).all()
    checked = 0
    for r in (r for r in rows if r["split"] == "train" and r["copy"]):
        img = imgs[r["index"]].astype(int)
        for o in r["objects"]:
            if not o["visible"]:
                continue
            x1, y1, x2, y2 = o["box"]
            red = (img[..., 0] > 150) & (img[..., 1] < 120) if o["label"] == "square" else \
                (img[..., 1] > 150) & (img[..., 0] < 120)
            ys, xs = np.nonzero(red)
            inside = (xs + 0.5 >= x1 - 1) & (xs + 0.5 <= x2 + 1) & (ys + 0.5 >= y1 - 1) & (ys + 0.5 <= y2 + 1)
            assert inside.mean() > 0.97, (r["id"], o)  # the object's pixels sit inside its moved box
            checked += 1
    assert checked >= 10


def test_large_images_are_written_as_png_files(annotated, tmp_path):
    from PIL import Image

    ds, assignment = annotated
    card = write_version(ds, assignment, AugmentParams(copies=1, pipeline=GEO, pack_max_pixels=100,
                                                       workers=2), tmp_path / "v").to_dict()
    v = tmp_path / "v"
    assert card["storage"] == "files" and not (v / "train_images.npy").exists()
    rows = [json.loads(x) for x in (v / "manifest.jsonl").read_text().splitlines()]
    assert all((v / r["file"]).is_file() for r in rows)
    assert np.asarray(Image.open(v / rows[0]["file"])).shape == (48, 64, 3)
    write_version(ds, assignment, AugmentParams(copies=1, pipeline=GEO, pack_max_pixels=100, batch_size=3),
                  tmp_path / "w")
    assert digests(v) == digests(tmp_path / "w")


def test_stale_temp_dirs_of_dead_runs_are_removed(tmp_path):
    out = tmp_path / "version"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / ".version.tmp-abc"
    stale.mkdir()
    (stale / OWNER).write_text(dead)
    orphan = tmp_path / ".version.tmp-nopid"  # killed before it wrote its owner file
    orphan.mkdir()
    old = os.stat(orphan).st_mtime - STALE_UNOWNED_S - 1
    os.utime(orphan, (old, old))
    fresh = tmp_path / ".version.tmp-fresh"  # just made by a run that is starting: left alone
    fresh.mkdir()
    foreign = tmp_path / ".version.tmp-user"  # not ours (no owner, no marker): left alone
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    os.utime(foreign, (old, old))
    live = tmp_path / ".version.tmp-live"
    live.mkdir()
    (live / OWNER).write_text(str(os.getppid()))  # a running process: another run, left alone
    assert set(clean_stale(out)) == {stale, orphan}
    assert live.is_dir() and fresh.is_dir() and foreign.is_dir() and not stale.exists()


def test_mixed_rows_agree_between_manifest_and_mix_arrays(canonical, tmp_path):
    ds, assignment = canonical
    card = write_version(ds, assignment, AugmentParams(copies=3, pipeline=MIX), tmp_path / "v")
    assert card.mix_ops == ("mixup",)
    card = card.to_dict()
    v = tmp_path / "v"
    train = [r for r in (json.loads(x) for x in (v / "manifest.jsonl").read_text().splitlines())
             if r["split"] == "train"]
    labels, mix = np.load(v / "train_labels.npy"), np.load(v / "train_mix_labels.npy")
    weights = np.load(v / "train_mix_weights.npy")
    assert mix.dtype == np.int64 and weights.dtype == np.float32 and len(mix) == len(weights) == len(train)
    assert {"train_mix_labels.npy", "train_mix_weights.npy"} <= set(card["files"])
    for r in train:
        assert [ds.classes[labels[r["index"]]], ds.classes[mix[r["index"]]]] == [r["label"], r["mix_label"]]
        assert weights[r["index"]] == np.float32(r["mix_weight"])
        if r["mix_weight"] == 1.0:
            assert r["mix_label"] == r["label"]
        if r["copy"]:
            assert len(r["partners"]) == 1 and all(p in assignment for p in r["partners"])  # one slot per mixing op
            assert all(assignment[p] == "train" for p in r["partners"])  # partners from the same split
    mixed = [r for r in train if r["mix_weight"] < 1.0]
    assert len(mixed) > len(train) // 6 and all(0.0 < r["mix_weight"] < 1.0 for r in mixed)
    assert any(r["mix_label"] != r["label"] for r in mixed)
    assert card["mix"]["ops"] == ["mixup"] and card["splits"]["train"]["mixed"] == len(mixed)
    assert card["splits"]["val"]["mixed"] == 0 and "Rows mixup applied to: train" in (v / "CARD.md").read_text()


def test_objects_dropped_by_the_rules_are_listed_with_a_reason(annotated, tmp_path):
    ds, assignment = annotated
    strict = [{"name": "rotate", "p": 1.0, "degrees": 40}, {"name": "crop", "p": 1.0, "padding": 20}]
    write_version(ds, assignment, AugmentParams(copies=3, pipeline=strict, min_visibility=0.9), tmp_path / "v")
    rows = [json.loads(x) for x in (tmp_path / "v/manifest.jsonl").read_text().splitlines()]
    by_id = {s.id: s for s in ds.samples}
    dropped = 0
    for r in rows:
        gone = r.get("dropped", [])
        assert len(r["objects"]) + len(gone) == len(by_id[r["source_id"]].objects)  # nothing lost silently
        assert all(d["reason"] and d["label"] in ds.classes for d in gone)
        dropped += len(gone)
    assert dropped > 0


def test_card_bytes_do_not_depend_on_how_paths_are_typed(tmp_path, monkeypatch):
    from pipeline.config import AugmentParams, IngestParams, SplitParams
    from pipeline.ingest import ingest
    from pipeline.split import assign_splits
    from pipeline.version import write_version
    from tests.conftest import make_imagefolder

    ds = ingest(make_imagefolder(tmp_path / "src", classes=2, per_class=4, size=12), tmp_path / "data" / "c",
                IngestParams(workers=1))
    a = assign_splits(ds, SplitParams(ratios={"train": 0.5, "val": 0.25, "test": 0.25}))
    write_version(ds, a, AugmentParams(), tmp_path / "data" / "v1")
    monkeypatch.chdir(tmp_path / "data")
    from pipeline.datasets import load_dataset

    write_version(load_dataset("c"), a, AugmentParams(), "v2")
    assert (tmp_path / "data" / "v1" / "card.json").read_bytes() == (tmp_path / "data" / "v2" / "card.json").read_bytes()
    assert json.loads((tmp_path / "data" / "v1" / "card.json").read_text())["source"]["dataset"] == "../c"
