"""Generated detection data for the export tests: box, polygon and mixed, canonical or a version.

Built on ``version_data.make_annotated`` (bright shapes on a dark background, one or
two objects an image). ``kind`` decides what the objects carry:

* ``box``: boxes only;
* ``polygon``: every object a pentagon inside its box (the box is the pentagon's
  tight box), and the first image's first object in two parts (one instance, as a
  labelme ``group_id`` gives it);
* ``mixed``: the polygon data, with every other object (in reading order) box-only.

``splits``: ``own`` gives each sample its split (train/val/test in turn),
``none`` leaves every sample unsplit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipeline.datasets import load_dataset
from pipeline.record import Object, save_dataset
from tests.version_data import make_annotated

# The readers of the VOC devkit (Annotations/ + JPEGImages/ + ImageSets/Main) and of

KINDS = ("box", "polygon", "mixed")
SPLITS = ("train", "val", "test")


def pentagon(box) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    cx = (x1 + x2) / 2
    return (cx, y1, x2, y1 + 0.4 * (y2 - y1), x2 - 0.2 * (x2 - x1), y2, x1 + 0.2 * (x2 - x1), y2,
            x1, y1 + 0.4 * (y2 - y1))


def two_parts(box) -> tuple[tuple[float, ...], ...]:
    x1, y1, x2, y2 = box
    xm = (x1 + x2) / 2
    return ((x1, y1, xm - 1, y1, xm - 1, y2, x1, y2), (xm + 1, y1, x2, y1, x2, y2, xm + 1, y2))


def make_detection(root: Path, kind: str, splits: str = "own", n: int = 9):
    """A canonical detection dataset of ``kind`` under ``root``; returns it loaded."""
    base = load_dataset(make_annotated(root, n=n))
    samples, k = [], 0
    for i, s in enumerate(base.samples):
        objects = []
        for j, o in enumerate(s.objects):
            if kind == "box" or (kind == "mixed" and k % 2):
                objects.append(Object(o.label, o.box))
            elif i == 0 and j == 0:
                objects.append(Object(o.label, o.box, two_parts(o.box)))
            else:
                objects.append(Object(o.label, o.box, (pentagon(o.box),)))
            k += 1
        samples.append(dataclasses.replace(s, objects=tuple(objects),
                                           split=SPLITS[i % 3] if splits == "own" else None))
    save_dataset(root, samples, base.classes, [])
    return load_dataset(root)
