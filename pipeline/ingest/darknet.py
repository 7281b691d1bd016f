"""Darknet (AlexeyAB) and CVAT's "YOLO 1.1" export: ``obj.data`` names the splits and the classes.

The layout, as both write it::

    obj.data         classes = 3 / train = data/train.txt / valid = data/valid.txt / names = data/obj.names
    obj.names        one class name a line; the class id is the line number (0-based)
    train.txt        image paths, one a line (data/obj_train_data/a.jpg)
    obj_train_data/  a.jpg with a.txt beside it (the label lines YOLO writes)

Paths in ``obj.data`` and the lists are relative to the folder Darknet runs in,
the one *above* ``data/``, which the tree as shared often is not: each is read
as written, else by its longest trailing part found in the tree (``data/train.txt``
-> ``train.txt``), and the report says so (``datayaml.longest_tail``). The splits
are then read as Ultralytics' list files are (``datayaml.plan_splits``): ``train``,
``valid`` (``val``, ``validation``), ``test``; a subset under another name (Datumaro
writes any) is noted and its images are ``unlisted``. Class names come from
``obj.names`` (the file ``names`` gives, else ``obj.names`` beside ``obj.data``),
never from the ids. Without ``obj.data``, ``train.txt`` / ``valid.txt`` /
``test.txt`` beside ``obj.names`` are read the same way.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.ingest.candidate import AnnotationError
from pipeline.ingest.datayaml import SPLIT_KEYS, Plan, longest_tail, plan_splits
from pipeline.ingest.tree import ReadLimits
from pipeline.core.inputfile import decode_text, read_bytes

DATA_FILE = "obj.data"
NAMES_FILE = "obj.names"
LISTS = ("train.txt", "valid.txt", "val.txt", "test.txt")  # read beside obj.names when there is no obj.data
SETTINGS = {"classes", "names", "backup", "eval", "results", "top", "map", "labels"}  # obj.data keys, not subsets


def parse_obj_data(text: str) -> dict[str, str]:
    """``key = value`` lines (``#`` comments, blank lines ignored); ``AnnotationError`` for a
    line without ``=``: a file that is not Darknet's is not guessed at."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, eq, value = line.partition("=")
        if not eq or not key.strip():
            raise AnnotationError("bad-obj-data", f"line {n} is not `key = value`: {line[:40]!r}")
        out[key.strip().lower()] = value.strip()
    return out


def find(by_rel: dict[str, Path]) -> tuple[str | None, str | None]:
    """``(obj.data, obj.names)`` of the tree, the shallowest of each; (None, None) when it has neither."""
    def shallowest(name: str) -> str | None:
        hits = sorted((r.count("/"), r) for r in by_rel if PurePosixPath(r).name == name)
        return hits[0][1] if hits else None

    return shallowest(DATA_FILE), shallowest(NAMES_FILE)


def plan_darknet(data_rel: str | None, names_rel: str | None, by_rel: dict[str, Path], limits: ReadLimits,
                 root: Path) -> tuple[Plan | None, str | None, list[str]]:
    """``(splits or None, the names file to use, notes)``; ``AnnotationError`` for an unreadable ``obj.data``.
    The splits' ``found`` is false when ``obj.data`` names none found in the tree."""
    notes: list[str] = []
    if data_rel is not None:
        doc = parse_obj_data(decode_text(read_bytes(by_rel[data_rel], "config", limits.config_bytes)))
        base = str(PurePosixPath(data_rel).parent) if "/" in data_rel else ""
        given = doc.get("names")
        if given:
            found = given if given in by_rel else longest_tail(given, base, by_rel.__contains__)[0]
            if found is None:
                notes.append(f"{data_rel} names {given!r}, which is not in this tree")
            elif found != given:
                notes.append(f"{data_rel} names {given!r}: read {found}")
            names_rel = found or names_rel
        for key in sorted(set(doc) - SETTINGS - set(SPLIT_KEYS)):
            notes.append(f"{data_rel} subset {key!r} is not a split name (train, valid, test): its images are "
                         "not read (unlisted)")
        plan = plan_splits(doc, data_rel, by_rel, limits, root)
    else:
        if names_rel is None:
            return None, None, notes
        here = str(PurePosixPath(names_rel).parent) if "/" in names_rel else ""
        doc = {PurePosixPath(n).stem: n for n in LISTS if (f"{here}/{n}" if here else n) in by_rel}
        # The lists are relative to obj.names' folder, as plan_splits reads them relative to its file's.
        plan = plan_splits(doc, names_rel, by_rel, limits, root) if doc else None
    if plan is not None:
        plan.lists |= {r for r in (data_rel, names_rel) if r}
    return plan, names_rel, notes
