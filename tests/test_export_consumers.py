"""The exports in their real consumers' hands: pycocotools and torchvision read the COCO
export as it is. (Ultralytics, AGPL, is checked outside the project:
``benchmarks/check_yolo_export.sh``.)"""

from __future__ import annotations

import contextlib
import io
from pathlib import PurePosixPath

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline.config import AugmentParams
from pipeline.export import export
from pipeline.datasets import load_dataset
from pipeline.version import write_version
from tests.export_data import KINDS, make_detection

OPS = [{"name": "mosaic", "p": 0.5}, {"name": "rotate", "p": 0.5, "degrees": 10}, {"name": "hflip", "p": 0.5},
       {"name": "cutout", "p": 0.5}]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    made: dict = {}

    def get(kind: str, source: str):
        if (kind, source) not in made:
            root = tmp_path_factory.mktemp(f"{kind}-{source}")
            ds = make_detection(root / "canonical", kind)
            if source == "version":
                write_version(ds, {s.id: s.split for s in ds.samples},
                              AugmentParams(copies=2, pipeline=OPS, device="cpu"), root / "version")
                ds = load_dataset(root / "version")
            made[kind, source] = ds
        return made[kind, source]
    return get


def quiet(fn, *args):
    """pycocotools prints its progress; keep the test output for failures."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def thin(a: dict) -> bool:
    """An object under a pixel thick (a sliver a mosaic tile or the border cut off): its
    mask has no pixel centre inside, so a segmentation cannot match even itself."""
    return a["bbox"][2] < 1 or a["bbox"][3] < 1


def self_ap(gt: COCO, iou_type: str) -> np.ndarray:
    """COCOeval of the annotations against themselves as detections (score 1.0); for
    masks, sub-pixel-thin objects are left out of both sides (see ``thin``)."""
    if iou_type == "segm" and any(thin(a) for a in gt.dataset["annotations"]):
        doc = {**gt.dataset, "annotations": [a for a in gt.dataset["annotations"] if not thin(a)]}
        gt = COCO()
        gt.dataset = doc
        quiet(gt.createIndex)
    dets = []
    for a in gt.dataset["annotations"]:
        d = {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0}
        d.update(bbox=a["bbox"]) if iou_type == "bbox" else d.update(segmentation=gt.annToRLE(a))
        dets.append(d)
    dt = quiet(gt.loadRes, dets)
    ev = COCOeval(gt, dt, iou_type)
    quiet(ev.evaluate)
    quiet(ev.accumulate)
    quiet(ev.summarize)
    return ev.stats


CASES = [(kind, task) for kind in KINDS for task in ("detect", "segment")]


@pytest.mark.parametrize("source", ("canonical", "version"))
@pytest.mark.parametrize("kind, task", CASES)
def test_pycocotools_loads_every_split_and_self_ap_is_one(datasets, tmp_path, kind, task, source):
    ds = datasets(kind, source)
    export(ds, tmp_path / "coco", "coco", task=task)
    files = sorted((tmp_path / "coco" / "annotations").iterdir())
    assert [f.name for f in files] == [f"instances_{sp}.json" for sp in sorted({s.split for s in ds.samples})]
    images = objects = 0
    segm = task == "segment" or kind == "polygon"  # every object has a segmentation
    for f in files:
        gt = quiet(COCO, str(f))
        split = f.stem.removeprefix("instances_")
        for img in gt.dataset["images"]:
            assert (tmp_path / "coco" / "images" / split / img["file_name"]).is_file()
        images += len(gt.getImgIds())
        objects += len(gt.getAnnIds())
        assert gt.getCatIds() == list(range(1, len(ds.classes) + 1))
        if not gt.getAnnIds():
            continue
        stats = self_ap(gt, "bbox")
        assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0), (f.name, stats)
        if segm:
            stats = self_ap(gt, "segm")
            assert stats[0] == pytest.approx(1.0), (f.name, stats)
    assert images == len(ds.samples) and objects == sum(len(s.objects) for s in ds.samples)


@pytest.mark.parametrize("source", ("canonical", "version"))
@pytest.mark.parametrize("kind, task", [("box", "detect"), ("mixed", "detect"), ("mixed", "segment"),
                                        ("polygon", "segment")])
def test_torchvision_coco_detection_reads_the_export(datasets, tmp_path, kind, task, source):
    import torch
    from torchvision import tv_tensors
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

    ds = datasets(kind, source)
    export(ds, tmp_path / "coco", "coco", task=task)
    by_stem = {}
    for s in ds.samples:
        st = PurePosixPath(s.id).stem if s.lineage is None else \
            f"{PurePosixPath(s.lineage.source_id).stem}_copy{s.lineage.copy}"
        by_stem[st] = s
    keys = {"image_id", "boxes", "labels"} | ({"masks"} if task == "segment" else set())
    seen = 0
    for split in sorted({s.split for s in ds.samples}):
        cd = quiet(CocoDetection, str(tmp_path / "coco" / "images" / split),
                   str(tmp_path / "coco" / "annotations" / f"instances_{split}.json"))
        wrapped = wrap_dataset_for_transforms_v2(cd, target_keys=keys)
        for i in range(len(wrapped)):
            image, target = wrapped[i]
            s = by_stem[PurePosixPath(cd.coco.imgs[target["image_id"]]["file_name"]).stem]
            assert s.split == split and image.size == (s.width, s.height)
            boxes = target["boxes"]
            assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format == tv_tensors.BoundingBoxFormat.XYXY
            assert tuple(boxes.canvas_size) == (s.height, s.width)
            want = sorted((ds.classes.index(o.label) + 1, *o.box) for o in s.objects)
            got = sorted((int(k), *b) for k, b in zip(target["labels"].tolist(), boxes.tolist()))
            assert [g[0] for g in got] == [w[0] for w in want]
            assert np.allclose([g[1:] for g in got], [w[1:] for w in want], atol=1e-3), (s.id, got, want)
            if task == "segment":  # every object has a mask, inside its box (pixel centres)
                masks = target["masks"]
                assert masks.shape == (len(s.objects), s.height, s.width)
                for m, (x1, y1, x2, y2) in zip(masks, boxes.tolist()):
                    ys, xs = torch.nonzero(m, as_tuple=True)
                    if (x2 - x1 < 1 or y2 - y1 < 1) and not len(xs):
                        continue  # sub-pixel thin: no pixel centre inside (see ``thin``)
                    assert len(xs) and x1 - 1 <= int(xs.min()) and int(xs.max()) + 1 <= x2 + 1
                    assert y1 - 1 <= int(ys.min()) and int(ys.max()) + 1 <= y2 + 1
            seen += 1
    assert seen == len(ds.samples)
