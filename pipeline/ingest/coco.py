"""COCO instances JSON: ``images``, ``annotations``, ``categories`` in one file.

``bbox`` is ``[x, y, w, h]`` in pixels (top-left corner); polygon ``segmentation``
lists become polygon parts (the box is then derived from them after clipping).
RLE segmentations (compressed string or counts list) are decoded and traced into
polygon parts like labelme masks (``masks.py``); ``iscrowd`` regions are reported as
``crowd-region`` (they mark areas to ignore, not instances). Duplicate category
names (datumaro #1160) map to one class and are noted; an annotation naming an
unknown image or category id is reported with its index in ``annotations``.

Types are checked, never assumed: ids are integers or strings, a category needs
a non-empty ``name`` (``bad-category``), sizes are whole numbers, a ``bbox`` is
four numbers, a polygon part has an even number of coordinates (``bad-annotation``
naming the part), and an RLE's ``size`` must equal its image entry's before it is
decoded (``bad-rle``). A refused ``images`` entry quarantines its image as
``annotation-unusable``.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.core.errors import InputError
from pipeline.ingest.candidate import (CROWD_REGION, AnnotationError, Candidate, ClassOrder, Layout, Parsed,
                                       RawObject, Tally, guarded, located, problem)
from pipeline.ingest.masks import MaskError
from pipeline.ingest.numbers import json_number, json_size, shown
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import SPLIT_NAMES, ReadLimits, hidden_rows, json_documents, normalize_ref, walk
from pipeline.record import Rejected


MAX_SIDE = 1 << 20  # largest image side an entry may declare
ORPHAN = "annotation-without-image"  # an annotation whose image_id no `images` entry has


def is_coco(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("images"), list) and "annotations" in obj


def _id(value) -> int | str:
    """A COCO id: an integer or a string (lists, floats and booleans are not ids)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"id {shown(value)} is not an integer or a string")
    return value


def _categories(raw) -> tuple[dict, list[str], list[Rejected]]:
    """``{id: name}``, notes and problems (index into ``categories``)."""
    cats: dict = {}
    notes: list[str] = []
    problems: list[Rejected] = []
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise AnnotationError("not-coco", f"`categories` is {shown(raw)}, not a list")
    seen_names: set[str] = set()
    for k, c in enumerate(raw):
        try:
            if not isinstance(c, dict):
                raise ValueError(f"category {shown(c)} is not an object")
            cid = _id(c.get("id"))
            name = c.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"category {shown(cid)} has the name {shown(name)}, not a non-empty string")
        except ValueError as err:
            problems.append(problem("bad-category", str(err), k))
            continue
        if cid in cats:
            problems.append(problem("bad-category", f"category id {shown(cid)} appears twice", k))
            continue
        if name in seen_names:
            notes.append(f"coco-duplicate-category:{name}")
        seen_names.add(name)
        cats[cid] = name
    return cats, notes, problems


def category_order(obj: dict) -> tuple[str, ...]:
    """The category names of a parsed COCO file by id (integer ids first, then string ids),
    each name once: the class order the file declares."""
    cats, _, _ = _categories(obj.get("categories"))
    ids = sorted(cats, key=lambda i: (isinstance(i, str), i))
    return tuple(dict.fromkeys(cats[i] for i in ids))


def _image_entry(im, max_pixels: int) -> tuple[object, str, tuple[int, int] | None]:
    """``(id, file_name, (width, height) or None)`` of an ``images`` entry; ``ValueError`` if unusable."""
    if not isinstance(im, dict) or not isinstance(im.get("file_name"), str) or not im["file_name"]:
        raise ValueError("image needs id and file_name")
    iid = _id(im.get("id"))
    w, h = im.get("width"), im.get("height")
    if w is None and h is None:
        return iid, im["file_name"], None
    size = json_size(w, "width", MAX_SIDE), json_size(h, "height", MAX_SIDE)
    if size[0] * size[1] > max_pixels:
        raise ValueError(f"declared size {size[0]}x{size[1]} exceeds ingest.max_pixels = {max_pixels}")
    return iid, im["file_name"], size


def _polygons(seg: list) -> tuple[tuple[float, ...], ...]:
    parts = []
    for k, part in enumerate(seg):
        if not isinstance(part, list):
            raise ValueError(f"segmentation part {k} is {shown(part)}, not a list of numbers")
        if len(part) % 2:
            raise ValueError(f"segmentation part {k} has an odd number of coordinates ({len(part)})")
        parts.append(tuple(json_number(v) for v in part))
    return tuple(parts)


def _bbox(a: dict) -> tuple[float, float, float, float]:
    b = a.get("bbox")
    if not isinstance(b, list) or len(b) != 4:
        raise ValueError(f"bbox {shown(b)} is not [x, y, w, h]")
    x, y, w, h = (json_number(v) for v in b)
    return (x, y, x + w, y + h)


def parse_coco(obj, max_pixels: int = ReadLimits.max_pixels
               ) -> tuple[list[tuple[str, Parsed | AnnotationError]], list[Rejected]]:
    """Per ``images`` entry ``(file_name, Parsed or its refusal)``, and the file's problems.

    A problem's index is its position in ``annotations`` (or ``categories`` for
    ``bad-category``). An annotation refused for an image the file lists is that
    image's problem (in its ``Parsed``), so an image whose every annotation was
    refused is quarantined, never taken for a background image; the file keeps the
    problems no image owns (an unknown ``image_id``, a bad category). The per-image
    list keeps the position in ``images``, so a refused entry still names its
    image, which is then quarantined (``annotation-unusable``).
    """
    if not is_coco(obj):
        raise AnnotationError("not-coco", "expected an object with `images` and `annotations`")
    cats, notes, problems = _categories(obj.get("categories"))
    images: dict = {}
    order: list[tuple[str, object]] = []  # (file_name, id or the entry's refusal)
    for k, im in enumerate(obj["images"]):
        try:
            iid, name, size = _image_entry(im, max_pixels)
        except ValueError as err:
            name = im.get("file_name") if isinstance(im, dict) and isinstance(im.get("file_name"), str) else ""
            order.append((name, AnnotationError("bad-image-entry", str(err))))
            continue
        if iid in images:
            order.append((name, AnnotationError("duplicate-image-id", f"image id {shown(iid)} appears twice")))
            continue
        images[iid] = size
        order.append((name, iid))
    objs: dict = defaultdict(list)
    refused: dict = defaultdict(list)  # image id -> its annotations' problems (the image's, not the file's)
    anns = obj.get("annotations") or []
    if not isinstance(anns, list):
        raise AnnotationError("not-coco", f"`annotations` is {shown(anns)}, not a list")
    for i, a in enumerate(anns):
        iid = a.get("image_id") if isinstance(a, dict) else None
        if not isinstance(a, dict) or isinstance(iid, (list, dict)) or iid not in images:
            problems.append(problem(ORPHAN, f"image_id {shown(iid if isinstance(a, dict) else a)} unknown", i))
            continue
        cid = a.get("category_id")
        if isinstance(cid, (list, dict)) or cid not in cats:
            refused[iid].append(problem("unknown-category-id", f"category_id {shown(cid)} not in categories", i))
            continue
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float):
            refused[iid].append(problem("bad-annotation", f"iscrowd {shown(crowd)} is not 0 or 1", i))
            continue
        if crowd:
            refused[iid].append(problem(CROWD_REGION, "iscrowd annotation: a region to ignore, not imported", i))
            continue
        label = cats[cid]
        seg = a.get("segmentation")
        try:
            if isinstance(seg, list) and seg:
                objs[iid].append(RawObject(label, None, _polygons(seg), index=i))
            elif isinstance(seg, dict) and "counts" in seg:
                objs[iid].append(_rle_object(label, seg, images[iid], i, max_pixels))
            else:
                objs[iid].append(RawObject(label, _bbox(a), index=i))
        except MaskError as err:
            refused[iid].append(problem("bad-rle", str(err), i))
        except ValueError as err:
            refused[iid].append(problem("bad-annotation", f"needs bbox [x, y, w, h] or polygon segmentation: "
                                        f"{err}", i))
    out: list[tuple[str, Parsed | AnnotationError]] = []
    for name, iid in order:
        if isinstance(iid, AnnotationError):
            out.append((name, iid))
            continue
        out.append((name, Parsed(objects=tuple(objs[iid]), problems=tuple(refused[iid]), image=name,
                                 size=images[iid], notes=tuple(notes))))
    return out, problems


def _rle_object(label: str, seg: dict, size: tuple[int, int] | None, index: int, max_pixels: int) -> RawObject:
    """An RLE segmentation as polygon parts; its size must be the image entry's.

    The declared size is compared before anything is decoded (a 185-byte RLE may
    declare 30000x30000); without an image size it must stay within ``max_pixels``.
    """
    from pipeline.ingest.masks import mask_polygons, rle_size, rle_to_mask

    h, w = rle_size(seg)
    if size is not None and (h, w) != (size[1], size[0]):
        raise MaskError(f"RLE size {h}x{w} differs from the image entry's {size[1]}x{size[0]} (height x width)")
    if h * w > max_pixels:
        raise MaskError(f"RLE size {h}x{w} exceeds ingest.max_pixels = {max_pixels}")
    parts = mask_polygons(rle_to_mask(seg))
    if not parts:
        raise MaskError("RLE mask is empty")
    return RawObject(label, None, parts, index=index)


def split_of_file(path: str) -> tuple[str | None, str]:
    """``(split or None, image folder name)`` a COCO file's name gives: ``instances_val2017.json``
    -> ``("val", "val2017")``, ``train.json`` -> ``("train", "train")``, CVAT's
    ``instances_default.json`` -> ``(None, "default")`` (its images in ``images/default/``)."""
    token = PurePosixPath(path).name[:-len(".json")].rsplit("_", 1)[-1]
    return SPLIT_NAMES.get(re.sub(r"(19|20)\d\d$", "", token.lower())), token


def image_refs(name: str, folder: str) -> tuple[str, ...]:
    """Where ``file_name`` may be, relative to the COCO file's folder, in the order tried:
    as written (tools' exports; an absolute path from another machine by its file
    name), the split's folder (``../val2017/``, the 2017 layout),
    ``images/``, ``JPEGImages/``."""
    dirs = ([f"../{folder}/", f"{folder}/", f"../images/{folder}/"] if folder else []) + [
        "images/", "../images/", "JPEGImages/", "../JPEGImages/"]
    ref = normalize_ref(name)
    if PurePosixPath(ref).is_absolute() or ref[1:2] == ":":  # C:\Users\...\x.jpg: its name, here
        ref = PurePosixPath(ref).name
    return (name,) + tuple(d + ref for d in dirs)


def read_coco(root: Path, keep_background: bool = True, prefix: str = "",
              limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    """Every ``*.json`` holding ``images`` and ``annotations`` is a COCO file; its
    ``images`` list is the index.

    When the tree holds ``instances_*.json`` (the 2017 layout), only those are read
    (``captions_``, ``person_keypoints_`` files are other tasks). Several files give
    several splits, named by the file (``instances_val2017.json`` -> val) or else by
    a split folder in the image path. ``file_name`` is resolved as ``image_refs``
    says. Only listed images are samples: every other file of the tree is
    ``unlisted`` (visualisation overlays, READMEs), unless a COCO file was refused,
    in which case unclaimed images are ``annotation-unusable`` as before.
    """
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    jsons = [f for f in found.files if f.suffix.lower() == ".json"]
    instances = [f for f in jsons if f.name.lower().startswith("instances_")]
    notes = []
    if instances:
        others = len(jsons) - len(instances)
        jsons = instances
        if others:
            notes.append(f"instances_*.json read; {others} other JSON files not read (unlisted)")
    entries, ann_files, refused_files = [], set(), []
    for r, obj, refused in json_documents(root, jsons, limits.index_bytes, "index"):
        if refused is not None:
            ann_files.add(r)
            refused_files.append(r)
            yield Rejected(path=r, reason=refused.reason, detail=refused.detail)
            continue
        if not is_coco(obj):
            continue  # an ordinary file: unlisted
        ann_files.add(r)
        got = guarded(parse_coco, obj, limits.max_pixels)
        if isinstance(got, AnnotationError):
            refused_files.append(r)
            yield Rejected(path=r, reason=got.reason, detail=got.detail)
            continue
        per_image, problems = got
        yield ClassOrder(category_order(obj), r)
        yield from located(problems, r)
        # Annotations naming no listed image are the file's own entries (bad categories are not entries).
        orphans = sum(1 for p in problems if p.reason == ORPHAN)
        yield Tally(refused=orphans)
        base = str(PurePosixPath(r).parent)
        split, folder = split_of_file(r)
        n = len(per_image)
        notes.append(f"{r}: {n} image{'' if n == 1 else 's'}, split {split or 'from the image folders'}")
        for k, (name, parsed) in enumerate(per_image):
            refs = image_refs(name, folder) if name else ()
            where = ", ".join(dict.fromkeys(
                d + "/" for ref in refs[1:] for d in [os.path.dirname(os.path.normpath(os.path.join(base, ref)))]
                if d and not d.startswith("..")))
            entries.append(Entry(ann=r, parsed=parsed, refs=refs, base=base, index=k, split=split,
                                 missing=f"file_name {name!r} not found beside {r} nor in {where}"))
    if not ann_files:
        raise InputError(f"{root}: no COCO file found (a *.json with `images` and `annotations`); "
                         "is this the right format? --format auto detects it")
    named = {e.split: e.ann for e in entries if e.split}
    yield Layout("coco", tuple(notes), tuple(sorted(named.items())))
    yield from assemble(root, "coco", found.files, entries, keep_background, prefix, annotation_files=ann_files,
                        refused=tuple(refused_files), unlisted=lambda r: True)
