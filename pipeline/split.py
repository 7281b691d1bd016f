"""The split stage: deterministic, stratified, leak-free train/val/test assignment.

Units, not samples, are assigned: a unit is a duplicate group (exact or near
duplicates, from the dataset's ``duplicates.json``, else equal ``pixel_hash``) or
a single sample, so no duplicate group ever spans two splits. A unit with a given
split (an ImageFolder ``train/``/``val/``/``test/`` tree) keeps it; when the
members of one group were given different splits, the group follows its most
common given split and the moved ids are reported (``moved`` in splits.json).
When the given splits lack one that ``split.ratios`` asks for (a tree with
``train/`` and ``val/`` only), it is carved from the given train split, stratified
like the rest (``split.given: carve``, the default; ``keep`` leaves given splits
alone), and counted in ``carved``. A split the ratios ask for that ends up empty
stops the split stage with what to do, rather than the trainer or evaluate later.

* Classification: units are split per class; within a class they are ordered by
  a key of (seed, first id), independent of file order, and cut by the ratios with
  largest-remainder rounding (sample counts).
* Box data: iterative stratification by object-class counts (Sechidis et al.,
  2011): the rarest class is placed first, each of its units going to the split
  that most lacks that class, so every split gets its share of every class.
  Images without objects are split like a class of their own.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from pipeline.atomic import atomic_dir, atomic_write_text
from pipeline.config import SplitParams
from pipeline.outputs import claim_dir
from pipeline.record import DUPLICATES, Dataset, Sample
from pipeline.seeding import key64

SPLITS_FILE = "splits.json"
ORDER = ("train", "val", "test")


def _cut(n: int, ratios: dict[str, float]) -> list[tuple[str, int]]:
    """Counts per split for ``n`` items, summing to n (largest remainder)."""
    raw = {k: n * r for k, r in ratios.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return [(k, counts[k]) for k in ratios]


def units(dataset: Dataset) -> list[list[Sample]]:
    """Samples grouped so that duplicates stay together; each unit sorted by id."""
    by_id = {s.id: s for s in dataset.samples}
    parent = {i: i for i in by_id}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    groups: list[list[str]] = []
    f = Path(dataset.root) / DUPLICATES if dataset.root is not None else None
    if f is not None and f.is_file():
        groups = [g["ids"] for g in json.loads(f.read_text(encoding="utf-8"))["groups"]]
    by_hash: dict[str, str] = {}
    for s in dataset.samples:
        if s.pixel_hash:
            join(by_hash.setdefault(s.pixel_hash, s.id), s.id)
    for g in groups:
        ids = [i for i in g if i in by_id]
        for i in ids[1:]:
            join(ids[0], i)
    out: dict[str, list[Sample]] = defaultdict(list)
    for i in sorted(by_id):
        out[find(i)].append(by_id[i])
    return list(out.values())


def _given(unit: list[Sample]) -> str | None:
    given = Counter(s.split for s in unit if s.split)
    if not given:
        return None
    return sorted(given.items(), key=lambda kv: (-kv[1], ORDER.index(kv[0]) if kv[0] in ORDER else 9))[0][0]


def _fill(ordered: list[list[Sample]], ratios: dict[str, float], out: dict[str, str]) -> None:
    """Cut units in order into splits by sample counts (a group never straddles)."""
    total = sum(len(u) for u in ordered)
    plan = _cut(total, ratios)
    k, filled = 0, 0
    for u in ordered:
        while k < len(plan) - 1 and filled >= plan[k][1]:
            k, filled = k + 1, 0
        for s in u:
            out[s.id] = plan[k][0]
        filled += len(u)


def _stratify_objects(todo: list[list[Sample]], ratios: dict[str, float], seed: int, out: dict[str, str]) -> None:
    counts = [Counter(o.label for s in u for o in s.objects) for u in todo]
    total = Counter()
    for c in counts:
        total.update(c)
    want = {k: {c: n * r for c, n in total.items()} for k, r in ratios.items()}
    want_n = {k: sum(len(u) for u in todo) * r for k, r in ratios.items()}
    left = set(range(len(todo)))
    key = {i: key64("split", seed, todo[i][0].id) for i in left}
    remaining = Counter(total)
    while left:
        live = [c for c in remaining if remaining[c] > 0]
        if not live:
            break
        cls = min(live, key=lambda c: (remaining[c], c))
        for i in sorted((i for i in left if counts[i][cls]), key=key.__getitem__):
            name = max(ratios, key=lambda k: (want[k].get(cls, 0.0), want_n[k], -list(ratios).index(k)))
            for s in todo[i]:
                out[s.id] = name
            for c, n in counts[i].items():
                want[name][c] = want[name].get(c, 0.0) - n
                remaining[c] -= n
            want_n[name] -= len(todo[i])
            left.discard(i)
    rest = sorted((todo[i] for i in left), key=lambda u: key64("split", seed, u[0].id))
    _fill(rest, ratios, out)


def _assign(todo: list[list[Sample]], ratios: dict[str, float], seed: int, out: dict[str, str]) -> None:
    """Split units without a given split by ``ratios``: per class, or by object classes."""
    if any(s.objects for u in todo for s in u):
        _stratify_objects(todo, ratios, seed, out)
        return
    strata: dict[str, list[list[Sample]]] = defaultdict(list)
    for u in todo:
        s = u[0]
        strata[s.label if s.label is not None else ""].append(u)
    for stratum in sorted(strata):
        ordered = sorted(strata[stratum], key=lambda u: key64("split", seed, u[0].id))
        _fill(ordered, ratios, out)


def missing_given(dataset: Dataset, params: SplitParams) -> list[str]:
    """Splits the ratios ask for that a source giving splits lacks (carved from train)."""
    given = {s.split for s in dataset.samples if s.split}
    if not given or params.given != "carve" or "train" not in given:
        return []
    return [k for k, r in params.ratios.items() if r > 0 and k not in given]


def assign_splits(dataset: Dataset, params: SplitParams) -> dict[str, str]:
    """Return ``{sample id: split}`` for every sample."""
    out: dict[str, str] = {}
    todo: list[list[Sample]] = []
    given_train: list[list[Sample]] = []
    for u in units(dataset):
        g = _given(u)
        if g is not None:
            for s in u:
                out[s.id] = g
            if g == "train":
                given_train.append(u)
        else:
            todo.append(u)
    _assign(todo, params.ratios, params.seed, out)
    missing = missing_given(dataset, params)
    if missing:  # carve them from the given train split, in their share of train + them
        share = {k: params.ratios[k] for k in ("train", *missing)}
        total = sum(share.values())
        _assign(given_train, {k: v / total for k, v in share.items()}, params.seed, out)
    return out


def check_not_empty(counts: Counter, params: SplitParams, dataset: Dataset) -> None:
    """Stop when a split the ratios ask for is empty, saying what to do."""
    from pipeline.errors import InputError

    empty = [k for k, r in params.ratios.items() if r > 0 and not counts.get(k)]
    if not empty:
        return
    given = sorted({s.split for s in dataset.samples if s.split})
    why = (f"the source gives its own splits ({', '.join(given)}) and split.given is {params.given!r}"
           if given and params.given == "keep" else
           f"{len(dataset.samples)} samples are too few for split.ratios {params.ratios}")
    fix = "add images or set their ratio to 0" + (", or set split.given: carve" if given else "")
    raise InputError(f"{dataset.root}: split(s) {', '.join(empty)} would be empty: {why}; {fix}")


def write_splits(dataset: Dataset, params: SplitParams, out: Path) -> dict:
    """Write ``splits.json`` into the directory ``out`` (claimed and replaced atomically,
    like every directory output) and return the summary written."""
    out = Path(out)
    claim_dir(out, "splits", [dataset.root])
    assignment = assign_splits(dataset, params)
    counts = Counter(assignment.values())
    check_not_empty(counts, params, dataset)
    missing = missing_given(dataset, params)
    carved = Counter(assignment[s.id] for s in dataset.samples if s.split == "train" and assignment[s.id] in missing)
    by_class: dict[str, Counter] = defaultdict(Counter)
    objects: dict[str, Counter] = defaultdict(Counter)
    for s in dataset.samples:
        by_class[assignment[s.id]][s.label or ""] += 1
        objects[assignment[s.id]].update(o.label for o in s.objects)
    groups = [u for u in units(dataset) if len(u) > 1]
    summary = {
        "seed": params.seed,
        "ratios": params.ratios,
        "counts": dict(sorted(counts.items())),
        "per_class": {k: dict(sorted(v.items())) for k, v in sorted(by_class.items())},
        "objects_per_class": {k: dict(sorted(v.items())) for k, v in sorted(objects.items()) if v},
        "duplicate_groups": len(groups),
        "carved": {k: carved.get(k, 0) for k in missing},
        "moved": sorted(s.id for u in groups for s in u if s.split and assignment[s.id] != s.split),
        "assignment": dict(sorted(assignment.items())),
    }
    with atomic_dir(out, "splits", [dataset.root]) as tmp:
        atomic_write_text(tmp / SPLITS_FILE, json.dumps(summary, indent=1) + "\n")
    return summary


def read_splits(path: Path) -> dict[str, str]:
    from pipeline.errors import InputError

    f = Path(path) / SPLITS_FILE
    if not f.is_file():
        raise InputError(f"{f}: split assignment not found; run `pipeline split` first")
    return json.loads(f.read_text(encoding="utf-8"))["assignment"]
