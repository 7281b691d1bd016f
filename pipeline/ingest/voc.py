"""Pascal VOC XML: labelImg's flat layout and the VOC devkit.

One XML per image. labelImg writes it beside the image (``filename`` names the
image; flat layout); the devkit keeps ``Annotations/<stem>.xml`` apart from
``JPEGImages/`` and lists the splits in ``ImageSets/Main`` (see ``read_voc``).

Coordinate convention (docs/ARCHITECTURE.md): VOC writes 1-based, inclusive pixel
indices, so ``xmin=1, xmax=W`` covers the whole width. In our continuous
coordinates (pixel i spans [i, i+1)) that is ``(xmin - 1, ymin - 1, xmax, ymax)``;
export writes the inverse with integers. Floats ("91.0") are accepted, parsed
strictly (``numbers.py``: no ``1_0``, full-width digits, non-breaking spaces or
``nan``); missing or empty ``difficult``/``truncated``/``pose`` and extra tags
(``occluded``, ``part``, ``actions``) are ignored; ``part`` boxes never become
objects. MIT LabelMe's XML shares the root ``<annotation>`` but holds polygons as
``<object><polygon><pt>``: a file like that is refused (``labelme-xml``), and a
tree of them by name (``sniff.py``).

Security: the XML is read by ``safexml.parse_xml`` (any DOCTYPE or ENTITY
declaration refused before the tree is built), so XXE and billion-laughs files
are quarantined as ``unsafe-xml`` and nothing is fetched or expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.core.errors import InputError
from pipeline.ingest.candidate import AnnotationError, Candidate, Layout, Parsed, RawObject, guarded, problem
from pipeline.ingest.numbers import ASCII_SPACE, parse_number, shown
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.safexml import parse_xml
from pipeline.ingest.sniff import refuse_unsupported, xml_kinds
from pipeline.ingest.tree import ImageIndex, ReadLimits, hidden_rows, normalize_ref, rel, walk
from pipeline.core.inputfile import InputRefused, decode_text, read_bytes
from pipeline.record import Rejected

MAX_SIDE = 1 << 20  # largest image side a <size> may declare; larger is ignored like 0


def _text(el, tag: str) -> str:
    child = el.find(tag)
    return (child.text or "").strip(ASCII_SPACE) if child is not None else ""


def _int(text: str) -> int | None:
    try:
        v = parse_number(text)
    except ValueError:
        return None
    return int(v) if v.is_integer() and 0 < v <= MAX_SIDE else None


def parse_voc(data: bytes | str) -> Parsed:
    """Parse one VOC annotation; raise AnnotationError when the file is unusable."""
    root = parse_xml(data.encode("utf-8") if isinstance(data, str) else data)
    if root.tag != "annotation":
        raise AnnotationError("not-voc", f"root element is <{root.tag}>, expected <annotation>")
    if root.find("object/polygon/pt") is not None and root.find("object/bndbox") is None:
        raise AnnotationError("labelme-xml", "MIT LabelMe XML (<object><polygon><pt>): not supported; "
                              "convert it to labelme JSON or COCO first")
    size_el = root.find("size")
    size = None
    if size_el is not None:
        w, h = _int(_text(size_el, "width")), _int(_text(size_el, "height"))
        size = (w, h) if w and h else None
    objects, problems = [], []
    for i, obj in enumerate(root.findall("object")):
        name = _text(obj, "name").strip()
        box = obj.find("bndbox")
        if not name:
            problems.append(problem("missing-label", "<object> without <name>", i))
            continue
        if box is None:
            problems.append(problem("missing-box", f"{name!r}: <object> without <bndbox>", i))
            continue
        try:
            xmin, ymin, xmax, ymax = (parse_number(_text(box, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as err:
            problems.append(problem("bad-coordinate", f"{shown(name)}: bndbox {err}", i))
            continue
        objects.append(RawObject(name, (xmin - 1.0, ymin - 1.0, xmax, ymax), index=i))
    return Parsed(objects=tuple(objects), problems=tuple(problems),
                  image=_text(root, "filename") or None, size=size)


SPLIT_LISTS = ("train", "val", "trainval", "test")  # ImageSets/Main/<name>.txt; per-class lists are not read
SPLIT_PRECEDENCE = ("test", "val", "train")  # a stem listed twice goes to the evaluation split (no leakage)


IMAGE_DIRS = ("JPEGImages", "images")  # a devkit's image folder, in the order looked for (any case)


def devkit_roots(rels) -> list[str]:
    """Folders (root-relative, ``""`` for the root) holding ``Annotations/*.xml`` beside
    ``JPEGImages/`` (or ``images/``, as many exports name it)."""
    image_dirs = {d.lower() for d in IMAGE_DIRS}
    has: dict[str, set[str]] = {}
    for r in rels:
        parts = PurePosixPath(r).parts
        if len(parts) < 2:
            continue
        d, parent = parts[-2].lower(), "/".join(parts[:-2])
        if d in image_dirs:
            has.setdefault(parent, set()).add("images")
        elif d == "annotations" and parts[-1].lower().endswith(".xml"):
            has.setdefault(parent, set()).add(d)
    return sorted(k for k, v in has.items() if v == {"annotations", "images"})


def parse_image_set(text: str) -> list[tuple[int, str]]:
    """``(line number, stem)`` of an ``ImageSets/Main`` list: one stem a line (extra columns
    ignored); a line starting with ``#`` is a comment, never a stem."""
    out = []
    for n, line in enumerate(text.split("\n"), start=1):
        tokens = line.split()
        if tokens and not tokens[0].startswith("#"):
            out.append((n, tokens[0]))
    return out


def pick_split(splits: set[str]) -> tuple[str, tuple[str, ...]]:
    """The split of an image several lists name, and a note saying so."""
    split = next(s for s in SPLIT_PRECEDENCE if s in splits)
    return split, (f"listed-in:{','.join(sorted(splits))}",) if len(splits) > 1 else ()


def _child(rels, d: str, name: str) -> str:
    """The real spelling of folder ``d/name`` (case-insensitive), from the files under it."""
    want = (d + "/" + name if d else name).lower()
    for r in rels:
        head = r[:len(want)]
        if head.lower() == want and r[len(want):len(want) + 1] == "/":
            return head
    return d + "/" + name if d else name


def _image_sets(d: str, by_rel: dict, limits: ReadLimits):
    """``({stem: {split}}, list files read, rows)`` from ``<d>/ImageSets/Main/{train,val,trainval,test}.txt``."""
    main = _child(by_rel, _child(by_rel, d, "ImageSets"), "Main")
    listed: dict[str, set[str]] = {}
    where: dict[str, tuple[str, int]] = {}
    read, rows = set(), []
    lists = {name: f"{main}/{name}.txt" for name in SPLIT_LISTS if f"{main}/{name}.txt" in by_rel}
    for name, r in lists.items():
        read.add(r)
        try:
            lines = parse_image_set(decode_text(read_bytes(by_rel[r], "index", limits.index_bytes)))
        except InputRefused as err:
            rows.append(Rejected(path=r, reason=err.reason, detail=err.detail))
            continue
        split = _list_split(r)
        for n, stem in lines:
            if name == "trainval" and stem in listed:
                continue  # train/val lists win over trainval
            listed.setdefault(stem, set()).add(split)
            where.setdefault(stem, (r, n))
    return listed, where, read, rows


def read_voc(root: Path, keep_background: bool = True, prefix: str = "",
             limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    """labelImg's flat layout (each ``*.xml`` beside its image), or VOC devkit(s).

    A devkit (``Annotations/``, ``JPEGImages/``) resolves each ``<filename>`` in its
    ``JPEGImages/`` (case-insensitively, extension optional); its
    ``ImageSets/Main/{train,val,trainval,test}.txt`` lists, when present, give the
    splits and are the index: stems they do not list are ``unlisted``, a listed
    stem without its XML quarantines its image (``annotation-missing``). Files
    outside ``Annotations/`` and ``JPEGImages/`` (``SegmentationClass/``, ...) and
    outside every devkit are ``unlisted``.
    """
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    by_rel = {rel(f, root): f for f in found.files}
    # Other XML with the same look: LabelMe's is refused by name, CVAT's has its own reader.
    refuse_unsupported(root, by_rel)
    cvat = xml_kinds(by_rel).get("cvat")
    if cvat:
        raise InputError(f"{root}: {cvat} is CVAT for images XML (root <annotations>), not VOC; "
                         "read the tree with --format cvat")
    kits = [_read_kit(root, d, by_rel, limits) for d in devkit_roots(by_rel)]
    if not kits:
        sets = sum(1 for r in by_rel if _in_image_sets(r))
        yield Layout("voc-flat", (f"{sets} files under ImageSets/ not read (unlisted): split lists need a devkit, "
                                  "Annotations/ beside JPEGImages/ or images/",) if sets else ())
        yield from _read_flat(root, found.files, by_rel, keep_background, prefix, limits)
        return
    for kit in kits:
        yield from kit.rows
    named = {(_list_split(r), r) for kit in kits for r in kit.lists}
    yield Layout("voc-devkit", tuple(kit.note for kit in kits), tuple(sorted(named)))

    def unlisted(r: str) -> bool:
        p = PurePosixPath(r)
        kit = next((k for k in kits if str(p.parent) == k.jpeg_dir), None)
        return kit is None or (kit.listed is not None and p.stem not in kit.listed)

    yield from assemble(root, "voc", found.files, [e for k in kits for e in k.entries], keep_background, prefix,
                        annotation_files={e.ann for k in kits for e in k.entries},
                        auxiliary=set().union(*(k.aux for k in kits)), unlisted=unlisted)


@dataclass
class _Kit:
    """One devkit read: its entries, the files it read or quarantined itself, what to report."""

    jpeg_dir: str
    listed: dict[str, set[str]] | None  # stem -> splits; None without ImageSets/Main lists
    entries: list[Entry] = field(default_factory=list)
    aux: set[str] = field(default_factory=set)  # lists read, images quarantined here
    rows: list[Rejected] = field(default_factory=list)
    note: str = ""
    lists: tuple[str, ...] = ()  # the ImageSets/Main split lists found


def _list_split(r: str) -> str:
    """The split an ``ImageSets/Main`` list names: its stem, ``trainval`` read as train."""
    name = PurePosixPath(r).stem
    return "train" if name == "trainval" else name


def _image_dir(by_rel, d: str) -> str:
    """The devkit's image folder as spelled on disk: ``JPEGImages/``, else ``images/``."""
    for name in IMAGE_DIRS:
        got = _child(by_rel, d, name)
        if any(r.startswith(got + "/") for r in by_rel):
            return got
    return _child(by_rel, d, IMAGE_DIRS[0])


def _read_kit(root: Path, d: str, by_rel: dict[str, Path], limits: ReadLimits) -> _Kit:
    ann_dir, jpeg_dir = _child(by_rel, d, "Annotations"), _image_dir(by_rel, d)
    listed, where, lists, rows = _image_sets(d, by_rel, limits)
    kit = _Kit(jpeg_dir, listed if lists else None, aux=set(lists), rows=rows, lists=tuple(sorted(lists)))
    names = ", ".join(sorted(PurePosixPath(r).name for r in lists))
    kit.note = f"{d or '.'}: images in {jpeg_dir}/; " + (
        f"splits from ImageSets/Main/ {names}" if lists else "no ImageSets/Main lists: every annotation is a "
                                                             "sample, no split")
    xml_stems = set()
    for r in sorted(by_rel):
        p = PurePosixPath(r)
        if str(p.parent) != ann_dir or p.suffix.lower() != ".xml":
            continue
        xml_stems.add(p.stem)
        if lists and p.stem not in listed:
            continue  # unlisted: counted with the files nobody claims
        f = by_rel[r]
        parsed = guarded(lambda f=f: parse_voc(read_bytes(f, "annotation", limits.annotation_bytes)))
        name = PurePosixPath(normalize_ref(parsed.image)).name if isinstance(parsed, Parsed) and parsed.image else ""
        split, notes = pick_split(listed[p.stem]) if lists else (None, ())
        said = f"<filename> {name!r}" if name else "no <filename>; the stem"
        kit.entries.append(Entry(ann=r, parsed=parsed, refs=((name,) if name else ()) + (p.stem,), base=jpeg_dir,
                                 split=split, notes=notes,
                                 missing=f"{said} not found in {jpeg_dir}/ (nor {p.stem}.* there)"))
    missing = sorted(set(listed) - xml_stems)
    if missing:
        jpegs = ImageIndex(root, [f for r, f in by_rel.items() if str(PurePosixPath(r).parent) == jpeg_dir])
    for stem in missing:
        lst, n = where[stem]
        image, _ = jpegs.find(jpeg_dir, stem)
        if image is None:
            kit.rows.append(Rejected(path=lst, index=n, reason="listed-without-files",
                                     detail=f"{stem!r} is listed but neither {ann_dir}/{stem}.xml nor an image "
                                            f"{stem}.* in {jpeg_dir}/ exists"))
            continue
        kit.aux.add(image)
        kit.rows.append(Rejected(path=image, reason="annotation-missing",
                                 detail=f"listed in {lst} (line {n}) but {ann_dir}/{stem}.xml does not exist: "
                                        "its objects are unknown, so it is not a background image"))
    return kit


FLAT_IMAGE_DIRS = ("", "../images/", "../JPEGImages/", "images/", "JPEGImages/")  # from the XML's folder


def flat_refs(filename: str | None, stem: str) -> tuple[str, ...]:
    """Where a flat tree's XML may find its image, relative to the XML's folder, in order:
    beside it (labelImg), then the usual image folders beside or below that folder
    (``annotations/x.xml`` with ``images/x.jpg``); ``<filename>`` first, then the XML's stem."""
    name = PurePosixPath(normalize_ref(filename)).name if filename else ""
    refs = [filename] if filename else []
    refs += [d + n for d in FLAT_IMAGE_DIRS[1:] for n in ([name] if name else [])]
    return tuple(refs) + tuple(d + stem for d in FLAT_IMAGE_DIRS)


def _in_image_sets(r: str) -> bool:
    return any(part.lower() == "imagesets" for part in PurePosixPath(r).parts[:-1])


def _read_flat(root: Path, files: list[Path], by_rel: dict, keep_background: bool, prefix: str,
               limits: ReadLimits) -> Iterator[Candidate | Rejected]:
    """Pair each ``*.xml`` with its image (``flat_refs``). Files under ``ImageSets/`` are split
    lists of a devkit this tree does not form: counted as ``unlisted``, never read as images."""
    entries = []
    for r, f in by_rel.items():
        if f.suffix.lower() != ".xml" or _in_image_sets(r):
            continue
        base = str(PurePosixPath(r).parent)
        parsed = guarded(lambda f=f: parse_voc(read_bytes(f, "annotation", limits.annotation_bytes)))
        given = parsed.image if isinstance(parsed, Parsed) else None
        said = f"<filename> {given!r}" if given else "no <filename>; the stem"
        entries.append(Entry(ann=r, parsed=parsed, refs=flat_refs(given, PurePosixPath(r).stem), base=base,
                             missing=f"{said} not found beside {r} nor in the image folders beside it "
                                     "(../images/, ../JPEGImages/, images/, JPEGImages/)"))
    yield from assemble(root, "voc", files, entries, keep_background, prefix,
                        annotation_files={e.ann for e in entries}, unlisted=_in_image_sets)
