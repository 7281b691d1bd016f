"""What each command did: one line for people, the same facts as one JSON object for programs.

A command gathers its result as *facts*: plain data (text, numbers, booleans, and
lists and dicts of them), built here by the ``*_facts`` functions from what the
library returned. ``--json`` prints the facts as they are; the ``*_line``
functions turn them into the text a person reads: counts with thousands
separators, splits as ``train 10,400 · val 1,300 · test 1,300``, the output path
after an arrow. The CLI and the DVC stages print the same lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from pipeline.version.card import VersionCard

SEP = " · "  # between the items of a list of counts
ARROW = "→"  # what was read → where it was written


def number(n: int | float) -> str:
    """``13,000``; a float keeps up to 4 decimals."""
    return f"{n:,}" if isinstance(n, int) else f"{n:,.4f}".rstrip("0").rstrip(".")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 class``, ``3 classes``."""
    return f"{number(n)} {word if n == 1 else (words or word + 's')}"


def split_counts(counts: Mapping[str, int]) -> str:
    """``train 21 · val 6 · test 9``: train, val, test first, then the others sorted."""
    from pipeline.split import ORDER

    rank = {name: i for i, name in enumerate(ORDER)}
    names = sorted(counts, key=lambda s: (rank.get(s, len(ORDER)), s))
    return SEP.join(f"{name} {number(counts[name])}" for name in names)


def as_json(facts: Mapping[str, Any]) -> str:
    """The facts as one JSON object on one line (UTF-8 names kept as they are)."""
    return json.dumps(facts, ensure_ascii=False, sort_keys=True)


def _value(v: Any) -> str:
    """A fact's value inside a line: mappings as ``a → b`` pairs, lists joined, never a repr."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {ARROW} {_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    return number(v) if isinstance(v, (int, float)) else str(v)


# -- download ---------------------------------------------------------------------------------

def download_facts(name: str, path: Path, classes: int) -> dict:
    return {"dataset": name, "out": str(path), "classes": classes}


def download_line(f: Mapping[str, Any]) -> str:
    return f"download: {f['dataset']} ({plural(f['classes'], 'class', 'classes')}) {ARROW} {f['out']}"


def catalog_facts(catalog: Iterable) -> dict:
    return {"datasets": [{"name": i.name, "classes": i.classes, "size": i.size, "needs_network": i.needs_network,
                          "layout": i.layout, "licence": i.licence} for i in catalog]}


def catalog_lines(f: Mapping[str, Any]) -> str:
    return "\n".join(f"{d['name']:14} {d['classes']} classes, {'needs network' if d['needs_network'] else 'offline'}, "
                     f"{d['size']}\n{'':14} {d['layout']}\n{'':14} {d['licence']}" for d in f["datasets"])


# -- ingest -----------------------------------------------------------------------------------

def ingest_facts(dataset, out: Path) -> dict:
    """From the ingested ``Dataset``, its ``report.json`` and its duplicate groups (``pipeline.reports.stats``)."""
    from collections import Counter

    from pipeline.record import QUARANTINE, REPORT
    from pipeline.reports.stats import duplicate_groups, duplicate_summary

    report = json.loads((Path(out) / REPORT).read_text(encoding="utf-8"))
    files = sum(1 for r in dataset.quarantine if r.index is None)
    splits = Counter(s.split or "unassigned" for s in dataset.samples)
    return {
        "out": str(out),
        "samples": len(dataset.samples),
        "objects": sum(len(s.objects) for s in dataset.samples),
        "classes": len(dataset.classes),
        "splits": dict(sorted(splits.items())),
        "quarantined": files,
        "rejected_objects": len(dataset.quarantine) - files,
        "quarantine": str(Path(out) / QUARANTINE),
        "fates": {k: report["fates"][k] for k in ("files", "entries", "embedded_images")},
        "duplicates": duplicate_summary(duplicate_groups(dataset)),
        "loss": report.get("loss", []),
        "sources": [{k: s[k] for k in ("name", "path", "format", "layout", "unlisted", "skipped_hidden", "notes",
                                       "named_splits") if k in s}
                    | {"fates": {k: s["fates"][k] for k in ("files", "entries", "embedded_images")}}
                    for s in report["sources"]],
        **({"tiling": report["tiling"]} if "tiling" in report else {}),
    }


def _fates(fates: Mapping[str, Any]) -> str:
    """``12 files: 4 samples · 8 annotations; 9 entries: 9 objects``: the fates that are not zero."""
    def counts(kind: str, words: Mapping[str, tuple[str, str]]) -> str:
        f = fates[kind]
        parts = SEP.join(plural(f[k], *words[k]) for k in words if k != "total" and f[k])
        return f"{plural(f['total'], *words['total'])}" + (f": {parts}" if parts else "")

    line = counts("files", FILE_WORDS)
    if fates.get("embedded_images"):
        line += f" (+ {plural(fates['embedded_images'], 'image')} embedded in annotations)"
    if fates["entries"]["total"]:
        line += "; " + counts("entries", ENTRY_WORDS)
    return line


# How each fate (pipeline.ingest.fates) reads in a line: (one, many), in the report's order.
FILE_WORDS = {"total": ("file", "files"), "samples": ("sample", "samples"),
              "annotations": ("annotation", "annotations"), "indexes": ("index", "indexes"),
              "quarantined": ("quarantined", "quarantined"), "hidden": ("hidden", "hidden"),
              "unlisted": ("unlisted", "unlisted"), "ignored": ("ignored", "ignored")}
ENTRY_WORDS = {"total": ("entry", "entries"), "objects": ("object", "objects"), "labels": ("label", "labels"),
               "refused": ("refused", "refused"), "ignored": ("ignored", "ignored"),
               "with_quarantined_input": ("with a quarantined input", "with quarantined inputs")}


def _duplicates(d: Mapping[str, Any]) -> str:
    if not d["groups"]:
        return "no duplicates"
    kinds = SEP.join(plural(d[k], f"{k} group") for k in ("exact", "near") if d[k])
    return f"duplicates: {kinds}"


def ingest_lines(f: Mapping[str, Any]) -> str:
    """One line per source (the layout understood, every file and entry by fate), the summary,
    then what the user must look at: pictures under two classes, and the data lost (accepted)."""
    lines = []
    for s in f["sources"]:
        layout = f" ({s['layout']})" if s.get("layout") and s["layout"] != s["format"] else ""
        lines.append(f"source {s['name']}: {s['format']}{layout}, {_fates(s['fates'])}")
        lines += [f"  {note}" for note in s.get("notes", [])]
    what = plural(f["samples"], "sample")
    if f["objects"]:
        what += f", {plural(f['objects'], 'object')}"
    splits = f["splits"]
    given = "no splits given" if set(splits) <= {"unassigned"} else split_counts(splits)
    if f["quarantined"] or f["rejected_objects"]:
        bad = (f"{plural(f['quarantined'], 'input')} quarantined, {plural(f['rejected_objects'], 'object')} "
               f"rejected (see {f['quarantine']})")
    else:
        bad = "nothing quarantined"
    d = f["duplicates"]
    lines.append(f"ingest: {what} in {plural(f['classes'], 'class', 'classes')} {ARROW} {f['out']} "
                 f"({given}; {bad}; {_duplicates(d)})")
    if f.get("tiling"):
        t = f["tiling"]
        lines.append(f"  tiles: {plural(t['images_tiled'], 'image')} cut into {number(t['tiles'])} tiles of "
                     f"{t['size']}x{t['size']} (overlap {t['overlap']}), {plural(t['images_whole'], 'image')} kept "
                     f"whole; {number(t['tile_objects_clipped'])} objects clipped by tile edges, "
                     f"{number(t['objects_in_no_tile'])} in no tile")
    if d["label_conflicts"]:
        shown = "; ".join(f"{', '.join(g['ids'])} ({', '.join(g['labels'])})" for g in d["label_conflict_examples"])
        more = d["label_conflicts"] - len(d["label_conflict_examples"])
        lines.append(f"  {plural(d['label_conflicts'], 'picture')} filed under several classes: {shown}"
                     + (f"; {number(more)} more in duplicates.json" if more > 0 else ""))
    if f["loss"]:
        lines.append(loss_line(f["loss"], accepted=True))
    return "\n".join(lines)


REASONS_SHOWN = 3  # reasons named in a loss line, most frequent first


def _reasons(reasons: Mapping[str, int]) -> str:
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {number(v)}" for k, v in top[:REASONS_SHOWN])
    return text + (f", {len(top) - REASONS_SHOWN} more reasons" if len(top) > REASONS_SHOWN else "")


def _loss(x: Mapping[str, Any]) -> str:
    kind = x["loss"]
    if kind == "no-samples":
        return "no sample kept"
    if kind == "split-empty":
        return f"{x['source']}: split {x['split']} named by {x['named_by']} kept no sample"
    if kind == "no-objects":
        inside = (f"{plural(x['entries'], 'entry', 'entries')} in them, none an object" if x["entries"]
                  else "no entry in them")
        return f"{x['source']}: {plural(x['annotation_files'], 'annotation file')} gave no object ({inside})"
    what = "inputs quarantined" if kind == "quarantined" else "object entries refused"
    return (f"{number(x['count'])} of {number(x['of'])} {what} ({x['count'] / x['of']:.1%} > ingest.max_loss "
            f"{number(x['max_loss'])}: {_reasons(x['reasons'])})")


def loss_line(findings: Iterable[Mapping[str, Any]], accepted: bool) -> str:
    """The one line naming the data a run lost and the knob that accepts it (``pipeline.ingest.loss``)."""
    findings = list(findings)
    lost = "; ".join(_loss(x) for x in findings)
    if accepted:
        return f"warning: data lost: {lost}; accepted (ingest.on_loss: warn)"
    share = any(x["loss"] in ("quarantined", "refused") for x in findings)
    return (f"data lost: {lost}; nothing written (an earlier output is left as it was); to accept the loss, "
            f"run with --allow-loss (ingest.on_loss: warn in params.yaml)"
            f"{', or raise ingest.max_loss' if share else ''}")


# -- split ------------------------------------------------------------------------------------

def split_facts(summary: Mapping[str, Any], out: Path) -> dict:
    """``splits.json``'s summary without the per-sample assignment (that stays in the file)."""
    from pipeline.split import SPLITS_FILE

    return {"out": str(Path(out) / SPLITS_FILE), **{k: v for k, v in summary.items() if k != "assignment"}}


def split_line(f: Mapping[str, Any]) -> str:
    total = sum(f["counts"].values())
    extra = [f"seed {f['seed']}"]
    if any(f.get("carved", {}).values()):
        extra.append(f"carved from the given train split: {split_counts(f['carved'])}")
    if f.get("duplicate_groups"):
        extra.append(f"{plural(f['duplicate_groups'], 'duplicate group')} kept together")
    if f.get("moved"):
        extra.append(f"{plural(len(f['moved']), 'sample')} moved to their group's split")
    if f.get("block") is not None:
        buf = f["buffer"]
        lost = buf.get("objects_in_no_kept_tile")
        whole = "" if lost is None else f"; {lost} of them in no kept tile"
        extra.append(f"blocks of {f['block']} px; {plural(buf['tiles'], 'tile')} ({plural(buf['objects'], 'object')}"
                     f"{whole}) left out as the buffer between splits")
    return f"split: {plural(total, 'sample')} {ARROW} {f['out']} ({split_counts(f['counts'])}; {'; '.join(extra)})"


# -- augment ----------------------------------------------------------------------------------

def augment_facts(card: "VersionCard", out: Path) -> dict:
    """From the version's card."""
    splits = {k: v.samples for k, v in card.splits.items()}
    return {"out": str(out), "samples": sum(splits.values()), "splits": splits, "classes": len(card.classes),
            "kind": card.kind, "image_shape": list(card.image_shape), "storage": card.storage,
            "copies": card.params["copies"], "mixed": sum(v.mixed for v in card.splits.values())}


def augment_line(f: Mapping[str, Any]) -> str:
    dims = f["image_shape"] or [None, None, None]
    # A version that keeps each image's own size records its height and width as null.
    shape = ("x".join(str(v) for v in dims) if None not in dims else
             "each image at its own size" + (f", {plural(dims[-1], 'channel')}" if dims[-1] else ""))
    extra = [shape, f"{plural(f['copies'], 'augmented copy', 'augmented copies')} per train image", f["storage"]]
    if f["mixed"]:
        extra.append(f"{number(f['mixed'])} mixed")
    return (f"augment: {plural(f['samples'], 'sample')} {ARROW} {f['out']} "
            f"({split_counts(f['splits'])}; {', '.join(extra)})")


def preview_facts(result, command: str) -> dict:
    return {"logdir": str(result.logdir), "images": result.images, "samples": result.samples, "open": command}


def preview_line(f: Mapping[str, Any]) -> str:
    return (f"preview: {plural(f['images'], 'image')} of {plural(f['samples'], 'sample')} {ARROW} {f['logdir']}; "
            f"open with\n  {f['open']}")


# -- export -----------------------------------------------------------------------------------

# What a writer counted, as a phrase: {n} is the count (shown only when not zero).
EXPORT_COUNTS = {
    "annotations": "{n} annotations",
    "skipped_unlabelled": "{n} unlabelled skipped",
    "labels_dropped": "{n} image labels dropped (the format holds objects only)",
    "polygons_dropped": "{n} polygons dropped (boxes kept)",
    "polygons_not_written": "{n} polygons not written (--task segment writes them)",
    "boxes_as_rectangles": "{n} box-only objects written as rectangles",
    "boxes_rounded": "{n} boxes rounded to whole pixels (each edge by at most 0.5 px)",
    "multipart_bridged": "{n} multi-part polygons bridged into one",
    "unsplit_as_train": "{n} without a split put in train",
}


def export_facts(summary: Mapping[str, Any], out: Path, classes: int) -> dict:
    return {"out": str(out), "classes": classes, **summary}


def export_line(f: Mapping[str, Any]) -> str:
    shown = {"out", "classes", "format", "task", "images", "splits"}
    fmt = f["format"] + (f" {f['task']}" if "task" in f else "")
    extra = [fmt, split_counts(f["splits"])]
    for key, value in f.items():
        if key in shown or value in (0, None, "", {}, []):
            continue
        if key in EXPORT_COUNTS:
            extra.append(EXPORT_COUNTS[key].format(n=number(value)))
        elif key == "renamed_classes":
            extra.append(f"class folders renamed: {_value(value)}")
        elif key == "note":
            extra.append(str(value))
        else:  # a count a writer added that has no phrase yet: its name, readable
            extra.append(f"{key.replace('_', ' ')} {_value(value)}")
    return (f"export: {plural(f['images'], 'image')} in {plural(f['classes'], 'class', 'classes')} {ARROW} "
            f"{f['out']} ({'; '.join(extra)})")


# -- train and evaluate -----------------------------------------------------------------------

def train_facts(history: list, checkpoint: Path) -> dict:
    """From the trainer's per-epoch stats (the last epoch's numbers)."""
    last = history[-1]
    return {"checkpoint": str(checkpoint), "epochs": len(history),
            "seconds": round(sum(s.seconds for s in history), 1),
            "val_accuracy": round(last.val_acc, 6), "val_loss": round(last.val_loss, 6),
            "train_accuracy": round(last.train_acc, 6), "train_loss": round(last.train_loss, 6)}


def train_line(f: Mapping[str, Any]) -> str:
    return (f"train: {plural(f['epochs'], 'epoch')} in {f['seconds']:.1f} s {ARROW} {f['checkpoint']} "
            f"(val accuracy {f['val_accuracy']:.4f}, val loss {f['val_loss']:.4f})")


def evaluate_line(f: Mapping[str, Any]) -> str:
    """From ``evaluate``'s result (its facts as they are)."""
    split = f.get("split", "test")
    return (f"evaluate: {split} accuracy {f['accuracy']:.4f}, macro-F1 {f['macro_f1']:.4f} "
            f"on {plural(f[f'{split}_samples'], 'image')} (loss {f['loss']:.4f})")


def detection_train_facts(history: list, checkpoint: Path) -> dict:
    """A detector's last epoch (``pipeline.train.detect.DetectEpoch``)."""
    last = history[-1]
    return {"checkpoint": str(checkpoint), "epochs": len(history),
            "seconds": round(sum(s.seconds for s in history), 1), "val_map": round(last.val_map, 6),
            "val_map50": round(last.val_map50, 6), "train_loss": round(last.train_loss, 6)}


def detection_train_line(f: Mapping[str, Any]) -> str:
    return (f"train: {plural(f['epochs'], 'epoch')} in {f['seconds']:.1f} s {ARROW} {f['checkpoint']} "
            f"(val mAP {f['val_map']:.4f}, mAP50 {f['val_map50']:.4f})")


def detection_evaluate_line(f: Mapping[str, Any]) -> str:
    """From ``evaluate_detection``'s result; a figure COCOeval cannot define shows as n/a."""
    def num(key: str) -> str:
        return "n/a" if f.get(key) is None else f"{f[key]:.4f}"

    masks = f", mask mAP {num('mask_map')}" if "mask_map" in f else ""
    split = f.get("split", "test")
    return (f"evaluate: {split} mAP {num('map')}, mAP50 {num('map50')}, mAP75 {num('map75')}, AR100 {num('ar100')}"
            f"{masks} on {plural(f[f'{split}_images'], 'image')}")


# -- predict ----------------------------------------------------------------------------------

LOW = "low confidence"  # the flag of a prediction under --min-confidence


def prediction_facts(p, min_confidence: float) -> dict:
    return {"path": str(p.path), "label": p.label, "probability": p.probability,
            "low_confidence": p.probability < min_confidence,
            "top": [{"label": name, "probability": q} for name, q in p.top], "notes": list(p.notes)}


def predict_facts(checkpoint: Path, predictions: list[dict], errors: list[dict], min_confidence: float) -> dict:
    return {"checkpoint": str(checkpoint), "min_confidence": min_confidence, "predictions": predictions,
            "errors": errors}


def detections_table(f: Mapping[str, Any]) -> str:
    """A header and one row per image: path, objects at or above the score, per class, tiled."""
    rows = [("image", f"objects (score >= {f['min_score']:g})", "per class", "")]
    for p in f["predictions"]:
        rows.append((p["path"], str(p["objects"]), ", ".join(f"{k} {v}" for k, v in p["per_class"].items()),
                     "by tiles" if p["tiled"] else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return table + (f"\n{ARROW} {f['results']} (COCO results) and drawn overlays beside it" if f["results"] else "")


def predict_table(f: Mapping[str, Any]) -> str:
    """A header and one row per image: path, class, probability, the next classes, the flag."""
    rows = [("image", "class", "probability", "next", "")]
    for p in f["predictions"]:
        others = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in p["top"][1:])
        flag = f"{LOW} (< {f['min_confidence']:g})" if p["low_confidence"] else ""
        rows.append((p["path"], p["label"], f"{p['probability']:.3f}", others, flag))
    if not any(r[3] for r in rows[1:]):  # --top 1: no column of runners-up
        rows = [r[:3] + r[4:] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
