"""One class list for all sources: aliases, an explicit list, and what to report.

Names are mapped through ``ingest.aliases`` first (``{"Header": "header"}``). With
an explicit ``ingest.classes`` list, a name outside it is ``unknown-class``: the
object (or, for classification, the image) is quarantined with its index, never
silently skipped (labelme #852); an image whose every object was refused so is
quarantined too (``annotation-unusable``), never kept as a background image.
Without a list, the classes keep the order the format declares (``ClassOrder``:
YOLO's ``names`` / ``classes.txt`` / ``obj.names``, COCO's categories by id),
unused names included, so class ids survive a round trip through an export; names
found that no declaration holds follow, sorted; with no declaration at all
(ImageFolder, VOC, labelme) the classes are the names found, sorted. Either way
the report lists unknown names, names nothing uses, and case-variant collisions
("Header" vs "header": kept apart and reported, because merging them is the
user's call, made with an alias).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

from pipeline.ingest.candidate import Candidate, ClassOrder, Tally
from pipeline.record import Rejected


def _names(c: Candidate) -> list[str]:
    return ([c.label] if c.label is not None else []) + [o.label for o in c.raw] + [o.label for o in c.objects]


def apply_class_map(items: list, classes: tuple[str, ...] | None, aliases: dict[str, str],
                    declared: list[ClassOrder] | tuple[ClassOrder, ...] = ()):
    """Return ``(items with mapped labels, class list, report)``; see the module docstring."""
    alias = lambda n: aliases.get(n, n)  # noqa: E731
    allowed = set(classes) if classes is not None else None
    out: list = []
    found: Counter = Counter()
    unknown: Counter = Counter()
    for it in items:
        if not isinstance(it, Candidate):
            out.append(it)
            continue
        c = it
        where = c.source.annotation or c.source.path
        label = alias(c.label) if c.label is not None else None
        if label is not None and allowed is not None and label not in allowed:
            unknown[label] += 1
            out.append(Rejected(path=c.source.path, reason="unknown-class",
                                detail=f"class {label!r} is not in ingest.classes (add it or an alias)",
                                source=c.source.root))
            out.append(Tally(with_quarantined_input=c.entries, source=c.source.root))
            continue
        raw = []
        for o in c.raw:
            name = alias(o.label)
            if allowed is not None and name not in allowed:
                unknown[name] += 1
                out.append(Rejected(path=where, reason="unknown-class", index=o.index, source=c.source.root,
                                    detail=f"class {name!r} is not in ingest.classes (add it or an alias)"))
                out.append(Tally(refused=o.entries, source=c.source.root))
                continue
            raw.append(o if name == o.label else dataclasses.replace(o, label=name))
        if c.raw and not raw and label is None:  # every object refused: not a background image
            out.append(Rejected(path=c.source.path, reason="annotation-unusable", source=c.source.root,
                                detail=f"every object of its annotation {where} was refused (unknown-class)"))
            continue
        objects = tuple(o if alias(o.label) == o.label else dataclasses.replace(o, label=alias(o.label))
                        for o in c.objects)
        if (label, tuple(raw), objects) != (c.label, c.raw, c.objects):  # replace costs ~5 us a file
            c = dataclasses.replace(c, label=label, raw=tuple(raw), objects=objects)
        found.update(_names(c))
        out.append(c)
    by_case: dict[str, set[str]] = defaultdict(set)
    for n in list(found) + list(unknown) + list(classes or ()):
        by_case[n.lower()].add(n)
    if classes is not None:
        final, order_from = tuple(classes), ["ingest.classes"]
    else:
        order = dict.fromkeys(alias(n) for d in declared for n in d.names)
        final = tuple(order) + tuple(sorted(n for n in found if n not in order))
        order_from = list(dict.fromkeys(d.where for d in declared)) if order else []
    report = {
        "classes": list(final),
        "order_from": order_from,  # [] : the names found, sorted
        "found": dict(sorted(found.items())),
        "unknown": dict(sorted(unknown.items())),
        "unused": [n for n in final if not found[n]],
        "case_collisions": sorted(sorted(v) for v in by_case.values() if len(v) > 1),
        "aliases_applied": {k: v for k, v in sorted(aliases.items())},
    }
    return out, final, report
