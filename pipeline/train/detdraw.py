"""Ground truth and predictions drawn on an image: TensorBoard's validation images and predict's overlays.

Two colours from the Okabe-Ito palette (told apart with any colour vision): ground
truth blue, predictions orange with their class and score written above the box.
Masks, when given, are tinted in the same colours under the boxes.
"""

from __future__ import annotations

import numpy as np

from pipeline.train.detarrays import dets

TRUTH = (0, 114, 178)  # blue
PREDICTED = (230, 159, 0)  # orange
MASK_ALPHA = 0.4


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"draw takes a uint8 image, not {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"draw takes an (H, W, 3) or (H, W) image, not {image.shape}")
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def _tint(rgb: np.ndarray, masks: np.ndarray | None, colour) -> np.ndarray:
    if masks is None or not len(masks):
        return rgb
    if masks.shape[1:] != rgb.shape[:2]:
        raise ValueError(f"masks of {masks.shape[1:]} for an image of {rgb.shape[:2]}")
    area = masks.any(0)[:, :, None]
    tinted = rgb * (1 - MASK_ALPHA) + np.asarray(colour, dtype=np.float64) * MASK_ALPHA
    return np.where(area, tinted, rgb).round().astype(np.uint8)


def draw(image: np.ndarray, target: dict | None, pred: dict | None, classes, min_score: float = 0.25) -> np.ndarray:
    """A copy of ``image`` (uint8, (H, W, 3) or grey) with ``target``'s boxes in blue and
    ``pred``'s boxes scoring at least ``min_score`` in orange, labelled ``class score``.
    Either may be ``None`` (predict has no ground truth). Returns (H, W, 3) uint8."""
    from PIL import Image, ImageDraw, ImageFont

    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    t = dets(target, len(classes), "target") if target is not None else None
    p = dets(pred, len(classes), "prediction") if pred is not None else None
    if p is not None:
        p = p.take(p.scores >= min_score)
    rgb = _tint(rgb, t.masks if t is not None else None, TRUTH)
    rgb = _tint(rgb, p.masks if p is not None else None, PREDICTED)
    canvas = Image.fromarray(np.ascontiguousarray(rgb))
    pen = ImageDraw.Draw(canvas)
    # Line and label sizes bounded in pixels, not grown with the image: a 2,000-pixel aerial
    # image holds hundreds of 30-pixel trees, and labels sized to the image covered them all.
    width = int(np.clip(round(min(h, w) / 400), 1, 3))
    font = ImageFont.load_default(size=int(np.clip(min(h, w) // 40, 9, 14)))
    for box in (t.boxes if t is not None else ()):
        pen.rectangle([float(v) for v in box], outline=TRUTH, width=width)
    for box, label, s in (zip(p.boxes, p.labels, p.scores) if p is not None else ()):
        x1, y1, x2, y2 = (float(v) for v in box)
        pen.rectangle([x1, y1, x2, y2], outline=PREDICTED, width=width)
        # one class: the score alone (the name on every box says nothing and hides the image)
        text = f"{s:.2f}" if len(classes) == 1 else f"{classes[int(label)]} {s:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), text, font=font, anchor="lb")
        if top < 0:  # no room above the box: write inside it
            left, top, right, bottom = pen.textbbox((x1, y1), text, font=font, anchor="lt")
            anchor = "lt"
        else:
            anchor = "lb"
        pen.rectangle([left, top, right, bottom], fill=PREDICTED)
        pen.text((x1, y1), text, fill=(0, 0, 0), font=font, anchor=anchor)
    return np.asarray(canvas)
