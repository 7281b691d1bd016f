"""Training tasks: detect and segment through the one loop, refused combinations, and
the checkpoint a detector leaves (evaluate and predict rebuild it)."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import TrainParams, load_section, parse_section
from pipeline.core.errors import ConfigError
from pipeline.train import checkpoint as ckpt_io
from pipeline.train.loop import train
from tests.conftest import make_version

# Small and from scratch: one epoch of a few 48x64 images takes seconds on a CPU.
TINY = dict(backbone_weights="none", epochs=1, batch_size=4, lr=0.01, schedule="constant", optimizer="adamw",
            grad_clip=5.0, freeze_epochs=0, image_size=(48, 64), threads=1)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """A detection version of bright shapes with polygons: 8 train, 2 val, 2 test images."""
    from pipeline.config import AugmentParams, SplitParams
    from pipeline.record import load_canonical as load_dataset
    from pipeline.split import assign_splits
    from pipeline.version import write_version
    from tests.version_data import make_annotated

    root = tmp_path_factory.mktemp("shapes")
    ds = load_dataset(make_annotated(root / "canonical", n=12))
    splits = assign_splits(ds, SplitParams(ratios={"train": 0.67, "val": 0.17, "test": 0.16}))
    write_version(ds, splits, AugmentParams(copies=0), root / "version")
    return root / "version"


def fit(version, out, **kw):
    p = TrainParams(**{**TINY, **kw})
    hist = train(version, p, out / "m.pt", out / "tb", out / "train.json", out / "curve.csv")
    return hist, torch.load(out / "m.pt", weights_only=True)


@pytest.mark.parametrize("model,task", [("fcos_lite0", "auto"), ("maskrcnn_lite0", "segment")])
def test_a_detector_trains_and_its_checkpoint_rebuilds(shapes, tmp_path, model, task):
    hist, ckpt = fit(shapes, tmp_path, model=model, task=task)
    assert ckpt["task"] == ("segment" if task == "segment" else "detect") and ckpt["model"] == model
    assert ckpt["classes"] == ["square", "bar"] and len(hist) == 1
    assert torch.isfinite(torch.tensor(hist[0].train_loss)) and 0 <= hist[0].val_map50 <= 1
    assert (hist[0].val_mask_map is not None) == (task == "segment")
    model_a, stored = ckpt_io.load_model(tmp_path / "m.pt")
    x = [torch.rand(3, 48, 64)]
    with torch.no_grad():
        a = model_a(x)[0]
    model_b, _ = ckpt_io.load_model(tmp_path / "m.pt")
    with torch.no_grad():
        b = model_b(x)[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert ("masks" in a) == (task == "segment")
    assert "val_map50" in (tmp_path / "train.json").read_text()


def test_lite0_backbone_takes_the_packaged_imagenet_weights(shapes, tmp_path):
    from pipeline.train.detmodels import DetectorSpec, build_detector, load_backbone_weights
    from pipeline.train.pretrained import packaged_state

    m = build_detector(DetectorSpec("retinanet_lite0", 2, 3, (48, 64), (0.5,) * 3, (0.5,) * 3, True), seed=0)
    state, path = packaged_state("efficientnet_lite0")
    load_backbone_weights(m, state, str(path))
    assert torch.equal(m.backbone.body.conv_stem.weight, state["conv_stem.weight"])
    m.train()
    losses = m([torch.rand(3, 48, 64)], [{"boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]),
                                          "labels": torch.tensor([1])}])
    assert set(losses) == {"classification", "bbox_regression"}


def test_killed_detection_run_resumes_to_the_same_weights(shapes, tmp_path, monkeypatch):
    kw = dict(model="fasterrcnn_lite0", epochs=2)  # two-stage: its samplers draw random numbers
    _, whole = fit(shapes, tmp_path / "whole", **kw)

    def save_then_die(path, state):
        ckpt_io.save_atomic(state, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_io, "save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(shapes, tmp_path / "cut", **kw)
    monkeypatch.undo()
    hist, resumed = fit(shapes, tmp_path / "cut", resume=True, **kw)
    assert [h.epoch for h in hist] == [1, 2]
    assert all(torch.equal(whole["state_dict"][k], resumed["state_dict"][k]) for k in whole["state_dict"])


@pytest.mark.parametrize("kw,match", [
    (dict(task="detect", model="resnet_small"), r"train.model resnet_small cannot do train.task detect"),
    (dict(task="segment", model="fcos_lite0"), r"train.model fcos_lite0 cannot do train.task segment"),
    (dict(task="classify", model="fcos_lite0"), r"cannot do train.task classify"),
    (dict(model="fcos_lite0", mixup_alpha=0.2), r"train.mixup_alpha is for classification"),
])
def test_impossible_task_and_model_are_refused_by_params(kw, match):
    with pytest.raises(ConfigError, match=match):
        parse_section("train", kw)


def test_detection_params_on_image_labels_are_refused_before_any_stage(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("ingest: {format: imagefolder}\ntrain: {model: fcos_lite0}\n")
    with pytest.raises(ConfigError, match=r"train.task auto with train.model fcos_lite0 needs objects.*imagefolder"):
        load_section("split", p)


def test_the_version_decides_and_a_mismatch_names_the_keys(shapes, tmp_path):
    # The default model on detection data: auto chose detect, resnet_small cannot.
    with pytest.raises(ConfigError, match=r"train.model resnet_small cannot do train.task detect \(train.task auto "
                                          r"chose it.*set train.model: fcos_lite0"):
        fit(shapes, tmp_path / "a", model="resnet_small", backbone_weights="imagenet", freeze_epochs=0)
    labels = make_version(tmp_path / "cls", 2, {"train": 0.5, "val": 0.25, "test": 0.25})
    with pytest.raises(ConfigError, match=r"train.task detect: .* has image labels only"):
        fit(labels, tmp_path / "b", model="fcos_lite0", task="detect")
    assert not (tmp_path / "a" / "m.pt").exists() and not (tmp_path / "b" / "m.pt").exists()


def test_the_background_slot_is_never_a_prediction():
    """FCOS and RetinaNet can score label 0 (no class: the background of the R-CNNs) above
    their threshold early in training; validation and predict drop it, keeping the rest."""
    from pipeline.train.detect import prediction_arrays

    masks = torch.zeros(3, 1, 8, 8)
    masks[0, 0, :2], masks[2, 0, 4:] = 0.9, 0.8
    pred = {"boxes": torch.tensor([[0.0, 0, 4, 2], [1, 1, 5, 5], [0, 4, 8, 8]]), "scores": torch.tensor([0.9, 0.5, 0.3]),
            "labels": torch.tensor([1, 0, 2]), "masks": masks}
    out = prediction_arrays(pred)
    assert out["labels"].tolist() == [0, 1] and out["scores"].tolist() == pytest.approx([0.9, 0.3])
    assert out["boxes"].tolist() == [[0, 0, 4, 2], [0, 4, 8, 8]]
    assert out["masks"].shape == (2, 8, 8) and out["masks"][0, :2].all() and out["masks"][1, 4:].all()
    empty = prediction_arrays({k: v[1:2] for k, v in pred.items()})
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 8, 8)


@pytest.mark.parametrize("weights", ["imagenet", "none"])
def test_a_fresh_mask_head_starts_near_even_odds(shapes, weights):
    """torchvision initialises the mask logits' 1x1 conv with fan-out Kaiming, std 1 for a
    class or two: the first mask loss was 3 to 54 and, with the gradient clipped, drowned
    the box and RPN losses. Started small, each mask pixel starts near ln 2."""
    from pipeline.torchdata import open_splits
    from pipeline.train.detmodels import DetectorSpec, build_detector, load_backbone_weights
    from pipeline.train.pretrained import packaged_state

    model = build_detector(DetectorSpec("maskrcnn_lite0", 2, 3, (48, 64), (0.5,) * 3, (0.25,) * 3,
                                        weights == "imagenet"), seed=0)
    if weights == "imagenet":
        load_backbone_weights(model, *(lambda s, p: (s, str(p)))(*packaged_state("efficientnet_lite0")))
    train = open_splits(shapes, masks=True)["train"]
    images, targets = zip(*(train[i] for i in range(4)))
    model.train()
    with torch.no_grad():
        losses = model([im.as_subclass(torch.Tensor).float() / 255 for im in images],
                       [{k: v.as_subclass(torch.Tensor) for k, v in t.items()} for t in targets])
    assert abs(float(losses["loss_mask"]) - 0.6931) < 0.05, {k: float(v) for k, v in losses.items()}
