"""COCO instances JSON: ``images``, ``annotations``, ``categories`` in one file.

``bbox`` is ``[x, y, w, h]`` in pixels (top-left corner); polygon ``segmentation``
lists become polygon parts (the box is then derived from them after clipping).
RLE segmentations (compressed string or counts list) are decoded and traced into
polygon parts like labelme masks (``masks.py``); ``iscrowd`` regions are reported as
``crowd-region`` (they mark areas to ignore, not instances). Duplicate category
names (datumaro #1160) map to one class and are noted; an annotation naming an
unknown image or category id is reported with its index in ``annotations``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Iterator

from pipeline.ingest.candidate import AnnotationError, Candidate, Parsed, RawObject, problem
from pipeline.ingest.masks import MaskError
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import json_documents, list_files
from pipeline.record import Rejected


def is_coco(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("images"), list) and "annotations" in obj


def parse_coco(obj) -> tuple[list[tuple[str, Parsed | AnnotationError]], list[Rejected]]:
    """Per image ``(file_name, Parsed)`` and the file's problems (index into ``annotations``)."""
    if not is_coco(obj):
        raise AnnotationError("not-coco", "expected an object with `images` and `annotations`")
    cats: dict = {}
    notes: list[str] = []
    seen_names: dict[str, object] = {}
    for c in obj.get("categories") or []:
        name = str(c.get("name", ""))
        if name in seen_names:
            notes.append(f"coco-duplicate-category:{name}")
        seen_names.setdefault(name, c.get("id"))
        cats[c.get("id")] = name
    problems: list[Rejected] = []
    images: dict = {}
    order = []
    for k, im in enumerate(obj["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            problems.append(problem("bad-image-entry", "image needs id and file_name", k))
            continue
        if im["id"] in images:
            problems.append(problem("duplicate-image-id", f"image id {im['id']} appears twice", k))
            continue
        images[im["id"]] = im
        order.append(im["id"])
    objs: dict = defaultdict(list)
    for i, a in enumerate(obj.get("annotations") or []):
        if not isinstance(a, dict) or a.get("image_id") not in images:
            problems.append(problem("annotation-without-image", f"image_id {a.get('image_id') if isinstance(a, dict) else a!r} unknown", i))
            continue
        if a.get("category_id") not in cats:
            problems.append(problem("unknown-category-id", f"category_id {a.get('category_id')!r} not in categories", i))
            continue
        if a.get("iscrowd"):
            problems.append(problem("crowd-region", "iscrowd annotation: a region to ignore, not imported", i))
            continue
        label = cats[a["category_id"]]
        seg = a.get("segmentation")
        try:
            if isinstance(seg, list) and seg:
                parts = tuple(tuple(float(v) for v in part) for part in seg)
                objs[a["image_id"]].append(RawObject(label, None, parts, index=i))
                continue
            if isinstance(seg, dict) and "counts" in seg:
                objs[a["image_id"]].append(_rle_object(label, seg, images[a["image_id"]], i))
                continue
            x, y, w, h = (float(v) for v in a["bbox"])
        except MaskError as err:
            problems.append(problem("bad-rle", str(err), i))
            continue
        except (KeyError, TypeError, ValueError):
            problems.append(problem("bad-annotation", "needs bbox [x, y, w, h] or polygon segmentation", i))
            continue
        objs[a["image_id"]].append(RawObject(label, (x, y, x + w, y + h), index=i))
    out: list[tuple[str, Parsed | AnnotationError]] = []
    for iid in order:
        im = images[iid]
        w, h = im.get("width"), im.get("height")
        size = (int(w), int(h)) if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0 else None
        note = tuple(notes)
        out.append((im["file_name"], Parsed(objects=tuple(objs[iid]), image=im["file_name"], size=size, notes=note)))
    return out, problems


def _rle_object(label: str, seg: dict, image: dict, index: int) -> RawObject:
    """An RLE segmentation as polygon parts; its size must be the image entry's."""
    from pipeline.ingest.masks import mask_polygons, rle_to_mask

    mask = rle_to_mask(seg)
    h, w = mask.shape
    if (image.get("height"), image.get("width")) not in ((None, None), (h, w)):
        raise MaskError(f"RLE size {h}x{w} differs from the image entry's "
                        f"{image.get('height')}x{image.get('width')} (height x width)")
    parts = mask_polygons(mask)
    if not parts:
        raise MaskError("RLE mask is empty")
    return RawObject(label, None, parts, index=index)


def read_coco(root: Path, keep_background: bool = True, prefix: str = "") -> Iterator[Candidate | Rejected]:
    """Every ``*.json`` holding ``images`` and ``annotations`` is a COCO file."""
    root = Path(root)
    files = list_files(root)
    entries, ann_files = [], set()
    for r, obj, error in json_documents(root, files):
        if obj is None:
            ann_files.add(r)
            yield Rejected(path=r, reason="malformed-json", detail=error, source=str(root))
            continue
        if not is_coco(obj):
            continue  # an ordinary file: quarantined as not-an-image
        ann_files.add(r)
        per_image, problems = parse_coco(obj)
        for p in problems:
            yield Rejected(path=r, reason=p.reason, detail=p.detail, source=str(root), index=p.index)
        base = str(PurePosixPath(r).parent)
        for k, (name, parsed) in enumerate(per_image):
            refs = (name, "images/" + name, "../images/" + name)
            entries.append(Entry(ann=r, parsed=parsed, refs=refs, base=base, index=k))
    yield from assemble(root, "coco", files, entries, keep_background, prefix, annotation_files=ann_files)
