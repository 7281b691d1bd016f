"""ImageFolder: ``out/[<split>/]<class>/<image>`` for samples with a class label.

Class and split names become directory names through ``safe_names`` (a class
called ``..`` or ``a/b`` gets a safe, unique folder); the summary lists every
class whose folder differs from its name.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.errors import InputError
from pipeline.export import copy_image, image_relpath
from pipeline.record import Dataset
from pipeline.safepaths import safe_names
from pipeline.seeding import key64


def write(ds: Dataset, out: Path, split_of: dict[str, str | None]) -> dict:
    if not any(s.label is not None for s in ds.samples):
        raise InputError(f"{ds.root}: no sample has a class label; export boxes as voc, yolo, labelme or coco")
    used: set[str] = set()
    written = unlabelled = 0
    folder = safe_names([*ds.classes, *(s.label for s in ds.samples if s.label is not None)])
    split_dir = safe_names(str(v) for v in split_of.values() if v)
    for s in ds.samples:
        if s.label is None:
            unlabelled += 1
            continue
        name = PurePosixPath(image_relpath(ds, s)).name
        split = split_of.get(s.id)
        rel = f"{split_dir[split]}/{folder[s.label]}/{name}" if split else f"{folder[s.label]}/{name}"
        if rel in used:  # same file name from two source folders: keep both
            stem = PurePosixPath(rel)
            rel = str(stem.with_name(f"{stem.stem}_{key64(s.id) % 16**8:08x}{stem.suffix}"))
        used.add(rel)
        copy_image(ds, s, out, *rel.split("/"))
        written += 1
    renamed = {c: folder[c] for c in ds.classes if folder[c] != c}
    return {"images": written, "skipped_unlabelled": unlabelled, **({"renamed_classes": renamed} if renamed else {})}
