"""Check a COCO export with pycocotools: load every ``annotations/instances_<split>.json``,
then ``COCOeval`` the annotations against themselves as detections (score 1.0).

    python benchmarks/check_coco_export.py EXPORT_DIR [bbox] [segm]

AP must be 1.000 for every file (``segm`` needs every object to have a polygon:
polygon data, or an export with ``--task segment``). Exit 1 otherwise.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def self_ap(gt: COCO, kind: str) -> tuple[float, float]:
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
             **({"bbox": a["bbox"]} if kind == "bbox" else {"segmentation": gt.annToRLE(a)})}
            for a in gt.dataset["annotations"]]
    ev = COCOeval(gt, gt.loadRes(dets), kind)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats[0], ev.stats[1]


def main(root: Path, kinds: list[str]) -> int:
    bad = 0
    files = sorted((root / "annotations").glob("instances_*.json"))
    if not files:
        print(f"error: no annotations/instances_*.json under {root}", file=sys.stderr)
        return 2
    for f in files:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            gt = COCO(str(f))
            line = [f"{f.name}: {len(gt.getImgIds())} images, {len(gt.getAnnIds())} annotations"]
            for kind in kinds if gt.getAnnIds() else ():  # a split of background images has no AP
                ap, ap50 = self_ap(gt, kind)
                bad += not ap == ap50 == 1.0
                line.append(f"{kind} AP {ap:.3f} AP50 {ap50:.3f}")
        print("; ".join(line))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:] or ["bbox"]))
