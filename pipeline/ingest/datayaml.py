"""Ultralytics ``data.yaml``: which images make each split, resolved inside the tree.

What Ultralytics does (``check_det_dataset``, ``img2label_paths``), kept exactly
where it is about the data, and made safe where it is about someone's machine:

* ``path`` is the dataset root. Written on another machine (``/home/them/data``),
  outside the tree, or missing, it falls back to the folder of ``data.yaml``; we
  never read outside the source tree.
* ``train`` / ``val`` / ``test`` (and ``valid`` / ``validation`` as keys) are each a
  folder, a list of folders, or a ``.txt`` file listing image paths; each is relative
  to ``path``. An absolute entry under the absolute ``path`` is read relative to it.
  Any other entry not found as written (Roboflow's ``train: ../train/images``, or
  ``/Users/them/sharks/train/images`` from the exporting machine) is read as its
  **longest trailing part found in the tree** (``train/images``), and a note says
  which mapping was made.
* A list file's lines are image paths: ``./x`` relative to the list's folder, other
  relative lines relative to ``path``, and a line not found so by its longest
  trailing part found in the tree (noted per list); a line naming no file of the
  tree is ``listed-image-missing`` with its line number.
* An image's label file: the **last** ``/images/`` of its path replaced with
  ``/labels/`` and the extension with ``.txt`` (beside the image when the path has
  no ``images`` folder).

The folders and lists are the index: images they do not name are ``unlisted``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from pipeline.ingest.tree import IMAGE_EXTS, ReadLimits, normalize_ref
from pipeline.core.inputfile import InputRefused, decode_text, read_bytes, shown
from pipeline.record import Rejected

SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass
class Plan:
    """The splits ``data.yaml`` gives: image -> splits, list files read, and what was said."""

    splits: dict[str, set[str]] = field(default_factory=dict)  # image rel path -> splits naming it
    lists: set[str] = field(default_factory=set)  # .txt list files read
    rows: list[Rejected] = field(default_factory=list)  # listed images that are not in the tree
    notes: list[str] = field(default_factory=list)
    named: list[tuple[str, str]] = field(default_factory=list)  # (split, what names it), found or not
    found: bool = False  # some split entry names a folder or list of the tree


def label_path(image_rel: str) -> str:
    """Ultralytics' ``img2label_paths`` on a root-relative posix path."""
    full = "/" + image_rel
    if "/images/" in full:
        full = "/labels/".join(full.rsplit("/images/", 1))
    return full[1:].rsplit(".", 1)[0] + ".txt"


def _norm(path: str) -> str | None:
    """``path`` normalized, or None when it leaves the tree."""
    n = os.path.normpath(path).replace(os.sep, "/")
    return None if n == ".." or n.startswith("../") or n.startswith("/") else ("" if n == "." else n)


def _join(*parts: str) -> str | None:
    return _norm(os.path.join(*[p for p in parts if p]) if any(parts) else ".")


def dataset_root(doc: dict, yaml_rel: str, dirs: set[str], root: Path) -> tuple[str, str, str | None]:
    """``(root-relative dataset root, its absolute spelling in data.yaml or "", note)``."""
    here = _norm(str(PurePosixPath(yaml_rel).parent)) or ""
    given = doc.get("path")
    if not isinstance(given, str) or not given.strip():
        return here, "", None
    p = normalize_ref(given)
    if PurePosixPath(p).is_absolute() or p[1:2] == ":":
        real, tree = os.path.realpath(p), os.path.realpath(root)
        inner = _norm(os.path.relpath(real, tree)) if os.path.isdir(real) else None
        if inner is not None and (not inner or inner in dirs):  # this tree, on this machine
            return inner, p.rstrip("/"), None
        whose = "outside the source tree" if os.path.exists(p) else "another machine's"
        return here, p.rstrip("/"), (f"data.yaml path {given!r} is {whose}: read from "
                                     f"{here or '.'}/, the folder of data.yaml")
    joined = _join(here, p)
    if joined is None or (joined and joined not in dirs):
        return here, "", f"data.yaml path {given!r} is not a folder of this tree: read from {here or '.'}/"
    return joined, "", None


def longest_tail(path: str, base: str, exists: Callable[[str], bool]) -> tuple[str | None, str]:
    """``(root-relative path, dropped prefix)`` of the longest trailing part of ``path``
    that exists under ``base``: ``/Users/them/sharks/train/images`` -> ``train/images``
    (dropped ``/Users/them/sharks``), ``data/obj/a.jpg`` -> ``obj/a.jpg``. A path
    written on another machine, or relative to another folder, keeps the part that
    names this tree's folders; ``(None, "")`` when no part does."""
    parts = [p for p in normalize_ref(path).split("/") if p]
    for k in range(1, len(parts)):
        j = _join(base, "/".join(parts[k:]))
        if j and exists(j):
            return j, "/".join(parts[:k])
    return None, ""


def _resolve(entry: str, base: str, abs_base: str, dirs: set[str], files: set[str]) -> tuple[str | None, str]:
    """``(root-relative folder or list file, how it was found)``; the second is "" when
    the entry names it as written (relative to ``path``, or under the absolute ``path``)."""
    e = normalize_ref(entry)
    exists = lambda j: j in dirs or j in files  # noqa: E731
    foreign = PurePosixPath(e).is_absolute() or e[1:2] == ":"
    if foreign and abs_base and (e + "/").startswith(abs_base + "/"):
        e, foreign = e[len(abs_base):].lstrip("/") or ".", False
    if not foreign:
        j = _join(base, e)
        if j is not None and (j == "" or exists(j)):
            return j, ""
    j, dropped = longest_tail(e, base, exists)
    if j is None:
        return None, ""
    return j, f"its longest trailing part found here (without {dropped!r})"


def plan_splits(doc: dict, yaml_rel: str, by_rel: dict[str, Path], limits: ReadLimits,
                root: Path) -> Plan:
    """The images of each split ``doc`` names (``found`` is false when it names no split found
    in the tree); ``named`` keeps every split it names, found or not."""
    files = set(by_rel)
    dirs = {str(p) for r in files for p in PurePosixPath(r).parents if str(p) != "."}
    images = sorted(r for r in files if PurePosixPath(r).suffix.lower() in IMAGE_EXTS)
    base, abs_base, note = dataset_root(doc, yaml_rel, dirs, root)
    plan = Plan(notes=[note] if note else [])
    said = PurePosixPath(yaml_rel).name  # data.yaml, or Darknet's obj.data (darknet.py)
    for key, split in SPLIT_KEYS.items():
        value = doc.get(key)
        if value is None:
            continue
        plan.named.append((split, f"{yaml_rel} {key}: {shown_list(value)}"))
        for entry in value if isinstance(value, list) else [value]:
            if not isinstance(entry, str) or not entry.strip():
                plan.notes.append(f"{said} {key}: {entry!r} is not a path; ignored")
                continue
            where, how = _resolve(entry, base, abs_base, dirs, files)
            if where is None:
                plan.notes.append(f"{said} {key}: {entry!r} is not in this tree; ignored")
                continue
            if how:
                shown_as = where if where in files else f"{where or '.'}/"
                plan.notes.append(f"{said} {key}: {entry!r} read as {shown_as}, {how}")
            plan.found = True
            if where in files:  # a list of image paths
                named = _read_list(where, base, abs_base, by_rel, limits, plan)
                plan.notes.append(f"{key}: {where} lists {_images(len(named))}")
            else:
                named = [r for r in images if not where or r.startswith(where + "/")]
                plan.notes.append(f"{key}: {where or '.'}/ holds {_images(len(named))}")
            for r in named:
                plan.splits.setdefault(r, set()).add(split)
    twice = sum(1 for v in plan.splits.values() if len(v) > 1)
    if twice:
        plan.notes.append(f"{_images(twice)} named by several splits: each kept in one, test before val before "
                          "train (note listed-in:)")
    return plan


def shown_list(value) -> str:
    """A split's value as the report shows it: its path, or its paths joined; any other value
    as a message shows a user's value (``inputfile.shown``)."""
    one = lambda v: v if isinstance(v, str) else shown(v)  # noqa: E731
    return ", ".join(map(one, value)) if isinstance(value, list) else one(value)


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _read_list(lst: str, base: str, abs_base: str, by_rel: dict[str, Path], limits: ReadLimits,
               plan: Plan) -> list[str]:
    plan.lists.add(lst)
    try:
        text = decode_text(read_bytes(by_rel[lst], "index", limits.index_bytes))
    except InputRefused as err:
        plan.rows.append(Rejected(path=lst, reason=err.reason, detail=err.detail))
        return []
    here = str(PurePosixPath(lst).parent) if "/" in lst else ""
    out = []
    mapped: Counter = Counter()  # dropped prefix -> lines read by their longest trailing part
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        ref = normalize_ref(line)
        if ref.startswith("./"):
            r = _join(here, ref[2:])
        elif PurePosixPath(ref).is_absolute() or ref[1:2] == ":":
            r = _join(base, ref[len(abs_base):].lstrip("/")) if abs_base and ref.startswith(abs_base + "/") else None
        else:
            r = _join(base, ref)
        if r is None or r not in by_rel:
            # Written on another machine, or relative to another folder (Darknet's
            # ``data/obj/x.jpg`` is relative to the folder above ``data/``).
            r, dropped = longest_tail(ref, base, by_rel.__contains__)
            if r is None:
                plan.rows.append(Rejected(path=lst, index=n, reason="listed-image-missing",
                                          detail=f"{line!r} names no file of this tree"))
                continue
            mapped[dropped] += 1
        out.append(r)
    for dropped, k in sorted(mapped.items()):
        plan.notes.append(f"{lst}: {k} line{'' if k == 1 else 's'} read without {dropped!r}, the longest "
                          "trailing part found here")
    return out
