"""Dataset version writing, training and evaluation on a tiny generated dataset."""

import hashlib
import json

import numpy as np
import pytest
import torch

from pipeline.config import AugmentParams, EvaluateParams, IngestParams, SplitParams, TrainParams
from pipeline.version import write_version
from pipeline.ingest import ingest
from pipeline.split import assign_splits
from pipeline.train.evaluate import confusion_matrix, evaluate, per_class_scores
from pipeline.train.loop import train
from tests.conftest import make_imagefolder

AUG = [{"name": "rotate", "p": 0.8, "degrees": 10}, {"name": "crop", "p": 0.8, "padding": 2}]


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    root = tmp_path_factory.mktemp("v")
    src = make_imagefolder(root / "src", classes=3, per_class=20, size=16)
    ds = ingest(src, root / "canonical", IngestParams(workers=1))
    return ds, assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.glob("*.npy"))} | {
        "manifest": hashlib.sha256((d / "manifest.jsonl").read_bytes()).hexdigest()}


def test_version_is_identical_for_any_batch_size(canonical, tmp_path):
    ds, assignment = canonical
    a = write_version(ds, assignment, AugmentParams(copies=2, batch_size=1, pipeline=AUG), tmp_path / "a")
    write_version(ds, assignment, AugmentParams(copies=2, batch_size=7, pipeline=AUG), tmp_path / "b")
    write_version(ds, assignment, AugmentParams(copies=2, batch_size=7, pipeline=AUG, seed=1), tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["train_images.npy"] != digest(tmp_path / "c")["train_images.npy"]
    assert a.splits["train"].samples == 36 * 3 and a.splits["test"].samples == 12
    imgs = np.load(tmp_path / "a/train_images.npy", mmap_mode="r")
    assert imgs.shape == (108, 16, 16, 1) and imgs.dtype == np.uint8
    rows = [json.loads(l) for l in (tmp_path / "a/manifest.jsonl").read_text().splitlines()]
    aug = [r for r in rows if r["copy"] > 0]
    assert aug and all(r["ops"][0]["op"] == "rotate" for r in aug)
    assert all(r["ops"] == [] for r in rows if r["copy"] == 0)


def test_train_and_evaluate(canonical, tmp_path):
    ds, assignment = canonical
    write_version(ds, assignment, AugmentParams(copies=1, pipeline=AUG), tmp_path / "v")
    hist = train(tmp_path / "v", TrainParams(epochs=3, batch_size=16, lr=3e-3), tmp_path / "m.pt",
                 tmp_path / "tb", tmp_path / "train.json", tmp_path / "curve.csv")
    assert len(hist) == 3 and hist[-1].train_loss < hist[0].train_loss
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))  # tb/<run>/
    assert (tmp_path / "curve.csv").read_text().count("\n") == 4
    result = evaluate(tmp_path / "v", tmp_path / "m.pt", EvaluateParams(), tmp_path / "eval.json",
                      tmp_path / "confusion.csv", tmp_path / "tb_eval")
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert list(saved)[:2] == ["accuracy", "macro_f1"] and "per_class" not in saved  # headline only
    assert {k: result[k] for k in saved} == saved and set(result["per_class"]) == {"class0", "class1", "class2"}
    assert sum(map(sum, result["confusion_matrix"])) == 12
    assert (tmp_path / "confusion.csv").read_text().startswith("actual,predicted\n")


def test_training_is_deterministic(canonical, tmp_path):
    ds, assignment = canonical
    write_version(ds, assignment, AugmentParams(copies=0), tmp_path / "v")
    p = TrainParams(epochs=1, batch_size=8)
    for run in ("a", "b"):
        train(tmp_path / "v", p, tmp_path / f"{run}.pt", tmp_path / f"tb{run}", tmp_path / f"{run}.json",
              tmp_path / f"{run}.csv")
    a = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_scores_against_hand_computed_values():
    actual = torch.tensor([0, 0, 1, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    cm = confusion_matrix(actual, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    scores, macro = per_class_scores(cm, ["a", "b", "c"])
    assert scores["a"]["precision"] == 0.5 and scores["b"]["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert macro == pytest.approx((0.5 + 2 / 3 + 1) / 3, abs=1e-6)
