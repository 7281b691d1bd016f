"""What the first bytes of a tree's files say, and the formats refused by name.

``--format auto`` (``detect.py``) and the readers that a look-alike would fool
(VOC for any XML, YOLO for any ``.txt``) ask the same questions here, reading at
most ``SNIFF_BYTES`` of at most ``SNIFF_FILES`` files of a kind through the guarded
reader (a FIFO named ``x.xml`` cannot block).

* An XML file's kind comes from its parsed root element, never a substring:
  ``<annotations>`` is CVAT, ``<annotation>`` is VOC unless its objects hold
  LabelMe's ``<polygon><pt>``.
* **Refused by name** (``Unsupported``): MIT LabelMe XML, and DOTA-style oriented
  boxes (``x1 y1 x2 y2 x3 y3 x4 y4 class [difficulty]`` lines, after the optional
  ``imagesource:`` / ``gsd:`` header lines). Read half-right they lose every object
  (and LabelMe's ``Masks/``, ``Scribbles/`` PNGs would pass for samples), so the
  whole tree is refused with one line saying what it is. Ultralytics' OBB lines
  (``class x1 y1 ... y4``, all numbers) are the same text as a 4-point YOLO polygon
  and are read as one: the polygon is the oriented box, nothing is lost.
* TFRecord files are refused by name when nothing else in the tree is annotated
  (``detect.py``), rather than the tree being read as ImageFolder.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.core.errors import InputError
from pipeline.ingest.numbers import parse_number, split_ascii
from pipeline.ingest.safexml import sniff
from pipeline.core.inputfile import InputRefused, read_head

SNIFF_BYTES = 64 * 1024  # COCO files put `images` after `info`, `licenses`, `categories`: a few KiB
SNIFF_FILES = 20  # files of one kind looked into

LABELME_XML = "MIT LabelMe XML"
DOTA = "DOTA / oriented boxes"
TFRECORD = "TFRecord"
ADVICE = {
    LABELME_XML: "convert it to labelme JSON or COCO first",
    DOTA: "convert the boxes to YOLO lines (class cx cy w h, or class x1 y1 ... as a polygon) first",
    TFRECORD: "export the images and annotations (COCO, VOC or YOLO) first",
}
DOTA_HEADER = ("imagesource:", "gsd:")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords")


def head(path: Path) -> bytes:
    """The first bytes of a file without a BOM or leading blanks; ``b""`` when it cannot be read."""
    try:
        return read_head(path, SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
    except InputRefused:
        return b""


def xml_kinds(rels: dict[str, Path]) -> dict[str, str]:
    """``{kind: first file showing it}`` over the first XML files: ``voc``, ``cvat`` or ``LABELME_XML``."""
    out: dict[str, str] = {}
    xmls = [r for r in sorted(rels) if r.lower().endswith(".xml")]
    for r in xmls[:SNIFF_FILES]:
        shape = sniff(head(rels[r]))
        if shape is None:
            continue
        kind = {"annotations": "cvat", "annotation": LABELME_XML if shape.labelme else "voc"}.get(shape.root)
        if kind:
            out.setdefault(kind, r)
    return out


def is_dota_line(tokens: list[str]) -> bool:
    """``x1 y1 x2 y2 x3 y3 x4 y4 class [difficulty]``: eight numbers, then a class name that is not one."""
    if len(tokens) not in (9, 10):
        return False
    try:
        [parse_number(t) for t in tokens[:8]]
    except ValueError:
        return False
    try:
        parse_number(tokens[8])
    except ValueError:
        return True
    return False


def dota_line(text: str) -> int | None:
    """The number of the first DOTA line in a label file's text, or None."""
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip().lower().startswith(DOTA_HEADER):
            continue
        if is_dota_line(split_ascii(line)):
            return n
    return None


def dota_file(rels: dict[str, Path], skip: tuple[str, ...] = ()) -> tuple[str, int] | None:
    """``(file, line)`` of the first DOTA label file among the first ``.txt`` files, or None."""
    txts = [r for r in sorted(rels) if r.endswith(".txt") and PurePosixPath(r).name not in skip]
    for r in txts[:SNIFF_FILES]:
        raw = head(rels[r])
        text = raw.decode("utf-8", "replace")
        if len(raw) >= SNIFF_BYTES - 4:  # cut short: its last line may end inside a number
            text = text.rsplit("\n", 1)[0]
        n = dota_line(text)
        if n is not None:
            return r, n
    return None


def tfrecord_file(rels: dict[str, Path]) -> str | None:
    return next((r for r in sorted(rels) if r.lower().endswith(TFRECORD_SUFFIXES) or ".tfrecord-" in r.lower()),
                None)


def unsupported(rels: dict[str, Path], skip_txt: tuple[str, ...] = ()) -> dict[str, str]:
    """``{format refused by name: what shows it}`` for LabelMe XML and DOTA lines in the tree."""
    out: dict[str, str] = {}
    labelme = xml_kinds(rels).get(LABELME_XML)
    if labelme:
        out[LABELME_XML] = f"{labelme}: <annotation> whose <object> holds <polygon><pt>"
    dota = dota_file(rels, skip_txt)
    if dota:
        out[DOTA] = f"{dota[0]} line {dota[1]}: eight corner coordinates and a class name"
    return out


def refusal(root: Path, name: str, evidence: str) -> InputError:
    """The one error line for a tree in a format refused by name."""
    return InputError(f"{root}: {name}: not supported ({evidence}); {ADVICE[name]}")


def refuse_unsupported(root: Path, rels: dict[str, Path], skip_txt: tuple[str, ...] = ()) -> None:
    """Raise ``refusal`` for the first format refused by name that the tree shows."""
    for name, evidence in unsupported(rels, skip_txt).items():
        raise refusal(root, name, evidence)
