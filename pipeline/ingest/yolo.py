"""YOLO txt: labelImg (``classes.txt``) and Ultralytics (``data.yaml``) layouts.

One ``.txt`` per image with lines ``class cx cy w h`` (a box) or
``class x1 y1 x2 y2 ...`` (a polygon, 3+ points), all normalized to [0, 1].

Quirks handled here: ``classes.txt`` with or without a trailing newline or blank
lines; ``data.yaml`` ``names`` as a list or an ``{id: name}`` dict; class ids
beyond the names list (``class-id-out-of-range``, quarantined with the line
number, never guessed); a box line with a 6th column (confidence) is refused
rather than misread; coordinates slightly outside [0, 1] are clipped after
decode and counted; duplicate rows rejected after decode; an image without a txt
file is a background image. Ultralytics labels live in ``labels/`` mirroring
``images/``; the ``train/val/test`` paths in ``data.yaml`` (often absolute paths
from someone else's machine) are not trusted: the split comes from the tree.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator, Mapping, Sequence

from pipeline.errors import InputError
from pipeline.ingest.candidate import AnnotationError, Candidate, Parsed, RawObject, problem
from pipeline.ingest.paired import Entry, assemble
from pipeline.ingest.tree import IMAGE_EXTS, list_files, rel
from pipeline.record import Rejected

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")
AUX_SUFFIXES = (".cache",)


def parse_classes_txt(text: str) -> list[str]:
    """labelImg's ``classes.txt``: one name per line; trailing newline optional."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_data_yaml(text: str) -> dict[int, str]:
    """Ultralytics ``data.yaml`` ``names``: a list, or a dict keyed by class id."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise InputError(f"data.yaml is not valid YAML: {err}") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(names, dict):
        try:
            return {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise InputError(f"data.yaml: names keys must be class ids, got {list(names)}") from None
    raise InputError("data.yaml: `names` missing (expected a list or an {id: name} mapping)")


def parse_yolo(text: str, names: Mapping[int, str] | Sequence[str] | None) -> Parsed:
    """Parse one label file into normalized raw objects; index = 1-based line number.

    ``names`` maps class id to name; None keeps the id itself as the name.
    """
    if names is not None and not isinstance(names, Mapping):
        names = dict(enumerate(names))
    objects, problems = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            cls_f = float(tokens[0])
            if not cls_f.is_integer():
                raise ValueError
            cls = int(cls_f)
        except ValueError:
            problems.append(problem("bad-class-id", f"class {tokens[0]!r} is not an integer id", n))
            continue
        if names is not None and cls not in names:
            problems.append(problem("class-id-out-of-range",
                                    f"class id {cls} is not in the {len(names)} names", n))
            continue
        try:
            nums = [float(t) for t in tokens[1:]]
        except ValueError:
            problems.append(problem("bad-number", f"non-numeric value in {line.strip()!r}", n))
            continue
        label = names[cls] if names is not None else str(cls)
        if len(nums) == 4:
            cx, cy, w, h = nums
            objects.append(RawObject(label, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), index=n))
        elif len(nums) >= 6 and len(nums) % 2 == 0:
            objects.append(RawObject(label, None, (tuple(nums),), index=n))
        else:
            problems.append(problem("bad-token-count",
                                    f"{len(tokens)} values: expected 5 (box) or 1 + an even number >= 6 (polygon)", n))
    return Parsed(objects=tuple(objects), problems=tuple(problems))


def _label_paths(image_rel: str) -> list[str]:
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


def _names_for(root: Path, files: set[str], label_rel: str, yaml_names: dict[int, str] | None,
               cache: dict[str, dict[int, str]]) -> dict[int, str] | None:
    """``data.yaml`` names, else the nearest ``classes.txt`` (beside the label, then at the root)."""
    if yaml_names is not None:
        return yaml_names
    d = PurePosixPath(label_rel).parent
    for cand in (str(d / "classes.txt"), "classes.txt"):
        if cand in files:
            if cand not in cache:
                cache[cand] = dict(enumerate(parse_classes_txt((root / cand).read_text(encoding="utf-8-sig"))))
            return cache[cand]
    return None


def read_yolo(root: Path, keep_background: bool = True, prefix: str = "") -> Iterator[Candidate | Rejected]:
    """Pair each image with its label file; unpaired label files are reported."""
    root = Path(root)
    files = list_files(root)
    rels = {rel(f, root) for f in files}
    yaml_rel = next((n for n in YAML_NAMES if n in rels), None)
    yaml_names = parse_data_yaml((root / yaml_rel).read_text(encoding="utf-8-sig")) if yaml_rel else None
    aux = {r for r in rels if PurePosixPath(r).name in ("classes.txt",) + YAML_NAMES
           or r.endswith(AUX_SUFFIXES)}
    labels = {r for r in rels if r.endswith(".txt") and r not in aux}
    entries, used = [], set()
    cache: dict[str, dict[int, str]] = {}
    for r in sorted(rels):
        if PurePosixPath(r).suffix.lower() not in IMAGE_EXTS:
            continue
        lab = next((c for c in _label_paths(r) if c in labels and c not in used), None)
        if lab is None:
            continue
        used.add(lab)
        try:
            text = (root / lab).read_text(encoding="utf-8-sig")
            names = _names_for(root, rels, lab, yaml_names, cache)
            parsed = parse_yolo(text, names)
            if names is None:  # no classes.txt / data.yaml: the ids are the names, and we say so
                parsed = Parsed(objects=parsed.objects, problems=parsed.problems, notes=("yolo-no-class-names",))
        except (OSError, UnicodeDecodeError) as err:
            parsed = AnnotationError("unreadable", str(err))
        entries.append(Entry(ann=lab, parsed=parsed, refs=(r,), normalized=True))
    for lab in sorted(labels - used):
        yield Rejected(path=lab, reason="annotation-without-image",
                       detail="no image with this label file's name", source=str(root))
    yield from assemble(root, "yolo", files, entries, keep_background, prefix,
                        annotation_files=labels, auxiliary=aux)
