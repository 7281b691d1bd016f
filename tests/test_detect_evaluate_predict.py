"""A trained detector through the evaluate stage and ``pipeline predict``: COCO headline,
per-class report, DVC plot CSVs, TensorBoard images; COCO results that pycocotools
loads, drawn overlays, and a large image predicted by tiles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.config import TrainParams
from pipeline.train.loop import train

detscore = pytest.importorskip("pipeline.train.detscore")
if not hasattr(detscore, "confusion"):  # the trainer tests' stand-in, not the module
    pytest.skip("pipeline.train.detscore is a stand-in here", allow_module_level=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from pipeline.config import AugmentParams, SplitParams
    from pipeline.record import load_canonical as load_dataset
    from pipeline.split import assign_splits
    from pipeline.version import write_version
    from tests.version_data import make_annotated

    root = tmp_path_factory.mktemp("det")
    ds = load_dataset(make_annotated(root / "canonical", n=12))
    write_version(ds, assign_splits(ds, SplitParams(ratios={"train": 0.67, "val": 0.17, "test": 0.16})),
                  AugmentParams(copies=0), root / "version")
    p = TrainParams(model="fcos_lite0", backbone_weights="none", epochs=1, batch_size=4, lr=0.01,
                    optimizer="adamw", schedule="constant", freeze_epochs=0, image_size=(48, 64), threads=1)
    train(root / "version", p, root / "m.pt", root / "tb", root / "train.json", root / "curve.csv")
    return root


def tiled_by_name(predict_json: str) -> dict[str, bool]:
    """{file name: predicted by tiles} from ``pipeline predict --json``'s output."""
    return {p["path"].rsplit("/", 1)[-1]: p["tiled"] for p in json.loads(predict_json)["predictions"]}


def test_evaluate_stage_scores_a_detector_with_coco_figures(trained, tmp_path):
    from stages.evaluate import run

    (tmp_path / "params.yaml").write_text("evaluate: {worst: 2}\n")
    run(tmp_path / "params.yaml", trained / "version", trained / "m.pt", tmp_path / "eval.json",
        tmp_path / "confusion.csv", tmp_path / "tb", tmp_path / "report.json", tmp_path / "hparams",
        pr=tmp_path / "pr.csv")
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert {"map", "map50", "map75", "ar100", "test_images"} <= set(metrics) and metrics["test_images"] == 2
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["box"]["per_class"]) <= {"square", "bar"}
    assert report["classes"][-1] == detscore.background_name(["square", "bar"])
    assert (tmp_path / "confusion.csv").read_text().splitlines()[0] == "actual,predicted"
    assert (tmp_path / "pr.csv").read_text().splitlines()[0] == "class,recall,precision"
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    # the run's one HParams trial holds the detector's test and val figures
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (trial,) = [d for d in (tmp_path / "hparams").iterdir() if d.is_dir()]
    acc = EventAccumulator(str(trial))
    acc.Reload()
    assert {"hparam/test_map", "hparam/test_map50", "hparam/val_map", "hparam/train_loss"} <= set(acc.Tags()["scalars"])


def test_evaluate_scores_the_val_split_of_a_detector_when_asked(trained, tmp_path, capsys):
    from stages.evaluate import run

    (tmp_path / "params.yaml").write_text("split: {ratios: {train: 0.8, val: 0.2}}\nevaluate: {split: val, worst: 1}\n")
    run(tmp_path / "params.yaml", trained / "version", trained / "m.pt", tmp_path / "eval.json",
        tmp_path / "confusion.csv", tmp_path / "tb", tmp_path / "report.json", tmp_path / "hparams")
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["val_images"] == 2 and "test_images" not in metrics
    assert "evaluate: val mAP" in capsys.readouterr().out
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (trial,) = [d for d in (tmp_path / "hparams").iterdir() if d.is_dir()]
    acc = EventAccumulator(str(trial))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"hparam/val_map", "hparam/val_map75", "hparam/val_ar100"} <= tags and "hparam/test_map" not in tags
    assert acc.Scalars("hparam/val_map")[0].value == pytest.approx(metrics["map"])


def test_predict_writes_coco_results_pycocotools_loads_and_tiles_large_images(trained, tmp_path):
    from PIL import Image
    from pycocotools.coco import COCO

    from pipeline.cli import app

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / "small.png")
    Image.fromarray(rng.integers(0, 255, (150, 170, 3), dtype=np.uint8)).save(folder / "large.png")
    r = CliRunner().invoke(app, ["predict", str(trained / "m.pt"), str(folder), "--out", str(tmp_path / "out"),
                                 "--json", "--min-score", "0"])
    assert r.exit_code == 0, r.output
    assert tiled_by_name(r.stdout) == {"large.png": True, "small.png": False}
    images = json.loads((tmp_path / "out" / "images.json").read_text())
    gt = COCO()
    gt.dataset = {**images, "annotations": []}
    gt.createIndex()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    if results:  # an untrained detector may find nothing; what it finds must load
        gt.loadRes(results)
        assert {d["image_id"] for d in results} <= {1, 2}
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_predict_tiles_at_the_training_images_scale_when_training_upscaled(trained, tmp_path):
    """train.image_size twice the training images' size: the detector learned objects at 2x.
    predict must cut a larger image into tiles of the training images' side (64 here), which
    the detector then upscales as in training, not into tiles of its input side (128), which
    would show it objects at half the scale it learned."""
    import torch
    from PIL import Image

    from pipeline.cli import app

    p = TrainParams(model="fcos_lite0", backbone_weights="none", epochs=1, batch_size=4, lr=0.01,
                    optimizer="adamw", schedule="constant", freeze_epochs=0, image_size=(96, 128), threads=1)
    train(trained / "version", p, tmp_path / "up.pt", tmp_path / "tb", tmp_path / "t.json", tmp_path / "c.csv")
    ckpt = torch.load(tmp_path / "up.pt", map_location="cpu", weights_only=False)
    assert (ckpt["size"], ckpt["tile_side"]) == ([96, 128], 64)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(folder / "mid.png")  # 64 < 100 < 128
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / "same.png")
    r = CliRunner().invoke(app, ["predict", str(tmp_path / "up.pt"), str(folder), "--json", "--min-score", "0"])
    assert r.exit_code == 0, r.output
    assert tiled_by_name(r.stdout) == {"mid.png": True, "same.png": False}
