"""What a format reader yields before any image is decoded.

Format readers (``imagefolder.py``, ``voc.py``, ``yolo.py``, ``createml.py``, ``cvat.py``,
``labelme.py``, ``coco.py``) only read directory listings and annotation text.
They yield ``Candidate`` (an image that may become a sample) and ``Rejected`` (an
input already known to be bad). The shared build step (``build.py``) decodes,
checks and stores every candidate; then ``annotations.py`` turns the raw
objects into canonical ones, now that the image size is known.

Parsers are pure: text (or a decoded JSON object) in, ``Parsed`` out. A problem
with one line or shape becomes a ``Rejected`` with its ``index``; a problem with
the whole file raises ``AnnotationError``. Readers call parsers through
``guarded``, so whatever a hostile file makes a parser raise quarantines that
file, never the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

from pipeline.core.errors import Refusal
from pipeline.record import Box, Object, Rejected, Source

T = TypeVar("T")


class AnnotationError(Refusal):
    """A whole annotation file is unusable."""


@dataclass(frozen=True)
class RawObject:
    """An object as the annotation file gave it, before the image size is known.

    ``box`` is XYXY and ``polygons`` flat parts, both in the annotation's own
    coordinates: continuous pixels, or fractions of the size when the candidate is
    ``normalized`` (YOLO). ``index`` is the line or shape number in the file.
    """

    label: str
    box: Box | None = None
    polygons: tuple[tuple[float, ...], ...] = ()
    index: int | None = None
    entries: int = 1  # entries of the file it was made of (labelme: the shapes of a group)


@dataclass(frozen=True)
class Parsed:
    """What a pure parser found in one annotation file."""

    objects: tuple[RawObject, ...] = ()
    problems: tuple[Rejected, ...] = ()  # path filled in by the reader
    image: str | None = None  # image reference written in the file
    size: tuple[int, int] | None = None  # (width, height) declared by the file
    label: str | None = None  # image-level class (labelme flags)
    image_data: bytes | None = None  # embedded image (labelme imageData)
    notes: tuple[str, ...] = ()
    ignored: int = 0  # entries counted and deliberately not imported (labelme region shapes)
    label_entry: bool = False  # ``label`` came from an entry of the file (a CVAT ``<tag>``)


@dataclass(frozen=True)
class Candidate:
    id: str
    path: str  # absolute path of the image file ("" when the image is embedded)
    source: Source
    label: str | None = None
    split: str | None = None
    objects: tuple[Object, ...] = ()
    raw: tuple[RawObject, ...] = ()  # objects still to be checked against the image
    normalized: bool = False  # raw coordinates are fractions of the image size
    declared_size: tuple[int, int] | None = None  # (width, height) the annotation claims
    data: bytes | None = field(default=None, repr=False)  # embedded image bytes
    notes: tuple[str, ...] = ()
    label_entry: bool = False  # ``label`` came from an annotation entry (a CVAT ``<tag>``)

    @property
    def entries(self) -> int:
        """Annotation entries whose fate waits on this image: its raw objects, and its label's entry."""
        return sum(o.entries for o in self.raw) + self.label_entry


@dataclass(frozen=True)
class Skipped:
    """A file of the tree that is neither a sample nor an image candidate, only counted.

    ``annotation``: an annotation file that was read (its entries are counted one
    by one). ``index``: a file naming images, splits or classes that was read
    (``data.yaml``, ``ImageSets`` lists, ``classes.txt``, ``obj.names``).
    ``hidden``: a hidden file or folder (``.DS_Store``, ``.ipynb_checkpoints/``,
    ``__MACOSX/``), never read. ``unlisted``: a file the format's index does not
    name (an image missing from a COCO ``images`` list, VOC ``ImageSets`` or the
    ``data.yaml`` splits; a file outside a VOC devkit's ``JPEGImages/``).
    ``ignored``: a file the format knows and passes over on purpose, ``why`` says
    what it is (an Ultralytics ``*.cache``). A file also quarantined as a whole
    takes that fate instead (``pipeline.ingest.fates``).
    """

    path: str
    kind: str  # one of fates.SKIPPED
    why: str = ""


@dataclass(frozen=True)
class Tally:
    """Annotation entries counted by fate, where the fate is settled.

    Readers tally what they settle while reading; the entries still riding on a
    candidate (``Candidate.entries``) are tallied when it is decoded (``build.py``).
    ``source`` is the source's name, stamped like ``Rejected.source``.
    """

    objects: int = 0  # became (part of) an object of a sample
    labels: int = 0  # became a sample's class label (a CVAT <tag>)
    refused: int = 0  # refused: a quarantine row each, with its reason
    ignored: int = 0  # crowd regions, labelme region shapes: counted, not imported
    with_quarantined_input: int = 0  # the image or annotation file they belong to is quarantined
    source: str = ""


@dataclass(frozen=True)
class ClassOrder:
    """The class names a format declares, in its id order (YOLO ``names`` / ``classes.txt`` /
    ``obj.names``, COCO ``categories`` by id), and the file that declares them: without
    ``ingest.classes`` they keep that order, unused names included, so ids round-trip."""

    names: tuple[str, ...]
    where: str


@dataclass(frozen=True)
class Layout:
    """How a reader understood the tree: a name (``voc-devkit``), notes for the report, and
    the splits its index names, each with what names it (``("val", "data.yaml val: images/val")``):
    a named split that keeps no sample is a loss (``pipeline.ingest.loss``)."""

    name: str
    notes: tuple[str, ...] = ()
    splits: tuple[tuple[str, str], ...] = ()


def located(problems: tuple[Rejected, ...] | list[Rejected], path: str) -> list[Rejected]:
    """Give a parser's problems the file they came from."""
    return [Rejected(path=path, reason=r.reason, detail=r.detail, index=r.index) for r in problems]


def guarded(parse: Callable[..., T], *args, **kwargs) -> T | AnnotationError:
    """``parse(*args)``, or the reason it failed: one annotation file is a fault boundary.

    A refusal of the guarded reader keeps its reason; anything else a parser raises on
    a hostile document (a type it did not expect, a value out of range) becomes
    ``annotation-error`` with the exception's type and message, without memory
    addresses, so the file is quarantined deterministically and the run goes on.
    """
    from pipeline.core.inputfile import InputRefused, describe_exception

    try:
        return parse(*args, **kwargs)
    except AnnotationError as err:
        return err
    except InputRefused as err:
        return AnnotationError(err.reason, err.detail)
    except Exception as err:  # noqa: BLE001 - the fault boundary: never a traceback for one file
        return AnnotationError("annotation-error", f"the parser failed: {describe_exception(err)}")


CROWD_REGION = "crowd-region"  # a COCO iscrowd annotation: a region to ignore, counted as ignored


def problem(reason: str, detail: str, index: int | None) -> Rejected:
    """A problem with one line or shape of the file being parsed."""
    return Rejected(path="", reason=reason, detail=detail, index=index)
