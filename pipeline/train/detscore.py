"""Detection and instance-segmentation scores, by pycocotools' COCOeval, as pure functions.

``score`` builds the ground truth as a COCO object in memory (image ids 1..N in the
order given, category ids 1-based in class-list order, as the COCO export writes
them), loads the predictions through ``coco_results`` and ``COCO.loadRes``, and runs
COCOeval (``bbox`` or ``segm``, masks as RLE). Numbers are COCOeval's own: AP over
IoU .50:.05:.95, AP at .50 and .75, AR with 100 detections per image, all object
sizes; per-class AP from its precision array. pycocotools prints its progress; that
goes nowhere, so a stage's output stays its own.

Undefined is ``nan``, never a crash: COCOeval marks a class without ground-truth
objects with -1 (its AP cannot be computed, whatever was predicted), and the mean
over classes skips them; with no ground-truth object at all every figure is
undefined. ``headline`` and ``report`` write ``nan`` as ``None`` (JSON ``null``), so
the metrics file stays valid JSON.

``confusion`` is the detection confusion matrix Ultralytics draws (a background row
and column); ``confusion_rows`` and ``DetScore.pr_rows`` are the rows of DVC plot CSVs
(``csv_text`` writes them).
Drawing and tiled prediction live in ``detdraw`` and ``detstitch`` and are importable
from here.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipeline.core.tiles import tile_origins
from pipeline.train.detarrays import dets
from pipeline.train.detdraw import draw
from pipeline.train.detstitch import tiled_predict

__all__ = ["CONFUSION_HEADER", "PR_HEADER", "DetScore", "background_name", "coco_results", "confusion",
           "confusion_rows", "csv_text", "draw", "score", "tile_origins", "tiled_predict"]

IOU_TYPES = ("bbox", "segm")
BACKGROUND = "background"  # the confusion matrix's extra class, as Ultralytics names it
CONFUSION_HEADER = ("actual", "predicted")  # the classification confusion CSV's columns
PR_HEADER = ("class", "recall", "precision")


def _json_float(v: float) -> float | None:
    return None if math.isnan(v) else round(float(v), 6)


@dataclass(frozen=True)
class DetScore:
    """COCOeval's figures for one set of images; ``nan`` where undefined (see the module doc).

    ``pr`` maps each class with ground truth to (recall grid of 101 points, precision at
    IoU .5 on it); ``objects`` counts the ground-truth objects per class.
    """

    iou_type: str
    map: float
    map50: float
    map75: float
    ar100: float
    per_class: dict[str, float]
    per_class50: dict[str, float]
    pr: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    objects: dict[str, int]
    n_images: int
    n_objects: int

    def headline(self, prefix: str = "") -> dict[str, float | None]:
        """The figures ``dvc metrics`` compares: map, map50, map75, ar100 (``None``: undefined)."""
        return {f"{prefix}{k}": _json_float(getattr(self, k)) for k in ("map", "map50", "map75", "ar100")}

    def report(self) -> dict:
        """JSON-able: the headline, the counts and the per-class table (AP, AP50, objects)."""
        return {"iou_type": self.iou_type, **self.headline(), "images": self.n_images, "objects": self.n_objects,
                "per_class": {c: {"ap": _json_float(self.per_class[c]), "ap50": _json_float(self.per_class50[c]),
                                  "objects": self.objects[c]} for c in self.per_class}}

    def pr_rows(self) -> list[dict]:
        """Rows ``{class, recall, precision}`` of the IoU .5 precision-recall curves, one per grid point."""
        return [{"class": c, "recall": round(float(r), 6), "precision": round(float(p), 6)}
                for c, (rec, prec) in self.pr.items() for r, p in zip(rec, prec)]


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_results(preds: Sequence[dict], image_ids: Sequence[int], classes: Sequence[str]) -> list[dict]:
    """Predictions in COCO results format: one dict per detection with ``image_id``,
    ``category_id`` (label + 1), ``bbox`` [x, y, w, h], ``score`` and, when the
    prediction has masks, ``segmentation`` as compressed RLE (``counts`` a str, so
    it goes into JSON). ``COCO.loadRes`` takes the list as it is."""
    if len(preds) != len(image_ids):
        raise ValueError(f"{len(preds)} predictions for {len(image_ids)} image ids")
    out = []
    for pred, image_id in zip(preds, image_ids):
        d = dets(pred, len(classes), f"prediction for image {image_id}")
        for i in range(len(d)):
            row = {"image_id": int(image_id), "category_id": int(d.labels[i]) + 1,
                   "bbox": _xywh(d.boxes[i]), "score": float(d.scores[i])}
            if d.masks is not None:
                row["segmentation"] = _rle(d.masks[i])
            out.append(row)
    return out


def _ground_truth(targets: Sequence[dict], sizes, classes: Sequence[str], iou_type: str) -> dict:
    images, annotations = [], []
    for n, (target, (h, w)) in enumerate(zip(targets, sizes), start=1):
        images.append({"id": n, "height": int(h), "width": int(w)})
        t = dets(target, len(classes), f"target of image {n}")
        if iou_type == "segm" and len(t) and t.masks is None:
            raise ValueError(f"target of image {n}: segm scoring needs masks, and it has none")
        for i in range(len(t)):
            box = _xywh(t.boxes[i])
            ann = {"id": len(annotations) + 1, "image_id": n, "category_id": int(t.labels[i]) + 1,
                   "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            if t.masks is not None:
                ann["segmentation"] = _rle(t.masks[i])
                ann["area"] = float(t.masks[i].sum())
            annotations.append(ann)
    categories = [{"id": i + 1, "name": c, "supercategory": ""} for i, c in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _coco(dataset: dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _mean(p: np.ndarray) -> float:
    p = p[p > -1]
    return float(p.mean()) if p.size else math.nan


def score(targets: Sequence[dict], preds: Sequence[dict], sizes: Sequence[tuple[int, int]],
          classes: Sequence[str], iou_type: str = "bbox") -> DetScore:
    """COCOeval on one set of images: ``targets[i]``, ``preds[i]`` and ``sizes[i]`` = (height,
    width) describe image ``i``; labels are 0-based indices into ``classes``."""
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type {iou_type!r}: give one of {IOU_TYPES}")
    if not len(targets) == len(preds) == len(sizes):
        raise ValueError(f"{len(targets)} targets, {len(preds)} predictions and {len(sizes)} sizes: one each per image")
    classes = list(classes)
    gt = _coco(_ground_truth(targets, sizes, classes, iou_type))
    results = coco_results(preds, range(1, len(preds) + 1), classes)
    if iou_type == "segm" and any("segmentation" not in r for r in results):
        raise ValueError("segm scoring needs masks in every prediction that has boxes")
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes fills in ids and areas in place (and fails on an empty list): a copy,
        # and an empty result set built as loadRes would build it.
        dt = gt.loadRes(copy.deepcopy(results)) if results else _coco(
            {"images": list(gt.dataset["images"]), "categories": copy.deepcopy(gt.dataset["categories"]),
             "annotations": []})
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [math.nan if s == -1 else float(s) for s in ev.stats]
    # precision: [IoU thresholds, recall grid, classes, area ranges, max detections];
    # area "all" is 0 and 100 detections the last, as in stats[0].
    precision = ev.eval["precision"][:, :, :, 0, -1]
    recall_grid = np.asarray(ev.params.recThrs, dtype=np.float64)
    objects = {c: 0 for c in classes}
    for a in gt.dataset["annotations"]:
        objects[classes[a["category_id"] - 1]] += 1
    per_class = {c: _mean(precision[:, :, k]) for k, c in enumerate(classes)}
    per_class50 = {c: _mean(precision[0, :, k]) for k, c in enumerate(classes)}
    pr = {c: (recall_grid, np.maximum(precision[0, :, k], 0.0)) for k, c in enumerate(classes) if objects[c]}
    return DetScore(iou_type=iou_type, map=stats[0], map50=stats[1], map75=stats[2], ar100=stats[8],
                    per_class=per_class, per_class50=per_class50, pr=pr, objects=objects,
                    n_images=len(targets), n_objects=len(gt.dataset["annotations"]))


def _match(iou: np.ndarray, threshold: float) -> np.ndarray:
    """(M, 2) matched (gt, pred) index pairs, Ultralytics' way: pairs above the IoU
    threshold, best IoU first, each prediction and then each ground truth used once."""
    gi, pi = np.nonzero(iou > threshold)
    if gi.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    m = np.stack([gi, pi, iou[gi, pi]], 1)
    m = m[np.argsort(-m[:, 2], kind="stable")]
    m = m[np.unique(m[:, 1], return_index=True)[1]]
    m = m[np.argsort(-m[:, 2], kind="stable")]
    m = m[np.unique(m[:, 0], return_index=True)[1]]
    return m[:, :2].astype(np.int64)


def confusion(targets: Sequence[dict], preds: Sequence[dict], classes: Sequence[str],
              iou: float = 0.45, conf: float = 0.25) -> np.ndarray:
    """(C + 1, C + 1) int64 counts, **rows = predicted class, columns = true class**, index C
    the background (Ultralytics' ``ConfusionMatrix.process_batch`` for detection).

    Predictions scoring ``<= conf`` are dropped; ground truth and predictions are matched
    class-agnostically by IoU ``> iou`` (best first, one to one). A matched pair counts in
    (predicted, true); a ground truth left unmatched in (background, true), a missed
    object; a prediction left unmatched in (predicted, background), a false alarm.
    """
    import torch
    from torchvision.ops import box_iou

    k = len(classes)
    cm = np.zeros((k + 1, k + 1), dtype=np.int64)
    for n, (target, pred) in enumerate(zip(targets, preds, strict=True), start=1):
        t = dets(target, k, f"target of image {n}")
        p = dets(pred, k, f"prediction for image {n}")
        p = p.take(p.scores > conf)
        ious = box_iou(torch.from_numpy(t.boxes), torch.from_numpy(p.boxes)).numpy() if len(t) and len(p) \
            else np.zeros((len(t), len(p)))
        m = _match(ious, iou)
        np.add.at(cm, (p.labels[m[:, 1]], t.labels[m[:, 0]]), 1)
        missed = np.setdiff1d(np.arange(len(t)), m[:, 0])
        np.add.at(cm, (k, t.labels[missed]), 1)
        unmatched = np.setdiff1d(np.arange(len(p)), m[:, 1])
        np.add.at(cm, (p.labels[unmatched], k), 1)
    return cm


def background_name(classes: Sequence[str]) -> str:
    """``background``, or a name no class has (``_background``, ...)."""
    name = BACKGROUND
    while name in classes:
        name = "_" + name
    return name


def confusion_rows(cm: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """One ``{actual, predicted}`` row per count of ``cm`` (rows predicted, columns true, as
    ``confusion`` gives it), class names with ``background`` last: the CSV that DVC's
    ``confusion`` template counts, like the classification one."""
    names = list(classes) + [background_name(classes)]
    if cm.shape != (len(names), len(names)):
        raise ValueError(f"a confusion matrix of shape {cm.shape} for {len(classes)} classes + background")
    return [{"actual": names[true], "predicted": names[predicted]}
            for true in range(len(names)) for predicted in range(len(names))
            for _ in range(int(cm[predicted, true]))]


def csv_text(rows: Sequence[dict], header: Sequence[str]) -> str:
    """Rows as CSV text with ``header`` (given, so an empty table still has its columns)."""
    f = io.StringIO(newline="")
    out = csv.DictWriter(f, fieldnames=list(header))
    out.writeheader()
    out.writerows(rows)
    return f.getvalue()

