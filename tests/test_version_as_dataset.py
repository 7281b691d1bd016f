"""A dataset version is a dataset: stats, export (every format) and the Python API take it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.config import AugmentParams, IngestParams, SplitParams
from pipeline.export import FORMATS, export
from pipeline.ingest import ingest
from pipeline.datasets import load_dataset
from pipeline.split import assign_splits
from pipeline.reports.stats import compute
from pipeline.version import write_version
from tests.conftest import make_imagefolder
from tests.version_data import make_annotated

BOX_OPS = [{"name": "mosaic", "p": 0.6}, {"name": "hflip", "p": 0.5}, {"name": "rotate", "p": 0.5, "degrees": 10}]


@pytest.fixture(scope="module")
def box_version(tmp_path_factory):
    root = tmp_path_factory.mktemp("bv")
    ds = load_dataset(make_annotated(root / "canonical", n=10))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    write_version(ds, assignment, AugmentParams(copies=2, pipeline=BOX_OPS, image_size=(48, 64)), root / "v")
    return root / "v"


@pytest.fixture(scope="module")
def cls_version(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    ds = ingest(make_imagefolder(root / "src", classes=3, per_class=6, size=16, channels=3),
                root / "canonical", IngestParams(workers=1))
    assignment = assign_splits(ds, SplitParams(ratios={"train": 0.6, "val": 0.2, "test": 0.2}))
    write_version(ds, assignment, AugmentParams(copies=2, pipeline=[{"name": "mixup", "p": 0.8}]), root / "v")
    return root / "v"


def manifest(v):
    return [json.loads(x) for x in (v / "manifest.jsonl").read_text().splitlines()]


def test_rows_become_samples_with_typed_lineage_and_their_pixels(box_version):
    ds = load_dataset(box_version)
    rows = manifest(box_version)
    assert [s.id for s in ds.samples] == [r["id"] for r in rows]
    images = {sp: np.load(box_version / f"{sp}_images.npy") for sp in ("train", "val", "test")}
    for s, r in zip(ds.samples, rows):
        assert s.split == r["split"] and s.lineage.source_id == r["source_id"] and s.lineage.copy == r["copy"]
        assert [list(o.box) for o in s.objects] == [o["box"] for o in r["objects"]]
        assert list(s.lineage.ops) == r["ops"] and list(s.lineage.partners) == r.get("partners", [])
        assert (ds.images.pixels(s.image) == images[r["split"]][r["index"]]).all()
    from PIL import Image
    import io

    s = ds.samples[3]
    a = np.asarray(Image.open(io.BytesIO(ds.read_image(s))))
    assert (a == images[s.split][manifest(box_version)[3]["index"]]).all()  # PNG: exact


def test_stats_of_a_version(box_version):
    stats = compute(load_dataset(box_version))
    rows = manifest(box_version)
    assert stats["samples"] == len(rows) and stats["kind"] == "detection"
    assert stats["objects"] == sum(len(r["objects"]) for r in rows)
    assert stats["splits"] == {sp: sum(r["split"] == sp for r in rows) for sp in ("test", "train", "val")}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_format_takes_a_box_version_and_ingests_back(box_version, tmp_path, fmt):
    if fmt == "imagefolder":
        pytest.skip("box data without image labels has no folder to go to (covered by the classification case)")
    summary = export(load_dataset(box_version), tmp_path / "x", fmt)
    back = ingest(tmp_path / "x", tmp_path / "back", IngestParams(workers=1, min_size=4), fmt=fmt)
    rows = manifest(box_version)
    assert len(back.samples) == len(rows), summary
    assert sum(len(s.objects) for s in back.samples) == sum(len(r["objects"]) for r in rows)
    assert sorted(s.split for s in back.samples) == sorted(r["split"] for r in rows)


def test_classification_version_exports_as_imagefolder(cls_version, tmp_path):
    export(load_dataset(cls_version), tmp_path / "x", "imagefolder")
    back = ingest(tmp_path / "x", tmp_path / "back", IngestParams(workers=1, min_size=4))
    rows = manifest(cls_version)
    assert len(back.samples) == len(rows)
    assert sorted(s.label for s in back.samples) == sorted(r["label"] for r in rows)


def test_detection_version_trains_a_torchvision_detector_for_one_step(box_version):
    import torch
    from torch.utils.data import DataLoader
    from torchvision import tv_tensors
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn
    from torchvision.transforms import v2

    from pipeline.torchdata import collate_detection, open_splits

    splits = open_splits(box_version, masks=True)
    image, target = splits["train"][0]
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes) and target["boxes"].canvas_size == (48, 64)
    assert target["masks"].shape == (len(target["boxes"]), 48, 64) and target["labels"].min() >= 1
    # torchvision's v2 transforms take the pair as it is, boxes and masks following the image
    flipped, t2 = v2.RandomHorizontalFlip(p=1.0)(image, target)
    assert torch.allclose(t2["boxes"][:, 0], 64 - target["boxes"][:, 2])
    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=3,
                                              min_size=64, max_size=64)
    model.train()
    images, targets = next(iter(DataLoader(splits["train"], batch_size=2, collate_fn=collate_detection)))
    losses = model([i.float() / 255 for i in images], list(targets))
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)


def test_classification_version_trains_the_trainers_model_for_one_step(cls_version):
    import torch

    from pipeline.torchdata import open_splits
    from pipeline.train.models import build_model

    splits = open_splits(cls_version, soft_labels=True)
    rows = {r["id"]: r for r in manifest(cls_version)}
    mixed = [i for i, s in enumerate(splits["train"].samples) if rows[s.id]["mix_weight"] < 1.0]
    assert mixed
    _, soft = splits["train"][mixed[0]]
    assert abs(float(soft.sum()) - 1.0) < 1e-6 and (soft > 0).sum() == 2
    x = torch.stack([splits["train"][i][0] for i in range(4)]).float() / 255
    y = torch.stack([splits["train"][i][1] for i in range(4)])
    model = build_model("resnet_small", 3, 16, 16, 3, seed=0, base=4)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    plain = open_splits(cls_version)
    assert isinstance(plain["val"][0][1], int)


def test_detection_card_counts_what_the_rows_hold(box_version):
    card = json.loads((box_version / "card.json").read_text())
    rows = manifest(box_version)
    for split, s in card["splits"].items():
        mine = [r for r in rows if r["split"] == split]
        mosaics = sum(1 for r in mine for op in r["ops"] if op["op"] == "mosaic" and op["applied"])
        assert s["mixed_by_op"] == {"mosaic": mosaics}
        assert sum(s["objects_per_class"].values()) == sum(len(r["objects"]) for r in mine)
        for cls, n in s["per_class"].items():  # images holding the class, not objects
            assert n == sum(1 for r in mine if any(o["label"] == cls for o in r["objects"]))
        assert s["objects_per_image"]["max"] == max(len(r["objects"]) for r in mine)
        boxes = [o["box"] for r in mine for o in r["objects"]]
        small = sum((b[2] - b[0]) * (b[3] - b[1]) < 1024 for b in boxes)
        assert s["small_objects_share"] == round(small / len(boxes), 4)
    assert card["splits"]["train"]["mixed_by_op"]["mosaic"] > 0
    md = (box_version / "CARD.md").read_text()
    assert f"Rows mosaic applied to: train {card['splits']['train']['mixed_by_op']['mosaic']}" in md
