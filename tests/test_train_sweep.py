"""benchmarks/train_sweep.py's cross-validation: a digit and its augmented copies never
sit on both sides of a fold, and every train original is scored exactly once."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.train_sweep import cross_validate, cv_folds, score, write_fold
from pipeline.config import TrainParams
from pipeline.train.data import load_split, read_card, split_ids
from tests.conftest import make_version

K = 3


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    return make_version(tmp_path_factory.mktemp("sweep"), 12, {"train": 0.75, "val": 0.25, "test": 0.0},
                        [{"name": "rotate", "degrees": 10}], copies=2, out="version")


def test_folds_group_copies_and_hold_every_class(version):
    ids = split_ids(version, "train")
    labels = load_split(version, "train").labels
    folds = cv_folds(ids, labels, K)
    by_source: dict[str, set[int]] = {}
    for row, f in zip(ids, folds):
        by_source.setdefault(row.split("#")[0], set()).add(f)
    assert all(len(fs) == 1 for fs in by_source.values())  # copies share their original's fold
    assert {row.split("#")[1] for row in ids} == {"0", "1", "2"}
    for f in range(K):
        assert set(labels[np.array(folds) == f].tolist()) == {0, 1, 2}
    assert cv_folds(list(reversed(ids)), labels.flip(0), K) == list(reversed(folds))  # order-free


def test_fold_versions_partition_the_originals(version, tmp_path):
    ids = split_ids(version, "train")
    folds = cv_folds(ids, load_split(version, "train").labels, K)
    images = np.load(version / "train_images.npy")
    held_total = 0
    for f in range(K):
        out = tmp_path / f"f{f}"
        write_fold(version, out, f, folds, ids)
        train_ids, val_ids = split_ids(out, "train"), split_ids(out, "val")
        held = {r.split("#")[0] for r in val_ids}
        assert all(r.endswith("#0") for r in val_ids)
        assert not held & {r.split("#")[0] for r in train_ids}
        assert len(train_ids) + 3 * len(val_ids) == len(ids)
        assert np.array_equal(np.load(out / "val_images.npy"), images[[ids.index(r) for r in val_ids]])
        card = json.loads((out / "card.json").read_text())
        x = np.load(out / "train_images.npy") / 255.0
        assert card["splits"]["train"]["pixel_mean"] == pytest.approx([x.mean()], abs=1e-6)
        assert read_card(out).classes == read_card(version).classes
        held_total += len(held)
    assert held_total == len({r.split("#")[0] for r in ids})


def test_cross_validation_scores_each_original_once(version, tmp_path):
    params = TrainParams(model="resnet_small", width=4, epochs=1, batch_size=16, lr=0.05, resume=False)
    cv = cross_validate(version, params, K, tmp_path, tta_hflip=True)
    originals = len([r for r in split_ids(version, "train") if r.endswith("#0")])
    assert cv.accuracy == pytest.approx(1 - len(cv.wrong) / originals)
    assert cv.tta_accuracy == pytest.approx(1 - len(cv.tta_wrong) / originals)
    assert len(set(cv.wrong)) == len(cv.wrong) and len(set(cv.tta_wrong)) == len(cv.tta_wrong)
    assert cv.seconds > 0
    # The same fold models (training is deterministic): the plain scores do not move with TTA on.
    plain = cross_validate(version, params, K, tmp_path / "plain")
    assert (plain.wrong, plain.tta_accuracy, plain.tta_wrong) == (cv.wrong, None, None)


class LeftRight(torch.nn.Module):
    """Class 0's logit is 0.2 plus an odd function of (left half - right half): a mirror
    flips its sign, so the mirrored average always favours class 0 (sigmoid(0.2 + t) +
    sigmoid(0.2 - t) > 1), while the plain score follows each image's own asymmetry."""

    def forward(self, x):
        half = x.shape[3] // 2
        t = 4 * torch.tanh(100 * (x[..., :half].mean((1, 2, 3)) - x[..., -half:].mean((1, 2, 3))))
        return torch.stack([0.2 + t, torch.zeros_like(t)], 1)


def test_score_with_tta_averages_the_mirror(version):
    info = read_card(version)
    ckpt = {"shape": list(info.shape), "resize": list(info.resize), "mean": list(info.mean), "std": list(info.std)}
    labels = load_split(version, "val").labels.tolist()
    ids = [r.split("#")[0] for r in split_ids(version, "val")]
    plain = score(LeftRight(), ckpt, version, "val")[1]
    mirrored = score(LeftRight(), ckpt, version, "val", tta_hflip=True)[1]
    assert mirrored == [i for i, y in zip(ids, labels) if y != 0]
    assert plain != mirrored  # the data's asymmetry tells the two apart


def test_cross_validation_refuses_a_version_with_mixed_rows(tmp_path):
    # A mixup row blends a partner from any fold: the held-out digits would be trained on.
    make_version(tmp_path, 12, {"train": 0.75, "val": 0.25, "test": 0.0}, [{"name": "mixup", "alpha": 0.4}],
                 copies=1)
    with pytest.raises(SystemExit, match="mix digits across folds"):
        cross_validate(tmp_path / "v", TrainParams(width=4, epochs=1), K, tmp_path / "cv")
