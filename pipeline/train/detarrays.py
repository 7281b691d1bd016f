"""One image's detections as checked numpy arrays: the shape every detection helper reads.

Targets and predictions are plain dicts, as torchvision's detection models take and
give them: ``boxes`` (N, 4) absolute XYXY pixels (the record's convention), ``labels``
(N,) 0-based class indices, ``scores`` (N,) for predictions, ``masks`` optional
(N, H, W). Tensors are accepted as well as arrays (a model's output goes in as it is).
Masks become bool: float masks (Mask R-CNN's per-pixel probabilities, (N, 1, H, W))
are cut at 0.5, as torchvision's own reference evaluation does; integer masks are
``!= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MASK_THRESHOLD = 0.5  # Mask R-CNN's probability cut (torchvision references, Detectron2)


def as_numpy(x) -> np.ndarray:
    """An array from an array, a list or a (CPU or GPU) tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass(frozen=True)
class Dets:
    """One image's objects: boxes (N, 4) float64 XYXY, labels (N,) int64, scores (N,)
    float64 (1.0 for ground truth), masks (N, H, W) bool or None."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, keep: np.ndarray) -> "Dets":
        return Dets(self.boxes[keep], self.labels[keep], self.scores[keep],
                    None if self.masks is None else self.masks[keep])


def dets(d: dict, num_classes: int, what: str = "detections") -> Dets:
    """Check and convert one target or prediction dict; a wrong shape is a ``ValueError`` naming it."""
    boxes = as_numpy(d.get("boxes", np.zeros((0, 4)))).astype(np.float64)
    if boxes.size == 0:
        boxes = np.zeros((0, 4))
    elif boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what}: boxes of shape {boxes.shape}; give (N, 4) XYXY")
    n = len(boxes)
    labels = as_numpy(d.get("labels", np.zeros(0))).astype(np.int64).reshape(-1)
    scores = as_numpy(d["scores"]).astype(np.float64).reshape(-1) if "scores" in d else np.ones(n)
    if len(labels) != n or len(scores) != n:
        raise ValueError(f"{what}: {n} boxes but {len(labels)} labels and {len(scores)} scores")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{what}: label {int(labels.min() if labels.min() < 0 else labels.max())} "
                         f"outside 0..{num_classes - 1} (labels are 0-based class indices)")
    if n and not np.isfinite(boxes).all():
        raise ValueError(f"{what}: boxes that are not finite")
    masks = d.get("masks")
    if masks is not None:
        masks = as_numpy(masks)
        if masks.ndim == 4 and masks.shape[1] == 1:  # Mask R-CNN: (N, 1, H, W)
            masks = masks[:, 0]
        if masks.ndim != 3 or len(masks) != n:
            raise ValueError(f"{what}: masks of shape {masks.shape} for {n} boxes; give (N, H, W)")
        masks = masks > MASK_THRESHOLD if np.issubdtype(masks.dtype, np.floating) else masks != 0
    return Dets(boxes, labels, scores, masks)
