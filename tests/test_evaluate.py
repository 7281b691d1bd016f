"""evaluate: metrics JSON, confusion CSV, flip TTA and the TensorBoard run."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.config import AugmentParams, EvaluateParams, IngestParams, SplitParams, TrainParams
from pipeline.version import write_version
from pipeline.errors import InputError
from pipeline.ingest import ingest
from pipeline.split import assign_splits
from pipeline.train.board import worst_grid
from pipeline.train.evaluate import evaluate
from pipeline.train.loop import train
from tests.conftest import make_imagefolder, make_version


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    make_version(root, 12, {"train": 0.5, "val": 0.25, "test": 0.25}, channels=3)
    train(root / "v", TrainParams(width=4, epochs=2, batch_size=6), root / "m.pt", root / "tb",
          root / "t.json", root / "c.csv")
    return root


def run(root, out, **kw):
    return evaluate(root / "v", root / "m.pt", EvaluateParams(**kw), out / "eval.json", out / "confusion.csv",
                    out / "tb", out / "report.json")


def test_metrics_file_has_what_dvc_compares(trained, tmp_path):
    result = run(trained, tmp_path)
    saved = json.loads((tmp_path / "eval.json").read_text())
    report = json.loads((tmp_path / "report.json").read_text())
    assert {**saved, **report} == result
    # the headline leads (dvc exp show's first columns); per-class scores go to the report
    assert list(saved) == ["accuracy", "macro_f1", "loss", "test_samples", "tta_hflip"]
    for key in ("accuracy", "loss", "macro_f1"):
        assert isinstance(saved[key], float)
    assert set(report["per_class"]) == {"class0", "class1", "class2"}
    assert set(report["per_class"]["class0"]) == {"precision", "recall", "f1", "support"}
    assert sum(v["support"] for v in report["per_class"].values()) == saved["test_samples"] == 9
    rows = (tmp_path / "confusion.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and len(rows) == 10


def test_flip_tta_changes_the_scores_and_is_recorded(trained, tmp_path):
    plain = run(trained, tmp_path / "a")
    tta = run(trained, tmp_path / "b", tta_hflip=True)
    assert tta["tta_hflip"] and not plain["tta_hflip"]
    assert tta["loss"] != plain["loss"]


def test_tensorboard_run_has_confusion_pr_curves_and_hparams(trained, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(trained, tmp_path)
    ckpt = torch.load(trained / "m.pt", weights_only=True)
    run_dir = tmp_path / "tb" / ckpt["run"]  # the same run name as the training logs
    assert (trained / "tb" / ckpt["run"]).is_dir()
    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "test/confusion_matrix" in tags["images"]
    assert {f"test/pr/class{i}" for i in range(3)} <= set(tags["tensors"])
    assert "hparam/test_accuracy" in tags["scalars"]


def test_worst_grid_picks_the_most_confident_mistakes():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 0, 1])
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    fig = worst_grid(images, labels, probs, ["a", "b"], k=1)
    (title,) = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert title == "pred b 0.80\ntrue a"
    assert worst_grid(images, labels, torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 2), ["a", "b"], 4) is None


def test_version_of_another_shape_is_a_clear_error(trained, tmp_path):
    ds_src = make_imagefolder(tmp_path / "src", classes=3, per_class=4, size=20, channels=3)
    ds = ingest(ds_src, tmp_path / "canonical", IngestParams(workers=1))
    write_version(ds, assign_splits(ds, SplitParams(ratios={"train": 0.5, "test": 0.5})), AugmentParams(copies=0),
                  tmp_path / "v")
    with pytest.raises(InputError, match="trained on"):
        evaluate(tmp_path / "v", trained / "m.pt", EvaluateParams(), tmp_path / "e.json", tmp_path / "c.csv",
                 tmp_path / "tb")
