"""Prediction on an image larger than the model's input: overlapping tiles, stitched with NMS.

The tiles are ``pipeline.core.tiles``' (the grid ingest cuts training tiles on). Each
tile's detections are shifted back into image coordinates and merged by class-wise
NMS across tiles (``torchvision.ops.batched_nms``). NMS alone keeps an object twice
when one tile sees it whole and its neighbour only a sliver at the tile edge (their
IoU is small), so a box that touches a tile edge inside the image (cut by the tile)
is dropped as well when most of it (``CUT_COVERED``) lies inside a kept box of its
class that is not cut. With ``overlap`` larger than the largest object, every
object lies whole in some tile, and that tile's box is the one kept.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pipeline.core.tiles import tile_origins
from pipeline.train.detarrays import Dets, as_numpy, dets

CUT_MARGIN = 2.0  # pixels from an inner tile edge within which a box counts as cut by it
CUT_COVERED = 0.5  # share of a cut box inside an uncut one of its class for it to be a duplicate


def _tile_dets(pred: dict, y: int, x: int, th: int, tw: int, height: int, width: int) -> tuple[Dets, np.ndarray]:
    """A tile's detections in image coordinates, and which of them its inner edges cut."""
    labels = as_numpy(pred.get("labels", np.zeros(0)))
    d = dets(pred, int(labels.max()) + 1 if labels.size else 1, f"tile at (y={y}, x={x})")
    boxes = d.boxes + np.array([x, y, x, y], dtype=np.float64)
    cut = np.zeros(len(d), dtype=bool)
    if x > 0:
        cut |= boxes[:, 0] <= x + CUT_MARGIN
    if y > 0:
        cut |= boxes[:, 1] <= y + CUT_MARGIN
    if x + tw < width:
        cut |= boxes[:, 2] >= x + tw - CUT_MARGIN
    if y + th < height:
        cut |= boxes[:, 3] >= y + th - CUT_MARGIN
    masks = None
    if d.masks is not None:
        if d.masks.shape[1:] != (th, tw):
            raise ValueError(f"tile at (y={y}, x={x}): masks of {d.masks.shape[1:]} for a {th}x{tw} tile")
        masks = d.masks
    return Dets(boxes, d.labels, d.scores, masks), cut


def _covered_by_uncut(boxes: np.ndarray, labels: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Cut boxes whose area lies mostly (``CUT_COVERED``) inside an uncut box of their class."""
    whole = np.flatnonzero(~cut)
    out = np.zeros(len(boxes), dtype=bool)
    for i in np.flatnonzero(cut):
        other = whole[labels[whole] == labels[i]]
        if other.size == 0:
            continue
        b, o = boxes[i], boxes[other]
        iw = np.clip(np.minimum(b[2], o[:, 2]) - np.maximum(b[0], o[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[3], o[:, 3]) - np.maximum(b[1], o[:, 1]), 0, None)
        area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
        out[i] = (iw * ih / area).max() >= CUT_COVERED
    return out


def tiled_predict(predict_fn: Callable[[np.ndarray], dict], image: np.ndarray, tile: int, overlap: int,
                  iou: float = 0.5) -> dict:
    """Detections of ``image`` (H, W, C uint8) from ``predict_fn`` run tile by tile.

    ``predict_fn(tile_image)`` returns one tile's prediction dict (boxes XYXY in tile
    pixels, scores, labels, optional masks the size of the tile). The result is one
    prediction dict for the whole image, numpy arrays: ``boxes`` float32, ``scores``
    float32, ``labels`` int64, and ``masks`` (N, H, W) uint8 when the tiles gave masks.
    An image no larger than one tile is a single call, its prediction as it came.
    """
    import torch
    from torchvision.ops import batched_nms

    image = np.asarray(image)
    height, width = image.shape[:2]
    origins = tile_origins(height, width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    parts, cuts = [], []
    for y, x in origins:
        pred = predict_fn(np.ascontiguousarray(image[y:y + th, x:x + tw]))
        d, cut = _tile_dets(pred, y, x, th, tw, height, width)
        parts.append((d, y, x))
        cuts.append(cut)
    boxes = np.concatenate([d.boxes for d, _, _ in parts])
    scores = np.concatenate([d.scores for d, _, _ in parts])
    labels = np.concatenate([d.labels for d, _, _ in parts])
    owner = np.concatenate([np.full(len(d), i) for i, (d, _, _) in enumerate(parts)]).astype(np.int64)
    cut = np.concatenate(cuts)
    if len(origins) == 1:
        keep = np.arange(len(boxes))
    else:
        keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels),
                           iou).numpy()
        keep = keep[~_covered_by_uncut(boxes[keep], labels[keep], cut[keep])]
    out = {"boxes": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
           "labels": labels[keep]}
    with_masks = [d.masks is not None for d, _, _ in parts]
    if any(with_masks):
        if not all(m or not len(d) for m, (d, _, _) in zip(with_masks, parts)):
            raise ValueError("some tiles' predictions have masks and others not: give masks for every tile")
        masks = np.zeros((len(keep), height, width), dtype=np.uint8)
        firsts = np.cumsum([0] + [len(d) for d, _, _ in parts])
        for j, k in enumerate(keep):  # only what NMS kept is pasted: a full-size mask each
            d, y, x = parts[owner[k]]
            masks[j, y:y + th, x:x + tw] = d.masks[k - firsts[owner[k]]]
        out["masks"] = masks
    return out
