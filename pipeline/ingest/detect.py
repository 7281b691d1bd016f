"""``--format auto``: which reader a tree needs, from its shape.

Only directory listings and the first bytes of a few files are looked at
(``sniff.py``, through the guarded reader, so a FIFO named ``x.xml`` cannot block
detection). The evidence per format:

* ``voc``: a folder holding ``Annotations/`` and ``JPEGImages/`` or ``images/``
  (devkit), or XML files whose parsed root is ``<annotation>`` (labelImg's flat layout);
* ``cvat``: XML files whose parsed root is ``<annotations>`` (CVAT for images);
* ``coco``: a JSON object with an ``"images"`` key;
* ``yolo``: ``data.yaml`` (``data.yml``, ``dataset.yaml``) or Darknet's ``obj.data`` at
  the root, or ``.txt`` label files paired with images (beside them, or ``labels/``
  mirroring ``images/``);
* ``labelme``: a JSON object with a ``"shapes"`` key;
* ``createml``: a JSON list;
* ``imagefolder``: none of the above, and images in the tree.

A tree showing a format refused by name (MIT LabelMe XML, DOTA oriented boxes;
``sniff.py``) is an error saying so, whatever else it holds; TFRecord files are
one when nothing else is annotated. Otherwise exactly one annotated format found
is the answer; none gives ImageFolder; several is an error that lists what was
found, with examples, so the user names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.core.errors import InputError
from pipeline.core.formats import INGEST_FORMATS
from pipeline.ingest.sniff import (SNIFF_FILES, TFRECORD, head, refusal, refuse_unsupported, tfrecord_file,
                                   xml_kinds)
from pipeline.ingest.tree import IMAGE_EXTS, rel, walk

ORDER = tuple(f for f in INGEST_FORMATS if f != "imagefolder")  # annotated formats, in the order listed


@dataclass(frozen=True)
class Detected:
    format: str
    evidence: str  # what settled it, for the report


def _json_kind(head: bytes) -> str | None:
    if head.startswith(b"["):
        return "createml"
    if head.startswith(b"{"):
        if b'"images"' in head:
            return "coco"
        if b'"shapes"' in head:
            return "labelme"
    return None


def evidence(root: Path, rels: dict[str, Path] | None = None) -> dict[str, list[str]]:
    """``{format: [what shows it, ...]}`` for every annotated format seen in the tree."""
    from pipeline.ingest.darknet import DATA_FILE
    from pipeline.ingest.voc import devkit_roots
    from pipeline.ingest.yolo import YAML_NAMES, label_paths

    if rels is None:
        rels = {rel(f, root): f for f in walk(root).files}
    out: dict[str, list[str]] = {}
    for d in devkit_roots(rels):
        out.setdefault("voc", []).append(f"VOC devkit {d or '.'}/ (Annotations/ beside its images)")
    xmls = sum(1 for r in rels if r.lower().endswith(".xml"))
    kinds = xml_kinds(rels)
    if "voc" in kinds and "voc" not in out:
        out["voc"] = [f"VOC XML {kinds['voc']} ({xmls} .xml files)"]
    if "cvat" in kinds:
        out["cvat"] = [f"CVAT for images XML {kinds['cvat']} (root <annotations>)"]
    seen: dict[str, str] = {}
    jsons = [r for r in sorted(rels) if r.lower().endswith(".json")]
    for r in jsons[:SNIFF_FILES]:
        kind = _json_kind(head(rels[r]))
        if kind and kind not in seen:
            seen[kind] = r
    for kind, r in seen.items():
        out.setdefault(kind, []).append(f"{kind} JSON {r} ({len(jsons)} .json files)")
    yaml = next((n for n in YAML_NAMES + (DATA_FILE,) if n in rels), None)
    if yaml:
        out.setdefault("yolo", []).append(f"{'Darknet' if yaml == DATA_FILE else 'Ultralytics'} {yaml}")
    else:
        txts = {r for r in rels if r.endswith(".txt")}
        pairs = [r for r in sorted(rels) if PurePosixPath(r).suffix.lower() in IMAGE_EXTS
                 and any(c in txts for c in label_paths(r))]
        if pairs:
            out.setdefault("yolo", []).append(f"YOLO label files ({len(pairs)} images with a .txt, e.g. {pairs[0]})")
    return out


def detect_format(root: Path) -> Detected:
    """The one format the tree shows; ``InputError`` naming what was found when ambiguous,
    empty, or in a format refused by name."""
    from pipeline.ingest.yolo import AUX_NAMES

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found")
    rels = {rel(f, root): f for f in walk(root).files}
    refuse_unsupported(root, rels, AUX_NAMES)
    ev = evidence(root, rels)
    kinds = [k for k in ORDER if k in ev]
    if len(kinds) == 1:
        return Detected(kinds[0], "; ".join(ev[kinds[0]]))
    if kinds:
        listed = "; ".join(f"{k}: {', '.join(ev[k])}" for k in kinds)
        raise InputError(f"{root}: cannot tell the format, the tree looks like {' and '.join(kinds)} "
                         f"({listed}); name one with --format (or ingest.sources[].format)")
    tfrecord = tfrecord_file(rels)
    if tfrecord:
        raise refusal(root, TFRECORD, f"{tfrecord}, and no annotation format this tool reads")
    images = sum(1 for r in rels if PurePosixPath(r).suffix.lower() in IMAGE_EXTS)
    if not images:
        raise InputError(f"{root}: no images and no annotation files found; nothing to ingest")
    return Detected("imagefolder", f"no annotation files; {images} images")
