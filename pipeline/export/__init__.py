"""Write a canonical dataset or a dataset version out: ImageFolder, VOC, YOLO, labelme, COCO.

One writer module per format; each gets the dataset, a fresh directory and the
split of every sample, and returns what it wrote (including what the format
cannot hold, e.g. polygons in VOC). Images are written out of the canonical
dataset: upright pixels, no EXIF rotation left to apply. The output directory is
claimed and replaced atomically (``pipeline.outputs``, ``pipeline.atomic``).
Every written path is joined with ``pipeline.safepaths.join_inside``, and class
and split names become directory names only through ``safe_names``: a label is
data, never a path (the real names stay in the annotations). ``ingest`` of an export gives back the same records (boxes
within 0.5 px: VOC stores integer pixel indices).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterable

from pipeline.atomic import atomic_dir
from pipeline.errors import ConfigError, InputError
from pipeline.outputs import claim_dir
from pipeline.record import Dataset, Sample
from pipeline.safepaths import join_inside

FORMATS = ("imagefolder", "voc", "yolo", "labelme", "coco")


def image_relpath(ds: Dataset, s: Sample) -> str:
    """Where a sample's image goes: its id (its path in the source), with the stored image's extension."""
    source_id, copy = (s.lineage.source_id, s.lineage.copy) if s.lineage is not None else (s.id, None)
    p = PurePosixPath(source_id)
    if p.is_absolute() or ".." in p.parts:
        raise InputError(f"sample id {s.id!r} is not a safe relative path")
    if copy is not None:  # a version's row: one file per copy of the source image
        p = p.with_name(f"{p.stem}_copy{copy}{p.suffix}")
    return str(p.with_suffix(PurePosixPath(s.image).suffix))


def copy_image(ds: Dataset, s: Sample, out: Path, *parts: str) -> Path:
    """Copy a sample's stored image to ``out/parts...`` (proven inside ``out``); return the path."""
    dest = join_inside(out, *parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(ds.read_image(s))
    return dest


def require_objects(ds: Dataset, fmt: str) -> None:
    """Box formats cannot hold image-level labels: refuse rather than drop them all."""
    if not any(s.objects for s in ds.samples):
        raise InputError(f"{ds.root}: no sample has objects, and {fmt} holds only objects; "
                         "export classification data as imagefolder or labelme")


def export(ds: Dataset, out: Path, fmt: str, assignment: dict[str, str] | None = None,
           inputs: Iterable[Path] = ()) -> dict:
    """Write ``ds`` to ``out`` in ``fmt``; splits from ``assignment``, else as ingested.

    ``out`` must be apart from the dataset and from ``inputs`` (the split directory),
    and empty or an earlier export."""
    from pipeline.export import coco, imagefolder, labelme, voc, yolo

    writers = {"imagefolder": imagefolder.write, "voc": voc.write, "yolo": yolo.write,
               "labelme": labelme.write, "coco": coco.write}
    if fmt not in writers:
        raise ConfigError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    inputs = [ds.root, *inputs]
    claim_dir(Path(out), "export", inputs)
    split_of = {s.id: (assignment or {}).get(s.id) or s.split for s in ds.samples}
    with atomic_dir(Path(out), "export", inputs) as tmp:
        summary = writers[fmt](ds, tmp, split_of)
    if fmt in ("voc", "yolo", "coco"):
        summary["labels_dropped"] = sum(1 for s in ds.samples if s.label is not None)
    return {"format": fmt, **summary}
