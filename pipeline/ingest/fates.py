"""The accounting of an ingest: every file of a source and every annotation entry, one fate each.

Files (``FILE_FATES``), each file found under a source exactly once:

* ``samples``: an image that became a sample;
* ``annotations``: an annotation file that was read (its entries are counted below);
* ``indexes``: a file naming images, splits or classes that was read (``data.yaml``,
  ``ImageSets`` lists, ``classes.txt``, ``obj.names``, ``obj.data``, list files);
* ``quarantined``: refused as a whole, with a reason (a ``quarantine.jsonl`` row
  without ``index``); a file refused after it was read is counted here only;
* ``hidden``: a hidden file or folder's file, never read;
* ``unlisted``: a file the format's index does not name;
* ``ignored``: a file the format passes over on purpose, with why (an Ultralytics
  ``*.cache``).

An image embedded in an annotation (labelme ``imageData``) is not a file of the
tree: it is counted as ``embedded_images`` beside the files.

Entries (``ENTRY_FATES``), each entry of an annotation file that could be parsed
(a VOC ``<object>``, a YOLO line, a labelme shape, a COCO annotation, a CreateML
annotation, a CVAT shape, tag or track) exactly once: ``objects`` (an object of a
sample; a labelme group counts each of its shapes), ``labels`` (a CVAT ``<tag>``
that became the image's class), ``refused`` (a quarantine row with its reason),
``ignored`` (COCO crowd regions, labelme ``__ignore__`` / ``_background_``
shapes), ``with_quarantined_input`` (its image or its annotation was quarantined
as a whole). The entries of a file that cannot be parsed at all are not counted:
its own row says why. A line of an index file that names nothing (a row with an
``index`` on a list file) is neither a file nor an entry: it is in
``quarantine.jsonl`` only.

``account`` adds them up per source from the records the readers, the class map
and the decode step produced, never by difference: the tests walk the trees and
count the entries themselves, and compare.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from pipeline.ingest.candidate import CROWD_REGION, Skipped, Tally
from pipeline.record import Rejected, Sample

FILE_FATES = ("samples", "annotations", "indexes", "quarantined", "hidden", "unlisted", "ignored")
SKIPPED = {"annotation": "annotations", "index": "indexes", "hidden": "hidden", "unlisted": "unlisted",
           "ignored": "ignored"}  # Skipped.kind -> its file fate
ENTRY_FATES = tuple(f.name for f in dataclasses.fields(Tally) if f.name != "source")
EXAMPLES = 5  # paths of unlisted, hidden and ignored files shown per source in report.json


def account(name: str, skipped: list[Skipped], embedded: set[str], samples: list[Sample], rows: list[Rejected],
            tallies: list[Tally]) -> dict:
    """The fates of source ``name``: ``skipped`` are its counted files, ``embedded`` the
    paths its embedded images were given; ``samples``, ``rows`` and ``tallies`` may hold
    every source's (only ``name``'s are counted)."""
    files = dict.fromkeys(FILE_FATES, 0)
    rows = [r for r in rows if r.source == name]
    whole = {r.path for r in rows if r.index is None}
    files["quarantined"] = len(whole - embedded)
    files["samples"] = sum(1 for s in samples if s.source.root == name and s.source.path not in embedded)
    seen: set[str] = set(whole)
    annotations = {it.path for it in skipped if it.kind == "annotation"}
    ignored: list[str] = []
    for it in skipped:  # a file refused after it was read keeps the quarantine's fate
        if it.path in seen:
            continue
        seen.add(it.path)
        files[SKIPPED[it.kind]] += 1
        if it.kind == "ignored":
            ignored.append(f"{it.path} ({it.why})")
    entries = dict.fromkeys(ENTRY_FATES, 0)
    for t in tallies:
        if t.source == name:
            for fate in ENTRY_FATES:
                entries[fate] += getattr(t, fate)
    out = {
        "files": {**files, "total": sum(files.values())},
        "entries": {**entries, "total": sum(entries.values())},
        "annotation_files": len(annotations),  # read or refused: what "no object read" is measured against
        "embedded_images": len(embedded),
        "quarantined_by_reason": dict(sorted(Counter(r.reason for r in rows if r.index is None).items())),
        "refused_by_reason": dict(sorted(Counter(r.reason for r in rows if r.index is not None
                                                 and r.path in annotations and r.reason != CROWD_REGION).items())),
    }
    if ignored:
        out["ignored_examples"] = sorted(ignored)[:EXAMPLES]
    return out


def total(per_source: list[dict]) -> dict:
    """The fates of several sources added up (examples left out)."""
    out: dict = {"files": Counter(), "entries": Counter(), "annotation_files": 0, "embedded_images": 0,
                 "quarantined_by_reason": Counter(), "refused_by_reason": Counter()}
    for f in per_source:
        for key in out:
            out[key] = out[key] + (Counter(f[key]) if isinstance(f[key], dict) else f[key])
    return {k: ({n: v[n] for n in (*FILE_FATES, "total")} if k == "files" else
                {n: v[n] for n in (*ENTRY_FATES, "total")} if k == "entries" else
                dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in out.items()}
