"""Health report of a canonical dataset: what ``pipeline stats`` prints.

Counts samples per split and class, objects per class, image sizes and aspect
ratios, boxes per image, the class imbalance ratio (largest / smallest class),
duplicate groups and quarantine counts by reason, plus what ingest noted
(clipped objects, size mismatches, EXIF transposes). ``compute`` returns plain
data; ``--json`` prints it as one object; the ingest DVC stage writes it as a
metrics file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.record import Dataset, read_duplicate_groups, read_report

SMALL_AREA = 32 * 32  # pixels: COCO's small-object threshold
CONFLICT_EXAMPLES = 3  # duplicate groups under several class labels shown by name


def duplicate_groups(ds: Dataset) -> list[dict]:
    """The groups of ``duplicates.json`` (ingest's), or [] when the dataset has none."""
    return read_duplicate_groups(ds.root) if ds.root is not None else []


def duplicate_summary(groups: list[dict]) -> dict:
    """Counts of the duplicate groups, and the first groups whose members carry different class
    labels (the same picture filed under two classes: label noise to look at)."""
    conflicts = [g for g in groups if g.get("labels")]
    return {"groups": len(groups), "exact": sum(1 for g in groups if g["kind"] == "exact"),
            "near": sum(1 for g in groups if g["kind"] != "exact"), "samples": sum(len(g["ids"]) for g in groups),
            "label_conflicts": len(conflicts),
            "label_conflict_examples": [{"ids": g["ids"], "labels": g["labels"]}
                                        for g in conflicts[:CONFLICT_EXAMPLES]]}


def _summary(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))]  # noqa: E731
    return {"min": v[0], "median": pick(0.5), "max": v[-1], "mean": round(sum(v) / len(v), 4)}


def compute(ds: Dataset, assignment: dict[str, str] | None = None) -> dict:
    """The health report of ``ds``; splits from ``assignment`` when given, else as ingested."""
    split_of = lambda s: (assignment or {}).get(s.id) or s.split or "unassigned"  # noqa: E731
    classes = Counter(s.label for s in ds.samples if s.label is not None)
    objects = Counter(o.label for s in ds.samples for o in s.objects)
    per_class = classes if classes else objects
    counts = [per_class.get(c, 0) for c in ds.classes] or list(per_class.values())
    nonzero = [c for c in counts if c]
    notes = Counter(n.split(":")[0] for s in ds.samples for n in s.notes)
    clipped = sum(int(n.split(":")[1]) for s in ds.samples for n in s.notes if n.startswith("clipped:"))
    dups = duplicate_summary(duplicate_groups(ds))
    report = read_report(ds.root) if ds.root is not None else {}
    files_q = [r for r in ds.quarantine if r.index is None]
    splits = Counter(split_of(s) for s in ds.samples)
    boxes = [(o.box[2] - o.box[0], o.box[3] - o.box[1]) for s in ds.samples for o in s.objects]
    out = {
        "samples": len(ds.samples),
        "kind": ds.kind,
        "classes": {c: per_class.get(c, 0) for c in ds.classes},
        "objects": sum(objects.values()),
        "objects_per_class": dict(sorted(objects.items())),
        "splits": dict(sorted(splits.items())),
        "samples_per_split_and_class": {
            sp: dict(sorted(Counter(s.label or "" for s in ds.samples if split_of(s) == sp).items()))
            for sp in sorted(splits)},
        "imbalance_ratio": round(max(nonzero) / min(nonzero), 4) if nonzero else None,
        "image_width": _summary([s.width for s in ds.samples]),
        "image_height": _summary([s.height for s in ds.samples]),
        "aspect_ratio": _summary([round(s.width / s.height, 4) for s in ds.samples]),
        "boxes_per_image": _summary([len(s.objects) for s in ds.samples]),
        "objects_per_split_and_class": {
            sp: dict(sorted(Counter(o.label for s in ds.samples if split_of(s) == sp for o in s.objects).items()))
            for sp in sorted(splits)} if boxes else {},
        "box_width": _summary([round(w, 3) for w, _ in boxes]),
        "box_height": _summary([round(h, 3) for _, h in boxes]),
        "box_aspect": _summary([round(w / h, 4) for w, h in boxes if h > 0]),
        # COCO's "small": under 32x32 pixels of area, where detectors struggle most.
        "small_objects_share": round(sum(1 for w, h in boxes if w * h < SMALL_AREA) / len(boxes), 4) if boxes else None,
        "background_images": sum(1 for s in ds.samples if not s.objects and s.label is None),
        "duplicate_groups": dups["groups"],
        "duplicate_samples": dups["samples"],
        "duplicate_label_conflicts": dups["label_conflicts"],
        "quarantined": len(files_q),
        "quarantined_by_reason": dict(sorted(Counter(r.reason for r in files_q).items())),
        "rejected_objects": len(ds.quarantine) - len(files_q),
        "rejected_objects_by_reason": dict(sorted(Counter(r.reason for r in ds.quarantine
                                                          if r.index is not None).items())),
        "clipped_objects": clipped,
        "notes": dict(sorted(notes.items())),
        "class_map": {k: report.get("class_map", {}).get(k) for k in ("unknown", "unused", "case_collisions")},
    }
    tiling = _tiling(report, ds)
    if tiling is not None:  # only a tiled dataset has the key: other reports keep their bytes
        out["tiling"] = tiling
    return out


def _tiling(report: dict, ds: Dataset) -> dict | None:
    """Ingest's tiling counts (``report.json`` ``tiling``), or None when it did not tile; the
    clipped pieces counted from the tiles' notes (``tile-clipped:N``)."""
    t = report.get("tiling")
    if not isinstance(t, dict):
        return None
    pieces = sum(int(n.split(":")[1]) for s in ds.samples for n in s.notes if n.startswith("tile-clipped:"))
    return {**t, "tile_objects_clipped": pieces}


def render(stats: dict) -> str:
    """A short human-readable report."""
    lines = [f"samples: {stats['samples']} ({stats['kind']}), objects: {stats['objects']}"]
    lines.append("splits: " + ", ".join(f"{k} {v}" for k, v in stats["splits"].items()))
    lines.append("classes: " + ", ".join(f"{k} {v}" for k, v in stats["classes"].items()))
    if stats["objects_per_class"]:
        lines.append("objects per class: " + ", ".join(f"{k} {v}" for k, v in stats["objects_per_class"].items()))
    lines.append(f"imbalance ratio: {stats['imbalance_ratio']}")
    for key in ("image_width", "image_height", "aspect_ratio", "boxes_per_image", "box_width", "box_height",
                "box_aspect"):
        if stats[key]:
            lines.append(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in stats[key].items()))
    if stats.get("small_objects_share") is not None:
        lines.append(f"small objects (< 32x32 px): {stats['small_objects_share']:.1%}")
    for split, per in stats.get("objects_per_split_and_class", {}).items():
        lines.append(f"objects in {split}: " + ", ".join(f"{k} {v}" for k, v in per.items()))
    conflicts = stats.get("duplicate_label_conflicts", 0)
    lines.append(f"duplicate groups: {stats['duplicate_groups']} ({stats['duplicate_samples']} samples"
                 + (f"; {conflicts} with conflicting labels" if conflicts else "") + ")")
    lines.append(f"quarantined: {stats['quarantined']} "
                 + ", ".join(f"{k} {v}" for k, v in stats["quarantined_by_reason"].items()))
    lines.append(f"rejected objects: {stats['rejected_objects']} "
                 + ", ".join(f"{k} {v}" for k, v in stats["rejected_objects_by_reason"].items()))
    lines.append(f"clipped objects: {stats['clipped_objects']}")
    t = stats.get("tiling")
    if t:
        lines.append(f"tiles: {t['tiles']} of {t['size']}x{t['size']} (overlap {t['overlap']}) from "
                     f"{t['images_tiled']} images, {t['images_whole']} kept whole; objects clipped by tile edges: "
                     f"{t['tile_objects_clipped']} of {t['tile_objects']} in tiles; of the {t['objects']} objects of "
                     f"the cut images {t['objects_whole_in_a_tile']} whole in a tile, {t['objects_only_in_pieces']} "
                     f"only in clipped pieces, {t['objects_in_no_tile']} in none")
    cm = stats["class_map"]
    if any(cm.values()):
        lines.append(f"class map: unknown {_names(cm['unknown'])}, unused {_names(cm['unused'])}, "
                     f"case collisions {_names(cm['case_collisions'])}")
    return "\n".join(lines)


def _names(value) -> str:
    """Class names of the class map, or ``none``: a dict of name -> count, a list of names,
    or a list of groups (names differing only in case) shown as ``Cat/cat``."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return ", ".join("/".join(v) if isinstance(v, list) else str(v) for v in value or ()) or "none"


def write_stats(ds: Dataset, path: Path) -> dict:
    """Write the report as a JSON metrics file (atomically; never inside the dataset) and return it."""
    from pipeline.core.atomic import atomic_write_text

    stats = compute(ds)
    atomic_write_text(Path(path), json.dumps(stats, indent=1, sort_keys=True) + "\n", inputs=[ds.root])
    return stats
