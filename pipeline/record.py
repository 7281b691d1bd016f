"""The canonical sample record and the canonical dataset on disk.

One ``Sample`` describes one image and everything known about it. Every
ingester produces Samples, every later stage consumes them; file formats exist
only at the edges (ingest, export). Records are frozen: a stage that changes a
sample builds a new one with ``dataclasses.replace``.

Conventions (the same everywhere in the code):

* boxes are absolute pixel coordinates ``(x1, y1, x2, y2)`` in the upright image,
  continuous: the pixel with index ``i`` spans ``[i, i + 1)``;
* polygons are flat tuples ``(x0, y0, x1, y1, ...)`` in the same coordinates; an
  object may have several polygon parts (labelme ``group_id``);
* labels are class *names*; the dataset's ordered class list maps them to indices.

The canonical dataset directory holds ``manifest.jsonl`` (one Sample per line,
sorted by id), ``classes.json`` (ordered class names), ``quarantine.jsonl``
(rejected inputs with reasons) and ``images/`` (the upright images, in tar packs:
see ``pipeline.imagestore``; read them with ``Dataset.read_image``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    from pipeline.imagestore import ImageReader

MANIFEST = "manifest.jsonl"
CLASSES = "classes.json"
QUARANTINE = "quarantine.jsonl"
IMAGES = "images"
REPORT = "report.json"  # ingest's findings: inputs, class map, rejected objects
DUPLICATES = "duplicates.json"  # exact and near-duplicate groups (split keeps each together)

Box = tuple[float, float, float, float]
MAX_DETAIL = 1000  # characters of a quarantine detail written


@dataclass(frozen=True)
class Object:
    """One annotated instance: a class name, its box and optional polygon parts."""

    label: str
    box: Box
    polygons: tuple[tuple[float, ...], ...] = ()

    def to_json(self) -> dict:
        out: dict = {"label": self.label, "box": [round(v, 3) for v in self.box]}
        if self.polygons:
            out["polygons"] = [[round(v, 3) for v in p] for p in self.polygons]
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Object":
        return cls(
            label=d["label"],
            box=tuple(float(v) for v in d["box"]),  # type: ignore[arg-type]
            polygons=tuple(tuple(float(v) for v in p) for p in d.get("polygons", ())),
        )


@dataclass(frozen=True)
class Source:
    """Where a sample came from, so any record can be traced to the user's file.

    ``root`` is the source's *name* (its ``ingest.sources`` name, or the last
    component of its resolved path), not the path as typed: ``src`` and
    ``/abs/src`` give the same bytes. ``report.json`` maps each name to the path
    given (``source_paths``).
    """

    format: str
    path: str  # as given by the user's tree, relative to the source root
    root: str = ""  # the source's name (see report.json ``sources`` for its path)
    annotation: str = ""  # annotation file, when separate from the image

    def to_json(self) -> dict:
        # Spelled out: dataclasses.asdict deep-copies, and took a third of ingest's
        # manifest writing (its serial tail).
        out = {"format": self.format, "path": self.path, "root": self.root, "annotation": self.annotation}
        return {k: v for k, v in out.items() if v}

    @classmethod
    def from_json(cls, d: dict) -> "Source":
        return cls(**d)


@dataclass(frozen=True)
class Lineage:
    """How an output sample of a dataset version was made from a canonical one."""

    source_id: str
    copy: int  # 0 = the original
    ops: tuple[dict, ...] = ()  # the exact parameters each op drew
    partners: tuple[str, ...] = ()  # source id per mixing slot
    dropped: tuple[dict, ...] = ()  # own objects removed: label, source box, reason
    mix_label: str | None = None
    mix_weight: float = 1.0  # the weight of ``Sample.label`` (1.0: not mixed)
    object_partners: tuple[str, ...] = ()  # per object: the partner it came from ("" own)
    object_weights: tuple[float, ...] = ()  # per object: mixup's share of its image

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "Lineage":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Sample:
    """One image of the canonical dataset.

    ``id`` is stable across runs (derived from the source name and the file's path
    in its tree), so seeds, splits and traces keyed by it never move when files are
    added elsewhere. ``image`` is relative to the dataset directory.
    """

    id: str
    image: str
    width: int
    height: int
    channels: int
    label: str | None = None
    objects: tuple[Object, ...] = ()
    split: str | None = None
    source: Source = field(default_factory=lambda: Source("unknown", ""))
    pixel_hash: str = ""  # hash of decoded pixels: exact-duplicate detection
    notes: tuple[str, ...] = ()  # what ingest changed, e.g. "exif-transposed:6"
    dhash: str = ""  # perceptual (difference) hash: near-duplicate detection
    lineage: Lineage | None = None  # set for the rows of a dataset version

    def to_json(self) -> dict:
        out: dict = {
            "id": self.id,
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "label": self.label,
            "objects": [o.to_json() for o in self.objects],
            "split": self.split,
            "source": self.source.to_json(),
            "pixel_hash": self.pixel_hash,
        }
        if self.notes:
            out["notes"] = list(self.notes)
        if self.dhash:
            out["dhash"] = self.dhash
        if self.lineage is not None:
            out["lineage"] = self.lineage.to_json()
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Sample":
        return cls(
            id=d["id"],
            image=d["image"],
            width=int(d["width"]),
            height=int(d["height"]),
            channels=int(d["channels"]),
            label=d.get("label"),
            objects=tuple(Object.from_json(o) for o in d.get("objects", ())),
            split=d.get("split"),
            source=Source.from_json(d.get("source", {"format": "unknown", "path": ""})),
            pixel_hash=d.get("pixel_hash", ""),
            notes=tuple(d.get("notes", ())),
            dhash=d.get("dhash", ""),
            lineage=Lineage.from_json(d["lineage"]) if d.get("lineage") else None,
        )


@dataclass(frozen=True)
class Rejected:
    """One input that did not become a sample, and why. Nothing is dropped silently."""

    path: str
    reason: str
    detail: str = ""
    source: str = ""  # the source's name, as ``Source.root``
    index: int | None = None  # line or shape index inside an annotation file

    def to_json(self) -> dict:
        out = {k: printable(v) if isinstance(v, str) else v
               for k, v in dataclasses.asdict(self).items() if v not in ("", None)}
        if len(out.get("detail", "")) > MAX_DETAIL:  # a detail never carries a whole hostile document
            out["detail"] = out["detail"][:MAX_DETAIL] + "..."
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Rejected":
        return cls(**d)


def printable(text: str) -> str:
    """Text from the file system made valid for any output: each undecodable byte as ``%XX``.

    ``os`` functions return bytes of a name that is not UTF-8 (``caf\\xe9.png``) as lone
    surrogates (``surrogateescape``), which no UTF-8 file can hold; other text is kept.
    ``%`` rather than a backslash escape, which annotation references would read as a
    Windows path separator.
    """
    if text.isascii():
        return text
    return "".join(f"%{ord(ch) - 0xDC00:02X}" if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in text)


def source_paths(dataset_root: Path) -> dict[str, str]:
    """``{source name: path as given}`` from a canonical dataset's ``report.json`` ({} if absent)."""
    try:
        report = json.loads((Path(dataset_root) / REPORT).read_text(encoding="utf-8"))
        return {s["name"]: s["path"] for s in report.get("sources", []) if "name" in s}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write rows as JSON lines with sorted keys, so equal data gives equal bytes."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


@dataclass(frozen=True)
class Dataset:
    """A canonical dataset (or a dataset version's rows) loaded from its directory."""

    root: Path
    samples: tuple[Sample, ...]
    classes: tuple[str, ...]
    quarantine: tuple[Rejected, ...] = ()
    images: "ImageReader" = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.images is None:
            from pipeline.imagestore import ImageReader

            object.__setattr__(self, "images", ImageReader(self.root))

    def read_image(self, sample: Sample) -> bytes:
        """The stored (upright, canonical) image bytes of ``sample``."""
        return self.images.read(sample.image)

    def image_location(self, sample: Sample) -> str:
        """Where the image is stored, for messages: ``<root>/images/00000.tar/<member>``."""
        return f"{self.root}/{sample.image}"

    @property
    def kind(self) -> str:
        """``detection`` when any sample has objects, else ``classification``."""
        return "detection" if any(s.objects for s in self.samples) else "classification"


def save_dataset(root: Path, samples: Iterable[Sample], classes: Iterable[str],
                 quarantine: Iterable[Rejected]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / MANIFEST, (s.to_json() for s in sorted(samples, key=lambda s: s.id)))
    (root / CLASSES).write_text(json.dumps(list(classes), indent=1) + "\n", encoding="utf-8")
    rejected = sorted(quarantine, key=lambda r: (r.path, r.index or 0, r.reason))
    write_jsonl(root / QUARANTINE, (r.to_json() for r in rejected))


def load_dataset(root: Path) -> Dataset:
    """Load a canonical dataset or a dataset version, with an error that says what is missing."""
    from pipeline.errors import InputError
    from pipeline.version.dataset import is_version, load_version

    root = Path(root)
    if is_version(root):
        return load_version(root)
    for name in (MANIFEST, CLASSES):
        if not (root / name).is_file():
            raise InputError(
                f"{root}: not a canonical dataset (missing {name}); "
                "create one with `pipeline ingest`"
            )
    samples = tuple(Sample.from_json(d) for d in read_jsonl(root / MANIFEST))
    classes = tuple(json.loads((root / CLASSES).read_text(encoding="utf-8")))
    q = root / QUARANTINE
    quarantine = tuple(Rejected.from_json(d) for d in read_jsonl(q)) if q.is_file() else ()
    return Dataset(root=root, samples=samples, classes=classes, quarantine=quarantine)
