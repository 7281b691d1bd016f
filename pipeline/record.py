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
see ``pipeline.images.imagestore``; read them with ``Dataset.read_image``). Its files, a
version's and ``splits.json`` are read by ``read_jsonl`` and ``read_json``: the
guarded reader, and one error naming the file and the line for anything damaged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, TypeVar

if TYPE_CHECKING:
    import numpy as np

MANIFEST = "manifest.jsonl"
CLASSES = "classes.json"
QUARANTINE = "quarantine.jsonl"
IMAGES = "images"
REPORT = "report.json"  # ingest's findings: inputs, class map, rejected objects
DUPLICATES = "duplicates.json"  # exact and near-duplicate groups (split keeps each together)
SPLITS = ("train", "val", "test")  # the split names, in the order samples are dealt and listed
BUFFER = "buffer"  # the split assignment of a tile left between two splits' blocks (split.block): in none

Box = tuple[float, float, float, float]
T = TypeVar("T")
INGEST_AGAIN = "re-run `pipeline ingest` to write the dataset again"
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
class Tile:
    """Where a tile of a large image lies in it (``ingest.tile``): the canonical id its
    source image would have had, the pixel offset of the tile's top-left corner in that
    upright image, and the image's size. Objects of the tile are in tile pixels: add
    ``(x, y)`` to map them back."""

    source_id: str
    x: int
    y: int
    source_width: int
    source_height: int

    def to_json(self) -> dict:
        return {"source_id": self.source_id, "x": self.x, "y": self.y, "source_width": self.source_width,
                "source_height": self.source_height}

    @classmethod
    def from_json(cls, d: dict) -> "Tile":
        if not isinstance(d.get("source_id"), str):
            raise TypeError("tile: 'source_id' must be a string")
        return cls(d["source_id"], int(d["x"]), int(d["y"]), int(d["source_width"]), int(d["source_height"]))


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
    tile: Tile | None = None  # set for a tile cut from a larger image at ingest

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
        if self.tile is not None:
            out["tile"] = self.tile.to_json()
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Sample":
        for key, kinds in (("id", str), ("image", str), ("label", (str, type(None))), ("split", (str, type(None)))):
            if not isinstance(d[key] if key in ("id", "image") else d.get(key), kinds):
                raise TypeError(f"{key!r} must be a string, not {type(d[key]).__name__}")
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
            tile=Tile.from_json(d["tile"]) if d.get("tile") else None,
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


def _damaged(path: Path, problem: str, remedy: str) -> Exception:
    from pipeline.core.errors import InputError

    return InputError(f"{path}: {problem}; {remedy}")


def read_jsonl(path: Path, build: Callable[[dict], T] | None = None,
               remedy: str = "re-run the command that wrote it") -> Iterator[T]:
    """The rows of a JSON-lines file of a dataset directory, each through ``build``.

    Opened by the guarded reader (a FIFO or a device is refused at once) and streamed.
    A line that is not UTF-8, not JSON, not an object, or not what ``build`` takes
    stops with an ``InputError`` naming the file, the 1-based line number, the
    problem and ``remedy``; blank lines are skipped.
    """
    from pipeline.core.inputfile import InputRefused, describe_exception, open_regular

    try:
        fd, _ = open_regular(path)
    except InputRefused as err:
        raise _damaged(path, f"cannot read it ({err.reason}: {err.detail})", remedy) from None
    with os.fdopen(fd, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _damaged(path, f"line {number}: not UTF-8 (byte 0x{raw[err.start]:02x} at column "
                                     f"{err.start + 1})", remedy) from None
            if not line.strip():
                continue
            line = line.rstrip("\r\n")
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as err:
                why = f"{err.msg} at column {err.pos + 1}" if isinstance(err, json.JSONDecodeError) else "nested too deeply"
                raise _damaged(path, f"line {number}: not valid JSON ({why})", remedy) from None
            if not isinstance(row, dict):
                raise _damaged(path, f"line {number}: a JSON {type(row).__name__}, not an object", remedy)
            if build is None:
                yield row  # type: ignore[misc]
                continue
            try:
                record = build(row)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise _damaged(path, f"line {number}: not a valid row ({describe_exception(err)})", remedy) from None
            yield record


def read_json(path: Path, remedy: str = "re-run the command that wrote it") -> Any:
    """A JSON document of a dataset directory (``classes.json``, ``splits.json``,
    ``card.json``, ...), read by the guarded reader; an empty, damaged or unreadable
    file stops with an ``InputError`` naming it (and the line, for bad JSON) and ``remedy``."""
    from pipeline.core.inputfile import InputRefused, parse_json, read_bytes

    try:
        data = read_bytes(path, "index")
        if not data.strip():
            raise _damaged(path, "the file is empty", remedy)
        return parse_json(data)
    except InputRefused as err:
        what = "not valid JSON" if err.reason == "malformed-json" else f"cannot read it ({err.reason})"
        raise _damaged(path, f"{what}: {err.detail}", remedy) from None


class ImageSource(Protocol):
    """Where a dataset's images are read, by a sample's ``image`` reference: a canonical
    dataset's packs and plain files (``imagestore.ImageReader``), or a version's packed
    arrays and PNG files (``version.dataset.VersionImages``)."""

    def read(self, ref: str) -> bytes:
        """The image's bytes as stored (encoded)."""

    def pixels(self, ref: str, channels: int) -> "np.ndarray":
        """uint8 (H, W, C) as stored, with ``channels`` (1: L, 3: RGB) when it is decoded."""


@dataclass(frozen=True)
class Dataset:
    """A canonical dataset (or a dataset version's rows) loaded from its directory."""

    root: Path
    samples: tuple[Sample, ...]
    classes: tuple[str, ...]
    quarantine: tuple[Rejected, ...] = ()
    images: ImageSource = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.images is None:
            from pipeline.images.imagestore import ImageReader

            object.__setattr__(self, "images", ImageReader(self.root))

    def read_image(self, sample: Sample) -> bytes:
        """The stored (upright, canonical) image bytes of ``sample``."""
        return self.images.read(sample.image)

    def pixels(self, sample: Sample) -> "np.ndarray":
        """uint8 (H, W, C) of ``sample``'s stored image."""
        return self.images.pixels(sample.image, sample.channels)

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


def load_canonical(root: Path) -> Dataset:
    """Load a canonical dataset (``pipeline.datasets.load_dataset`` opens a version too);
    a file missing, damaged or not a regular file stops with an error naming it (and
    the line, in a JSON-lines file)."""
    from pipeline.core.errors import InputError

    root = Path(root)
    if os.path.lexists(root) and not root.is_dir():
        raise InputError(f"{root}: not a directory; a dataset is the directory `pipeline ingest` "
                         "(or a version, `pipeline augment`) writes")
    for name in (MANIFEST, CLASSES):
        if not os.path.lexists(root / name):
            raise InputError(
                f"{root}: not a canonical dataset (missing {name}); "
                "create one with `pipeline ingest`"
            )
    samples = tuple(read_jsonl(root / MANIFEST, Sample.from_json, INGEST_AGAIN))
    classes = read_classes(root / CLASSES, INGEST_AGAIN)
    q = root / QUARANTINE
    quarantine = tuple(read_jsonl(q, Rejected.from_json, INGEST_AGAIN)) if os.path.lexists(q) else ()
    return Dataset(root=root, samples=samples, classes=classes, quarantine=quarantine)


def read_classes(path: Path, remedy: str) -> tuple[str, ...]:
    """``classes.json``: a JSON list of class names."""
    classes = read_json(path, remedy)
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise _damaged(path, "not a JSON list of class names", remedy)
    return tuple(classes)


def read_duplicate_groups(root: Path) -> list[dict]:
    """The groups of a dataset's ``duplicates.json`` (none when it has no such file):
    ``{ids: [sample id, ...], kind, labels?}`` each."""
    path = Path(root) / DUPLICATES
    if not os.path.lexists(path):
        return []
    doc = read_json(path, INGEST_AGAIN)
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("ids"), list) and all(isinstance(i, str) for i in g["ids"])
            for g in groups):
        raise _damaged(path, 'not {"groups": [{"ids": [sample id, ...]}, ...]}', INGEST_AGAIN)
    return groups


def read_report(root: Path) -> dict:
    """A canonical dataset's ``report.json`` ({} when it has none)."""
    path = Path(root) / REPORT
    if not os.path.lexists(path):
        return {}
    report = read_json(path, INGEST_AGAIN)
    if not isinstance(report, dict):
        raise _damaged(path, "not a JSON object", INGEST_AGAIN)
    return report
