"""YOLO txt: labelImg (``classes.txt``), Ultralytics (``data.yaml``) and Darknet (``obj.data``) layouts.

One ``.txt`` per image with lines ``class cx cy w h`` (a box) or
``class x1 y1 x2 y2 ...`` (a polygon, 3+ points), all normalized to [0, 1].

Quirks handled here: ``classes.txt`` with or without a trailing newline or blank
lines; ``data.yaml`` ``names`` as a list or an ``{id: name}`` dict; class ids
beyond the names list (``class-id-out-of-range``, quarantined with the line
number, never guessed); a box line with a 6th column (confidence) is refused
rather than misread; coordinates slightly outside [0, 1] are clipped after
decode and counted; duplicate rows rejected after decode; an image without a txt
file is a background image. With a ``data.yaml`` whose ``train/val/test`` name
folders or lists found in the tree, the tree is read as Ultralytics reads it
(``datayaml.py``: ``path`` from someone else's machine falls back to the yaml's
folder, Roboflow's ``../train/images`` works, images not named are ``unlisted``);
without one, Darknet's ``obj.data`` / ``obj.names`` and list files (CVAT's "YOLO
1.1" export) are read the same way (``darknet.py``: class names from
``obj.names``); otherwise every image is read, its label in the ``labels/``
mirror of ``images/`` or beside it, its split from its folder names, its class
names from the nearest ``classes.txt`` or ``obj.names`` (beside the label, then
in each folder above it).
Class names must be non-empty, unique strings (``null`` or ``[1, 2]`` as a name
is refused as ``bad-class-names``, never turned into ``"None"``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator, Mapping, Sequence, Union

from pipeline.ingest import darknet
from pipeline.ingest.candidate import (AnnotationError, Candidate, ClassOrder, Layout, Parsed, RawObject, guarded,
                                       problem)
from pipeline.ingest.darknet import DATA_FILE, NAMES_FILE
from pipeline.ingest.datayaml import Plan, label_path, plan_splits
from pipeline.ingest.numbers import parse_int, parse_number, shown, split_ascii
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.sniff import refuse_unsupported
from pipeline.ingest.tree import IMAGE_EXTS, ReadLimits, hidden_rows, rel, walk
from pipeline.ingest.voc import pick_split
from pipeline.core.inputfile import InputRefused, decode_text, parse_yaml, read_bytes
from pipeline.record import Rejected

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")
NAMES_FILES = ("classes.txt", NAMES_FILE)  # one class name a line: labelImg's, Darknet's
AUX_NAMES = NAMES_FILES + YAML_NAMES + (DATA_FILE,)  # read (or checked), never label files
# Files Ultralytics writes beside the labels and reads back itself: never annotations.
IGNORED_SUFFIXES = {".cache": "an Ultralytics label cache (rebuilt from the label files)"}


def _ignored(rels) -> dict[str, str]:
    """The files of ``rels`` this format passes over on purpose, with why."""
    return {r: why for r in rels for suffix, why in IGNORED_SUFFIXES.items() if r.endswith(suffix)}


def check_names(names: dict[int, object], where: str) -> dict[int, str]:
    """Class names as a file gave them: non-empty strings (or integers), each used once."""
    out: dict[int, str] = {}
    seen: dict[str, int] = {}
    for k, v in names.items():
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise AnnotationError("bad-class-names", f"{where}: class {k} has the name {shown(v)}, "
                                  "not a string")
        name = str(v).strip()
        if not name:
            raise AnnotationError("bad-class-names", f"{where}: class {k} has an empty name")
        if name in seen:
            raise AnnotationError("bad-class-names", f"{where}: classes {seen[name]} and {k} are both "
                                  f"named {shown(name)}")
        seen[name] = k
        out[k] = name
    return out


def _lines(text: str) -> list[str]:
    """Lines split at ``\n`` only (``str.splitlines`` also splits at ``\x1c``, ``\u2028``, ...)."""
    return [line.rstrip("\r") for line in text.split("\n")]


def parse_classes_txt(text: str, where: str = "classes.txt") -> list[str]:
    """labelImg's ``classes.txt`` or Darknet's ``obj.names``: one name per line; trailing newline optional."""
    names = [line.strip() for line in _lines(text) if line.strip()]
    return list(check_names(dict(enumerate(names)), where).values())


def parse_data_yaml(data: str | bytes) -> dict[int, str]:
    """Ultralytics ``data.yaml`` ``names``: a list, or a dict keyed by class id.

    Read with the guarded YAML loader (alias budget); names must be non-empty,
    unique strings (integers are taken as their text); ``AnnotationError`` otherwise.
    """
    try:
        doc = parse_yaml(data.encode("utf-8") if isinstance(data, str) else data) or {}
    except InputRefused as err:
        raise AnnotationError(err.reason, err.detail) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, list):
        return check_names(dict(enumerate(names)), "data.yaml names")
    if isinstance(names, dict):
        if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in names):
            raise AnnotationError("bad-class-names", f"data.yaml: names keys must be class ids "
                                  f"(0, 1, ...), got {shown(list(names))}")
        return check_names(names, "data.yaml names")
    raise AnnotationError("bad-class-names",
                          "data.yaml: `names` missing (expected a list or an {id: name} mapping)")


def parse_yolo(text: str, names: Mapping[int, str] | Sequence[str] | None) -> Parsed:
    """Parse one label file into normalized raw objects; index = 1-based line number.

    ``names`` maps class id to name; None keeps the id itself as the name. Numbers
    are parsed strictly (``numbers.py``) and tokens split at ASCII whitespace only.
    """
    if names is not None and not isinstance(names, Mapping):
        names = dict(enumerate(names))
    objects, problems = [], []
    for n, line in enumerate(_lines(text), start=1):
        tokens = split_ascii(line)
        if not tokens:
            continue
        # Each token is read before the line's shape is judged, and the shape before the
        # class range: `1 2 3` is a short line, not an unknown class.
        try:
            cls = parse_int(tokens[0])
        except ValueError:
            problems.append(problem("bad-class-id", f"class {shown(tokens[0])} is not an integer id", n))
            continue
        try:
            nums = [parse_number(t) for t in tokens[1:]]
        except ValueError as err:
            problems.append(problem("bad-number", str(err), n))
            continue
        if len(nums) != 4 and (len(nums) < 6 or len(nums) % 2):
            problems.append(problem("bad-token-count",
                                    f"{len(tokens)} values: expected 5 (box) or 1 + an even number >= 6 (polygon)", n))
            continue
        if names is not None and cls not in names:
            problems.append(problem("class-id-out-of-range",
                                    f"class id {cls} is not in the {len(names)} names", n))
            continue
        label = names[cls] if names is not None else str(cls)
        if len(nums) == 4:
            cx, cy, w, h = nums
            objects.append(RawObject(label, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), index=n))
        else:
            objects.append(RawObject(label, None, (tuple(nums),), index=n))
    return Parsed(objects=tuple(objects), problems=tuple(problems))


def label_paths(image_rel: str) -> list[str]:
    """Where an image's label file may be: Ultralytics ``labels/`` mirror, then beside it."""
    p = PurePosixPath(image_rel)
    out = []
    parts = list(p.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            mirror = parts[:i] + ["labels"] + parts[i + 1:]
            out.append(str(PurePosixPath(*mirror).with_suffix(".txt")))
            break
    out.append(str(p.with_suffix(".txt")))
    return out


Names = Union[dict[int, str], AnnotationError, None]


def _read_names(path: Path, r: str, limits: ReadLimits) -> dict[int, str] | AnnotationError:
    parse = parse_data_yaml if PurePosixPath(r).name in YAML_NAMES else (
        lambda data: dict(enumerate(parse_classes_txt(decode_text(data), PurePosixPath(r).name))))
    return guarded(lambda: parse(read_bytes(path, "config", limits.config_bytes)))


def _names_for(by_rel: dict[str, Path], label_rel: str, yaml_rel: str | None,
               cache: dict[str, dict[int, str] | AnnotationError], limits: ReadLimits) -> tuple[str | None, Names]:
    """``(names file, its names or refusal)``: ``data.yaml``, else the nearest ``classes.txt`` or
    ``obj.names`` (beside the label, then in each folder above it up to the root); ``(None, None)``
    when there is none."""
    d = PurePosixPath(label_rel).parent
    folders = [d, *d.parents] if str(d) != "." else [d]
    nearest = [n if str(f) == "." else f"{f}/{n}" for f in folders for n in NAMES_FILES]
    for cand in ((yaml_rel,) if yaml_rel else nearest):
        if cand in by_rel:
            if cand not in cache:
                cache[cand] = _read_names(by_rel[cand], cand, limits)
            return cand, cache[cand]
    return None, None


def _parse_label(path: Path, names_file: str | None, names: Names, limits: ReadLimits) -> Parsed:
    if isinstance(names, AnnotationError):
        raise AnnotationError("class-names-unusable", f"its class names file {names_file} was refused "
                              f"({names.reason})")
    parsed = parse_yolo(decode_text(read_bytes(path, "annotation", limits.annotation_bytes)), names)
    if names is None:  # no classes.txt / data.yaml: the ids are the names, and we say so
        parsed = Parsed(objects=parsed.objects, problems=parsed.problems, notes=("yolo-no-class-names",))
    return parsed


def read_yolo(root: Path, keep_background: bool = True, prefix: str = "",
              limits: ReadLimits = ReadLimits()) -> Iterator[Candidate | Rejected]:
    """Pair each image with its label file; unpaired label files are reported.

    With a readable ``data.yaml`` naming splits found in the tree, its splits are the
    index (``datayaml.py``, Ultralytics' rules); otherwise every image of the tree is
    read, its label beside it or in the ``labels/`` mirror, its split from its folders.

    A names file (``data.yaml``, ``classes.txt``) that cannot be read is quarantined
    with its reason, and every label file that needed it is ``class-names-unusable``
    (its image ``annotation-unusable``): ids are never guessed into names.
    """
    root = Path(root)
    found = walk(root)
    yield from found.skipped
    yield from hidden_rows(found)
    by_rel = {rel(f, root): f for f in found.files}
    refuse_unsupported(root, by_rel, AUX_NAMES)  # DOTA's lines would be read as nothing
    yaml_rel = next((n for n in YAML_NAMES if n in by_rel), None)
    plan, notes, layout, names_rel = None, (), "yolo-ultralytics", yaml_rel
    if yaml_rel is not None:
        doc = guarded(lambda: parse_yaml(read_bytes(by_rel[yaml_rel], "config", limits.config_bytes)))
        if isinstance(doc, dict):
            plan = plan_splits(doc, yaml_rel, by_rel, limits, root)
        notes = (f"{yaml_rel} names no split found in this tree: every image read, splits from folder names",
                 ) if not isinstance(doc, AnnotationError) else (f"{yaml_rel} was refused ({doc.reason})",)
    else:
        data_rel, names_rel = darknet.find(by_rel)
        got = guarded(darknet.plan_darknet, data_rel, names_rel, by_rel, limits, root)
        if isinstance(got, AnnotationError):
            yield Rejected(path=str(data_rel), reason=got.reason, detail=got.detail)
            notes = (f"{data_rel} was refused ({got.reason}): every image read, splits from folder names",)
        else:
            plan, names_rel, dk_notes = got
            notes, layout = tuple(dk_notes), "yolo-darknet"
    named = tuple(plan.named) if plan is not None else ()  # found or not: a split it names must keep samples
    if plan is None or not plan.found:
        yield Layout("yolo-flat", notes, named)
        yield from _read_tree(root, found.files, by_rel, yaml_rel, keep_background, prefix, limits)
        return
    yield Layout(layout, tuple(notes if layout == "yolo-darknet" else ()) + tuple(plan.notes), named)
    yield from plan.rows
    yield from _read_listed(root, found.files, by_rel, names_rel, plan, keep_background, prefix, limits)


def _names_rows(by_rel: dict[str, Path], aux: set[str], cache: dict, limits: ReadLimits
                ) -> Iterator[Rejected | ClassOrder]:
    """A row for each names file that cannot be read; the class order of each one a label used."""
    for r in sorted({r for r in aux if PurePosixPath(r).name in NAMES_FILES + YAML_NAMES} | set(cache)):
        got = cache[r] if r in cache else _read_names(by_rel[r], r, limits)
        if isinstance(got, AnnotationError):  # every names file is checked, used or not
            yield Rejected(path=r, reason=got.reason, detail=got.detail)
        elif r in cache:
            yield ClassOrder(tuple(got[k] for k in sorted(got)), r)


def _read_listed(root: Path, files: list[Path], by_rel: dict[str, Path], names_rel: str | None, plan: Plan,
                 keep_background: bool, prefix: str, limits: ReadLimits) -> Iterator[Candidate | Rejected]:
    """Ultralytics' reading: the images ``data.yaml`` (or Darknet's ``obj.data``) names, each
    with ``label_path(image)``; class names from ``names_rel`` (ids kept, and noted, without one)."""
    ignored = _ignored(by_rel)
    aux = {r for r in by_rel if PurePosixPath(r).name in AUX_NAMES} | plan.lists
    cache: dict[str, dict[int, str] | AnnotationError] = {}
    entries, used = [], set()
    splits = {r: pick_split(s) for r, s in plan.splits.items()}
    for r in sorted(plan.splits):
        lab = label_path(r)
        if lab not in by_rel or lab in aux:
            continue
        used.add(lab)
        if names_rel is not None and names_rel not in cache:
            cache[names_rel] = _read_names(by_rel[names_rel], names_rel, limits)
        names = cache[names_rel] if names_rel is not None else None
        parsed = guarded(_parse_label, by_rel[lab], names_rel, names, limits)
        split, notes = splits[r]
        entries.append(Entry(ann=lab, parsed=parsed, refs=(r,), normalized=True, split=split, notes=notes))
    yield from _names_rows(by_rel, aux, cache, limits)
    # Label files no listed image uses: an unlisted image's (counted with it) or an orphan's.
    image_of = {label_path(r): r for r in by_rel if PurePosixPath(r).suffix.lower() in IMAGE_EXTS}
    for lab in sorted(r for r in by_rel if r.endswith(".txt") and r not in aux and r not in used):
        if lab not in image_of and "/labels/" in "/" + lab:  # README.roboflow.txt is only unlisted
            aux.add(lab)
            yield Rejected(path=lab, reason="annotation-without-image",
                           detail="no image of this tree has this label file (Ultralytics: the last "
                                  "/images/ of an image path becomes /labels/)")
    yield from assemble(root, "yolo", files, entries, keep_background, prefix, annotation_files=used,
                        auxiliary=aux, ignored=ignored, unlisted=lambda r: r not in plan.splits,
                        split_of_path=lambda r: splits[r][0] if r in splits else None)


def _read_tree(root: Path, files: list[Path], by_rel: dict[str, Path], yaml_rel: str | None,
               keep_background: bool, prefix: str, limits: ReadLimits) -> Iterator[Candidate | Rejected]:
    """labelImg / folder reading: every image, its label beside it or in the ``labels/`` mirror."""
    rels = set(by_rel)
    ignored = _ignored(rels)
    aux = {r for r in rels if PurePosixPath(r).name in AUX_NAMES}
    labels = {r for r in rels if r.endswith(".txt") and r not in aux}
    entries, used = [], set()
    cache: dict[str, dict[int, str] | AnnotationError] = {}
    for r in sorted(rels):
        if PurePosixPath(r).suffix.lower() not in IMAGE_EXTS:
            continue
        lab = next((c for c in label_paths(r) if c in labels and c not in used), None)
        if lab is None:
            continue
        used.add(lab)
        names_file, names = _names_for(by_rel, lab, yaml_rel, cache, limits)
        parsed = guarded(_parse_label, by_rel[lab], names_file, names, limits)
        entries.append(Entry(ann=lab, parsed=parsed, refs=(r,), normalized=True))
    yield from _names_rows(by_rel, aux, cache, limits)
    for lab in sorted(labels - used):
        yield Rejected(path=lab, reason="annotation-without-image",
                       detail="no image with this label file's name")
    yield from assemble(root, "yolo", files, entries, keep_background, prefix,
                        annotation_files=labels, auxiliary=aux, ignored=ignored)
