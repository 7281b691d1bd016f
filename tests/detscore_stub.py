"""A stand-in for ``pipeline.train.detscore`` while that module is not in the tree:
COCO box/mask AP through pycocotools, the interface the trainer calls (``score``, and ``draw``
which draws nothing here). Tests install it only when the real module is missing."""

from __future__ import annotations

import contextlib
import io
import sys
import types

import numpy as np


class DetScore(types.SimpleNamespace):
    def headline(self) -> dict:
        return {"map": self.map, "map50": self.map50, "map75": self.map75, "ar100": self.ar100}


def score(targets, preds, sizes, classes, iou_type="bbox"):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def region(boxes, masks, j):
        if iou_type == "segm":
            rle = mask_utils.encode(np.asfortranarray(masks[j].astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            return {"segmentation": rle}
        x1, y1, x2, y2 = map(float, boxes[j])
        return {"bbox": [x1, y1, x2 - x1, y2 - y1]}

    gt = {"images": [{"id": i + 1, "height": h, "width": w} for i, (h, w) in enumerate(sizes)],
          "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)], "annotations": []}
    for i, t in enumerate(targets):
        for j, box in enumerate(t["boxes"]):
            x1, y1, x2, y2 = map(float, box)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "iscrowd": 0,
                                      "category_id": int(t["labels"][j]) + 1, "area": (x2 - x1) * (y2 - y1),
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], **region(t["boxes"], t.get("masks"), j)})
    dets = [{"image_id": i + 1, "category_id": int(p["labels"][j]) + 1, "score": float(p["scores"][j]),
             **region(p["boxes"], p.get("masks"), j)} for i, p in enumerate(preds) for j in range(len(p["boxes"]))]
    if not dets or not gt["annotations"]:
        return DetScore(map=0.0, map50=0.0, map75=0.0, ar100=0.0, per_class={})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = [max(float(v), 0.0) for v in ev.stats]
    return DetScore(map=s[0], map50=s[1], map75=s[2], ar100=s[8], per_class={})


def install() -> None:
    """Make ``pipeline.train.detscore`` importable as this stub, unless the real one exists."""
    import importlib.util

    if importlib.util.find_spec("pipeline.train.detscore") is None:
        sys.modules["pipeline.train.detscore"] = sys.modules[__name__]


def draw(image, target, pred, classes, min_score=0.25):
    return np.array(image, dtype=np.uint8)  # the stand-in draws nothing
