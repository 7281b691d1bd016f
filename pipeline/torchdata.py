"""Any canonical dataset or dataset version as per-split torch ``Dataset``s.

    from pipeline.torchdata import open_splits
    splits = open_splits(version_dir)               # {"train": ..., "val": ..., "test": ...}
    image, target = splits["train"][0]

* **Classification** (no sample has objects): ``(image, label)``: ``image`` a
  ``tv_tensors.Image`` (uint8, C x H x W), ``label`` the class index; with
  ``soft_labels=True`` a float tensor over the classes (a version's mixup/cutmix
  rows carry two classes).
* **Detection and segmentation**: ``(image, target)`` with ``target["boxes"]`` a
  ``tv_tensors.BoundingBoxes`` (XYXY, with its canvas size), ``target["labels"]``
  int64 **1-based** class indices (0 is the background, as torchvision's detection
  models expect: ``classes[label - 1]``), and with ``masks=True``
  ``target["masks"]`` a ``tv_tensors.Mask`` (N x H x W) rasterised from the polygons
  (the box when an object has none). torchvision's detection models and v2
  transforms take these as they are.

A version's packed rows are read from its memory-mapped arrays; a canonical
dataset's images are decoded from its packs. Splits are the samples' own (a
version's, or the source's given split) unless ``assignment`` (``splits.json``'s)
is passed; samples with none go to ``"unassigned"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from pipeline.datasets import load_dataset
from pipeline.record import Dataset, Sample


def object_mask(obj, h: int, w: int) -> np.ndarray:
    """(h, w) bool: the pixels whose centres lie inside the object's polygons (its box
    when it has none). pycocotools rasterises, so the masks trained on are the masks
    COCOeval and the COCO export's consumers make of the same polygons (PIL's polygon
    fill takes every pixel its outline touches: a pixel too many on two sides)."""
    from pycocotools import mask as mask_utils

    x1, y1, x2, y2 = obj.box
    parts = [list(map(float, p)) for p in (obj.polygons or ((x1, y1, x2, y1, x2, y2, x1, y2),))]
    # Fewer than 3 vertices cover no pixel centre (and pycocotools would read 4 numbers as a box).
    parts = [p for p in parts if len(p) >= 6]
    if not parts:
        return np.zeros((h, w), bool)
    rle = mask_utils.merge(mask_utils.frPyObjects(parts, h, w))
    return mask_utils.decode(rle).astype(bool)


class SplitDataset(TorchDataset):
    """The samples of one split; see the module docstring for what an item is."""

    def __init__(self, ds: Dataset, samples: list[Sample], soft_labels: bool = False, masks: bool = False):
        self.ds, self.samples = ds, samples
        self.classes = ds.classes
        self.detection = ds.kind == "detection"
        self.soft_labels, self.masks = soft_labels, masks
        self.index = {name: i for i, name in enumerate(ds.classes)}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors

        s = self.samples[i]
        a = self.ds.pixels(s)
        image = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))))
        h, w = a.shape[:2]
        if not self.detection:
            return image, self._label(s)
        boxes = torch.tensor([o.box for o in s.objects], dtype=torch.float32).reshape(-1, 4)
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
            "labels": torch.tensor([self.index[o.label] + 1 for o in s.objects], dtype=torch.int64),
        }
        if self.masks:
            m = np.stack([object_mask(o, h, w) for o in s.objects]) if s.objects else np.zeros((0, h, w), bool)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(m))
        return image, target

    def _label(self, s: Sample):
        label = self.index[s.label] if s.label is not None else -1
        if not self.soft_labels:
            return label
        soft = torch.zeros(len(self.classes))
        lin = s.lineage
        if lin is not None and lin.mix_weight != 1.0 and lin.mix_label is not None:
            soft[label] += lin.mix_weight
            soft[self.index[lin.mix_label]] += 1.0 - lin.mix_weight
        elif label >= 0:
            soft[label] = 1.0
        return soft


def open_splits(path: Path | str, assignment: dict[str, str] | None = None, *, soft_labels: bool = False,
                masks: bool = False) -> dict[str, SplitDataset]:
    """Open a canonical dataset or a dataset version as ``{split: torch Dataset}``."""
    ds = load_dataset(Path(path))
    by_split: dict[str, list[Sample]] = {}
    for s in ds.samples:
        split = (assignment or {}).get(s.id) or s.split or "unassigned"
        by_split.setdefault(split, []).append(s)
    return {name: SplitDataset(ds, samples, soft_labels, masks) for name, samples in by_split.items()}


def collate_detection(batch):
    """For detection ``DataLoader``s: a tuple of images and a tuple of targets."""
    return tuple(zip(*batch))
