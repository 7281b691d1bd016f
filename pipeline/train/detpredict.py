"""``pipeline predict`` with a detector or segmenter: boxes (and masks), class and score.

Each image is read by the same guarded reader and image policy as classification
(``pipeline.train.predict.load_image``) and given to the detector at its own size
(the detector resizes as in training). An image larger than ``tile`` on a side is
cut into overlapping tiles, each predicted alone, and the detections stitched with
NMS across tiles (``detscore.tiled_predict``): a tree on a 2299x2472 aerial image is
seen at the scale it was trained at. Results are COCO's results format (one dict
per detection: ``image_id``, ``category_id`` = class index + 1, ``bbox`` [x, y, w,
h], ``score``, ``segmentation`` as RLE with masks), which ``COCO.loadRes`` reads;
image ids are 1.. in input order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import InputError


@dataclass(frozen=True)
class ImageDetections:
    path: Path
    image_id: int
    height: int
    width: int
    pred: dict  # detscore prediction: boxes (N, 4) XYXY, scores, labels 0-based, masks?
    tiles: bool  # predicted tile by tile
    notes: tuple[str, ...] = ()


def predict_detections(checkpoint: Path, paths: list[Path], tile: int | None = None, overlap: float = 0.25,
                       device: str = "cpu") -> tuple[list[ImageDetections | InputError], dict]:
    """One ImageDetections per readable image, the InputError for each that is not (input
    order), and the checkpoint. ``tile``: the side of a tile (None: the long side of the
    training images, before the detector's resize, so objects keep their training scale;
    0: never tile); ``overlap``: the share of a tile its neighbour covers."""
    from pipeline.train import detscore
    from pipeline.train.checkpoint import load_model
    from pipeline.train.detect import predict_images
    from pipeline.train.predict import load_image

    model, ckpt = load_model(checkpoint, device)
    # checkpoints written before tile_side was recorded: the input size, as they were tiled
    side = int(ckpt.get("tile_side") or max(ckpt["size"])) if tile is None else tile
    channels = int(ckpt["channels"])
    dev = torch.device(device)

    def predict_fn(image: np.ndarray) -> dict:
        return predict_images(model, [torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))], dev)[0]

    out: list[ImageDetections | InputError] = []
    for n, path in enumerate(paths, start=1):
        try:
            img, info = load_image(path)
        except InputError as err:
            out.append(err)
            continue
        with img:
            a = np.asarray(img.convert("L" if channels == 1 else "RGB"))
        a = a[:, :, None] if a.ndim == 2 else a
        h, w = a.shape[:2]
        tiled = side > 0 and max(h, w) > side
        pred = detscore.tiled_predict(predict_fn, a, side, int(side * overlap)) if tiled else predict_fn(a)
        out.append(ImageDetections(Path(path), n, h, w, pred, tiled, tuple(info.notes)))
    return out, ckpt


def write_outputs(results: list[ImageDetections], classes: list[str], out: Path, min_score: float) -> Path:
    """``out/results.json`` (COCO results), ``out/images.json`` (id, file, size) and one drawn
    overlay per image (``out/<id>_<name>.png``). Returns the results file."""
    import json

    from PIL import Image

    from pipeline.core.atomic import atomic_write_text
    from pipeline.train import detscore
    from pipeline.train.predict import load_image

    out.mkdir(parents=True, exist_ok=True)
    coco = detscore.coco_results([r.pred for r in results], [r.image_id for r in results], classes)
    atomic_write_text(out / "results.json", json.dumps(coco) + "\n")
    images = [{"id": r.image_id, "file_name": str(r.path), "height": r.height, "width": r.width} for r in results]
    atomic_write_text(out / "images.json", json.dumps({"images": images, "categories": [
        {"id": i + 1, "name": c} for i, c in enumerate(classes)]}, indent=1) + "\n")
    for r in results:
        img, _ = load_image(r.path)
        with img:
            a = np.asarray(img.convert("RGB"))
        drawn = detscore.draw(a, None, r.pred, classes, min_score=min_score)
        Image.fromarray(drawn).save(out / f"{r.image_id:04d}_{r.path.stem}.png")
    return out / "results.json"


def detection_facts(r: ImageDetections, classes: list[str], min_score: float) -> dict:
    keep = np.asarray(r.pred["scores"]) >= min_score
    labels = np.asarray(r.pred["labels"])[keep]
    counts = {classes[k]: int((labels == k).sum()) for k in sorted(set(labels.tolist()))}
    return {"path": str(r.path), "image_id": r.image_id, "objects": int(keep.sum()), "per_class": counts,
            "tiled": r.tiles, "notes": list(r.notes)}
