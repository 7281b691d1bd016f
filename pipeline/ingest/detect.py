"""``--format auto``: which reader a tree needs, from its shape.

Only directory listings and the first bytes of a few files are looked at (through
the guarded reader, so a FIFO named ``x.xml`` cannot block detection). The
evidence per format:

* ``voc``: a folder holding ``Annotations/`` and ``JPEGImages/`` (devkit), or XML
  files whose root is ``<annotation>`` (labelImg's flat layout);
* ``coco``: a JSON object with an ``"images"`` key;
* ``yolo``: ``data.yaml`` (``data.yml``, ``dataset.yaml``) at the root, or ``.txt``
  label files paired with images (beside them, or ``labels/`` mirroring ``images/``);
* ``labelme``: a JSON object with a ``"shapes"`` key;
* ``createml``: a JSON list;
* ``imagefolder``: none of the above, and images in the tree.

Exactly one annotated format found is the answer; none gives ImageFolder; several
is an error that lists what was found, with examples, so the user names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.errors import InputError
from pipeline.ingest.tree import IMAGE_EXTS, rel, walk
from pipeline.inputfile import InputRefused, read_head

SNIFF_BYTES = 64 * 1024  # COCO files put `images` after `info`, `licenses`, `categories`: a few KiB
SNIFF_FILES = 20  # files of one kind looked into; the first that matches settles it
ORDER = ("voc", "coco", "yolo", "labelme", "createml")


@dataclass(frozen=True)
class Detected:
    format: str
    evidence: str  # what settled it, for the report


def _head(path: Path) -> bytes:
    try:
        return read_head(path, SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
    except InputRefused:
        return b""


def _json_kind(head: bytes) -> str | None:
    if head.startswith(b"["):
        return "createml"
    if head.startswith(b"{"):
        if b'"images"' in head:
            return "coco"
        if b'"shapes"' in head:
            return "labelme"
    return None


def evidence(root: Path) -> dict[str, list[str]]:
    """``{format: [what shows it, ...]}`` for every annotated format seen in the tree."""
    from pipeline.ingest.voc import devkit_roots
    from pipeline.ingest.yolo import YAML_NAMES, label_paths

    found = walk(root)
    rels = {rel(f, root): f for f in found.files}
    out: dict[str, list[str]] = {}
    for d in devkit_roots(rels):
        out.setdefault("voc", []).append(f"VOC devkit {d or '.'}/ (Annotations/, JPEGImages/)")
    xmls = [r for r in sorted(rels) if r.lower().endswith(".xml")]
    if "voc" not in out:
        hit = next((r for r in xmls[:SNIFF_FILES] if b"<annotation" in _head(rels[r])), None)
        if hit:
            out["voc"] = [f"VOC XML {hit} ({len(xmls)} .xml files)"]
    seen: dict[str, str] = {}
    jsons = [r for r in sorted(rels) if r.lower().endswith(".json")]
    for r in jsons[:SNIFF_FILES]:
        kind = _json_kind(_head(rels[r]))
        if kind and kind not in seen:
            seen[kind] = r
    for kind, r in seen.items():
        out.setdefault(kind, []).append(f"{kind} JSON {r} ({len(jsons)} .json files)")
    yaml = next((n for n in YAML_NAMES if n in rels), None)
    if yaml:
        out.setdefault("yolo", []).append(f"Ultralytics {yaml}")
    else:
        txts = {r for r in rels if r.endswith(".txt")}
        pairs = [r for r in sorted(rels) if PurePosixPath(r).suffix.lower() in IMAGE_EXTS
                 and any(c in txts for c in label_paths(r))]
        if pairs:
            out.setdefault("yolo", []).append(f"YOLO label files ({len(pairs)} images with a .txt, e.g. {pairs[0]})")
    return out


def detect_format(root: Path) -> Detected:
    """The one format the tree shows; ``InputError`` naming what was found when ambiguous or empty."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source directory not found")
    ev = evidence(root)
    kinds = [k for k in ORDER if k in ev]
    if len(kinds) == 1:
        return Detected(kinds[0], "; ".join(ev[kinds[0]]))
    if kinds:
        listed = "; ".join(f"{k}: {', '.join(ev[k])}" for k in kinds)
        raise InputError(f"{root}: cannot tell the format, the tree looks like {' and '.join(kinds)} "
                         f"({listed}); name one with --format (or ingest.sources[].format)")
    images = sum(1 for f in walk(root).files if f.suffix.lower() in IMAGE_EXTS)
    if not images:
        raise InputError(f"{root}: no images and no annotation files found; nothing to ingest")
    return Detected("imagefolder", f"no annotation files; {images} images")
