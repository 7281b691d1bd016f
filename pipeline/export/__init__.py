"""Write a canonical dataset or a dataset version out: ImageFolder, VOC, YOLO, labelme, COCO.

Every export is a layout a trainer takes as it is, and every one keeps the splits:

=========== ==============================================================================
imagefolder ``<split>/<class>/<file>`` (torchvision ``ImageFolder`` per split)
voc         ``JPEGImages/<file>``, ``Annotations/<stem>.xml``, ``ImageSets/Main/<split>.txt``
yolo        ``images/<split>/<file>``, ``labels/<split>/<stem>.txt``, ``data.yaml``
coco        ``images/<split>/<file>``, ``annotations/instances_<split>.json``
labelme     ``<split>/<file>`` and ``<split>/<stem>.json`` beside it
=========== ==============================================================================

A sample's split is the ``--splits`` assignment, else its own; a sample with
neither goes to ``train`` (``UNSPLIT``: trainers need a named split; the summary
counts them). Images are flat inside their folder, under one file name per
sample that is unique across the whole export, also ignoring case and extension
(``flat_names``): YOLO pairs an image with its label by stem, VOC keeps every
split in one ``JPEGImages``. Images are written out of the canonical dataset
(upright pixels, no EXIF rotation left to apply) or out of the version's arrays.

The output directory is claimed and replaced atomically (``pipeline.core.outputs``,
``pipeline.core.atomic``). Every written path is joined with
``pipeline.core.safepaths.join_inside``, and class, split and file names become
directory or file names only through ``safe_names``: a label is data, never a
path (the real names stay in the annotations). ``ingest`` of an export gives back
the same objects, classes and splits (VOC boxes within 0.5 px: it stores integer
pixel indices; what a format cannot hold is counted in the summary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from pipeline.core.atomic import atomic_dir
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.formats import EXPORT_FORMATS
from pipeline.core.outputs import claim_dir
from pipeline.record import Dataset, Sample
from pipeline.core.safepaths import UnsafePath, join_inside, safe_names
from pipeline.core.seeding import key64

FORMATS = EXPORT_FORMATS
TASKS = ("detect", "segment")  # yolo and coco: what an object is written as
UNSPLIT = "train"


@dataclass(frozen=True)
class Plan:
    """Where every sample goes, decided once for every writer."""

    split_of: dict[str, str]  # sample id -> split name (the real name)
    file_of: dict[str, str]  # sample id -> flat file name, unique in the export
    split_dir: dict[str, str]  # split name -> its folder / list name
    root: Path  # the export's final absolute path (writers fill a temporary one)
    task: str = "detect"

    def splits(self) -> list[str]:
        """Split names present, ``train``/``val``/``test`` first, then the others sorted."""
        order = {"train": 0, "val": 1, "test": 2}
        return sorted(set(self.split_of.values()), key=lambda s: (order.get(s, 3), s))


def source_name(s: Sample) -> PurePosixPath:
    """A sample's file name as the source had it: a version's copy gets ``_copy<n>``, and the
    extension is the stored image's."""
    source_id, copy = (s.lineage.source_id, s.lineage.copy) if s.lineage is not None else (s.id, None)
    p = PurePosixPath(PurePosixPath(source_id).name or "image")
    if s.tile is not None:  # a tile cut at ingest: its source's name and offset, as SAHI names slices
        src = PurePosixPath(PurePosixPath(s.tile.source_id).name or "image")
        p = src.with_name(f"{src.stem}_{s.tile.x}_{s.tile.y}{src.suffix}")
    if copy is not None:  # a version's row: one file per copy of the source image
        p = p.with_name(f"{p.stem}_copy{copy}{p.suffix}")
    return p.with_suffix(PurePosixPath(s.image).suffix.lower())


def flat_names(samples: Iterable[Sample]) -> dict[str, str]:
    """``{sample id: file name}``: the source's file name, made safe; a stem that two samples
    share (also ignoring case: ``a.jpg``/``A.png``) gets the sample id's hash on every holder,
    so a name does not depend on which other samples exist."""
    samples = list(samples)
    base = {}
    for s in samples:
        p = source_name(s)
        base[s.id] = (safe_names([p.stem])[p.stem], p.suffix)
    count: dict[str, int] = {}
    for stem, _ in base.values():
        count[stem.lower()] = count.get(stem.lower(), 0) + 1
    out = {sid: (f"{stem}-{key64(sid) % 16**8:08x}" if count[stem.lower()] > 1 else stem) + ext
           for sid, (stem, ext) in base.items()}
    stems = [PurePosixPath(n).stem.lower() for n in out.values()]
    if len(set(stems)) != len(stems):  # a hash collision between two shared stems: vanishingly rare
        raise UnsafePath("two samples cannot be given distinct file names in the export")
    return out


def clipped(box, width: int, height: int) -> tuple[float, float, float, float]:
    """A box clipped to the image (canonical boxes already are; a writer never trusts it)."""
    x1, y1, x2, y2 = box
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def copy_image(ds: Dataset, s: Sample, out: Path, *parts: str) -> Path:
    """Copy a sample's stored image to ``out/parts...`` (proven inside ``out``); return the path."""
    dest = join_inside(out, *parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(ds.read_image(s))
    return dest


def write_text(out: Path, *parts: str, text: str) -> Path:
    dest = join_inside(out, *parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest


def require_objects(ds: Dataset, fmt: str) -> None:
    """Box formats cannot hold image-level labels: refuse rather than drop them all."""
    if not any(s.objects for s in ds.samples):
        raise InputError(f"{ds.root}: no sample has objects, and {fmt} holds only objects; "
                         "export classification data as imagefolder or labelme")


def plan(ds: Dataset, out: Path, assignment: dict[str, str] | None = None, task: str = "detect") -> Plan:
    split_of = {s.id: (assignment or {}).get(s.id) or s.split or UNSPLIT for s in ds.samples}
    return Plan(split_of=split_of, file_of=flat_names(ds.samples), split_dir=safe_names(split_of.values()),
                root=Path(out).resolve(), task=task)


def export(ds: Dataset, out: Path, fmt: str, assignment: dict[str, str] | None = None,
           inputs: Iterable[Path] = (), task: str = "detect") -> dict:
    """Write ``ds`` to ``out`` in ``fmt``; splits from ``assignment``, else as ingested, else ``train``.

    ``task`` (yolo, coco): ``detect`` or ``segment`` (see those writers).
    ``out`` must be apart from the dataset and from ``inputs`` (the split directory),
    and empty or an earlier export."""
    from pipeline.export import coco, imagefolder, labelme, voc, yolo

    writers = {"imagefolder": imagefolder.write, "voc": voc.write, "yolo": yolo.write,
               "labelme": labelme.write, "coco": coco.write}
    if fmt not in writers:
        raise ConfigError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if task not in TASKS:
        raise ConfigError(f"unknown export task {task!r}; known: {', '.join(TASKS)}")
    if task != "detect" and fmt not in ("yolo", "coco"):
        raise ConfigError(f"--task {task} applies to yolo and coco; {fmt} writes every object as it is")
    inputs = [ds.root, *inputs]
    claim_dir(Path(out), "export", inputs)
    where = plan(ds, out, assignment, task)
    with atomic_dir(Path(out), "export", inputs) as tmp:
        summary = writers[fmt](ds, tmp, where)
    if fmt in ("voc", "yolo", "coco"):
        summary["labels_dropped"] = sum(1 for s in ds.samples if s.label is not None)
    splits = {sp: sum(1 for v in where.split_of.values() if v == sp) for sp in where.splits()}
    unsplit = sum(1 for s in ds.samples if not (assignment or {}).get(s.id) and not s.split)
    return {"format": fmt, **({"task": task} if fmt in ("yolo", "coco") else {}), **summary,
            "splits": splits, **({"unsplit_as_train": unsplit} if unsplit else {})}
