"""ImageFolder: ``out/<split>/<class>/<file>`` for samples with a class label.

Each split folder is what torchvision's ``ImageFolder`` takes. Class and split
names become directory names through ``safe_names`` (a class called ``..`` or
``a/b`` gets a safe, unique folder); the summary lists every class whose folder
differs from its name.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.export import Plan, copy_image
from pipeline.record import Dataset
from pipeline.core.safepaths import safe_names


def write(ds: Dataset, out: Path, plan: Plan) -> dict:
    if not any(s.label is not None for s in ds.samples):
        raise InputError(f"{ds.root}: no sample has a class label; export boxes as voc, yolo, labelme or coco")
    written = unlabelled = 0
    folder = safe_names([*ds.classes, *(s.label for s in ds.samples if s.label is not None)])
    for s in ds.samples:
        if s.label is None:
            unlabelled += 1
            continue
        copy_image(ds, s, out, plan.split_dir[plan.split_of[s.id]], folder[s.label], plan.file_of[s.id])
        written += 1
    renamed = {c: folder[c] for c in ds.classes if folder[c] != c}
    return {"images": written, "skipped_unlabelled": unlabelled, **({"renamed_classes": renamed} if renamed else {})}
