"""The split stage: deterministic, stratified, leak-free train/val/test assignment.

Units, not samples, are assigned: a unit is a duplicate group (exact or near
duplicates, from the dataset's ``duplicates.json``, else equal ``pixel_hash``), the
tiles cut from one image at ingest (``Sample.tile``: overlapping tiles share pixels),
any chain of the two, or a single sample, so no duplicate group and no source
image's content ever spans two splits. A unit with a given
split (an ImageFolder ``train/``/``val/``/``test/`` tree) keeps it; when the
members of one group were given different splits, the group follows its most
common given split and the moved ids are reported (``moved`` in splits.json).
When the given splits lack one that ``split.ratios`` asks for (a tree with
``train/`` and ``val/`` only), it is carved from the given train split, stratified
like the rest (``split.given: carve``, the default; ``keep`` leaves given splits
alone), and counted in ``carved``.

* Classification: the number of units in each split is fixed over the whole set
  first (largest remainder over all units; a split with a positive ratio gets at
  least one unit whenever there are as many units as such splits), then shared out
  per class, each class getting the floor or ceil of its exact share of each split
  (``pipeline.core.apportion``). Within a class the units are ordered by a key of (seed,
  first id), independent of file order, and dealt to train, val, test in that order.
* Box data: iterative stratification by object-class counts (Sechidis et al.,
  2011): the rarest class is placed first, each of its units going to the split
  that most lacks that class, so every split gets its share of every class.
  Images without objects are cut by the ratios (largest remainder over their
  units). A split the greedy left empty, or with images without objects only, takes
  the last unit with objects placed in the split most over its share, when enough
  units have objects; then a split still empty takes any unit.

Units are counted, never samples: a duplicate group is one unit. A split the
ratios ask for stays empty only when there are fewer units than splits with a
positive ratio, or when the given splits are kept and lack it; the split stage then
stops with what to do, rather than the trainer or evaluate later.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

from pipeline.core.apportion import largest_remainder, moves_to_fill, per_class, split_sizes
from pipeline.core.atomic import atomic_dir, atomic_write_text
from pipeline.config import SplitParams
from pipeline.core.outputs import claim_dir
from pipeline.record import BUFFER, SPLITS, Dataset, Sample, read_duplicate_groups, read_json
from pipeline.core.seeding import key64
from pipeline.split_blocks import add_buffer, block_of, objects_in_no_kept_tile

SPLITS_FILE = "splits.json"
ORDER = SPLITS


def units(dataset: Dataset, block: int | None = None) -> list[list[Sample]]:
    """Samples grouped so that duplicates, and the tiles of one image (of one spatial
    block of it, with ``block``: ``pipeline.split_blocks``), stay together; each unit
    sorted by id."""
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

    groups = [g["ids"] for g in read_duplicate_groups(dataset.root)] if dataset.root is not None else []
    by_hash: dict[str, str] = {}
    for s in dataset.samples:
        if s.pixel_hash:
            join(by_hash.setdefault(s.pixel_hash, s.id), s.id)
    for g in groups:
        ids = [i for i in g if i in by_id]
        for i in ids[1:]:
            join(ids[0], i)
    by_source: dict[str, str] = {}
    for s in dataset.samples:
        if s.tile is not None:
            where = s.tile.source_id if block is None else block_of(s, block)
            join(by_source.setdefault(where, s.id), s.id)
    out: dict[str, list[Sample]] = defaultdict(list)
    for i in sorted(by_id):
        out[find(i)].append(by_id[i])
    return list(out.values())


def _given(unit: list[Sample]) -> str | None:
    given = Counter(s.split for s in unit if s.split)
    if not given:
        return None
    return sorted(given.items(), key=lambda kv: (-kv[1], ORDER.index(kv[0]) if kv[0] in ORDER else 9))[0][0]


def _deal(ordered: list[list[Sample]], sizes: dict[str, int]) -> list[tuple[list[Sample], str]]:
    """Units in order to the splits in order, ``sizes[k]`` units to split ``k``."""
    names = [k for k, n in sizes.items() for _ in range(n)]
    return list(zip(ordered, names))


def _stratify_objects(todo: list[list[Sample]], ratios: dict[str, float], seed: int) -> list[tuple[list[Sample], str]]:
    """Iterative stratification by object classes; ``(unit, split)`` in the order placed."""
    counts = [Counter(o.label for s in u for o in s.objects) for u in todo]
    total = Counter()
    for c in counts:
        total.update(c)
    want = {k: {c: n * r for c, n in total.items()} for k, r in ratios.items()}
    want_n = {k: sum(len(u) for u in todo) * r for k, r in ratios.items()}
    left = set(range(len(todo)))
    key = {i: key64("split", seed, todo[i][0].id) for i in left}
    remaining = Counter(total)
    placed: list[tuple[list[Sample], str]] = []
    while left:
        live = [c for c in remaining if remaining[c] > 0]
        if not live:
            break
        cls = min(live, key=lambda c: (remaining[c], c))
        for i in sorted((i for i in left if counts[i][cls]), key=key.__getitem__):
            name = max(ratios, key=lambda k: (want[k].get(cls, 0.0), want_n[k], -list(ratios).index(k)))
            placed.append((todo[i], name))
            for c, n in counts[i].items():
                want[name][c] = want[name].get(c, 0.0) - n
                remaining[c] -= n
            want_n[name] -= len(todo[i])
            left.discard(i)
    rest = sorted((todo[i] for i in left), key=lambda u: key64("split", seed, u[0].id))
    placed += _deal(rest, largest_remainder(len(rest), ratios))
    # The greedy can leave a split with a small ratio empty (3 images at 0.98/0.01/0.01),
    # or holding images without objects only: the last unit with objects placed in the
    # donor split (of the commonest classes) moves there, so every split has boxes to
    # score when enough units have them; then a split still empty takes a unit without
    # objects where the donor has one (its boxes stay), else its last unit.
    boxed = [any(s.objects for s in u) for u, _ in placed]
    for only_boxed in (True, False):
        have = dict.fromkeys(ratios, 0)
        for (_, k), b in zip(placed, boxed):
            have[k] += int(b or not only_boxed)
        for donor, taker in moves_to_fill(have, ratios):
            i = max((i for i, (_, k) in enumerate(placed) if k == donor and (boxed[i] or not only_boxed)),
                    key=lambda i: (only_boxed or not boxed[i], i))
            placed[i] = (placed[i][0], taker)
    return placed


def _assign(todo: list[list[Sample]], ratios: dict[str, float], seed: int, out: dict[str, str]) -> None:
    """Split units without a given split by ``ratios``: per class, or by object classes.

    Classification: the split sizes are fixed over all units first, then shared out per
    class (``pipeline.core.apportion``); within a class the units are ordered by a key of
    (seed, first id) and dealt to train, val, test in that order.
    """
    if any(s.objects for u in todo for s in u):
        placed = _stratify_objects(todo, ratios, seed)
    else:
        strata: dict[str, list[list[Sample]]] = defaultdict(list)
        for u in todo:
            s = u[0]
            strata[s.label if s.label is not None else ""].append(u)
        tie_order = sorted(strata, key=lambda c: (key64("split-class", seed, c), c))
        shares = per_class({c: len(strata[c]) for c in strata}, split_sizes(len(todo), ratios), tie_order)
        placed = []
        for stratum in sorted(strata):
            ordered = sorted(strata[stratum], key=lambda u: key64("split", seed, u[0].id))
            placed += _deal(ordered, shares[stratum])
    for u, name in placed:
        for s in u:
            out[s.id] = name


def missing_given(dataset: Dataset, params: SplitParams) -> list[str]:
    """Splits the ratios ask for that a source giving splits lacks (carved from train)."""
    given = {s.split for s in dataset.samples if s.split}
    if not given or params.given != "carve" or "train" not in given:
        return []
    return [k for k, r in params.ratios.items() if r > 0 and k not in given]


def assign_splits(dataset: Dataset, params: SplitParams) -> dict[str, str]:
    """Return ``{sample id: split}`` for every sample (``BUFFER`` for a tile left out
    between the blocks of two splits, with ``split.block``)."""
    out: dict[str, str] = {}
    todo: list[list[Sample]] = []
    given_train: list[list[Sample]] = []
    for u in units(dataset, params.block):
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
    if params.block is not None:
        add_buffer(dataset, out, params.block)
    return out


def _units_text(pool: list[list[Sample]]) -> str:
    """How many units there are, as a person counts them: groups and single samples
    (the tiles of one image, without duplicates, as that image)."""
    images = [u for u in pool if len(u) > 1 and all(s.tile for s in u) and len({s.tile.source_id for s in u}) == 1]
    if images and len(images) == len(pool):
        n = len(images)
        return f"{n} image{'s' if n != 1 else ''} cut into {sum(len(u) for u in images)} tiles"
    groups = [u for u in pool if len(u) > 1]
    singles = len(pool) - len(groups)
    if not groups:
        return f"{singles} sample{'s' if singles != 1 else ''}"
    kept = f"{sum(len(u) for u in groups)} samples; a group stays in one split"
    if not singles:
        return f"{len(groups)} duplicate group{'s' if len(groups) != 1 else ''} ({kept})"
    return (f"{len(pool)} units: {len(groups)} duplicate group{'s' if len(groups) != 1 else ''} ({kept}) "
            f"and {singles} single sample{'s' if singles != 1 else ''}")


def check_not_empty(counts: Counter, params: SplitParams, dataset: Dataset) -> None:
    """Stop when a split the ratios ask for is empty, saying why and what to do.

    Only the impossible is left empty (see the module's doc), so the message counts
    what was split: units, where a duplicate group is one.
    """
    from pipeline.core.errors import InputError

    empty = [k for k, r in params.ratios.items() if r > 0 and not counts.get(k)]
    if not empty:
        return
    given = sorted({s.split for s in dataset.samples if s.split})
    live = sum(1 for r in params.ratios.values() if r > 0)
    if given and params.given == "keep":
        why = f"the source gives its own splits ({', '.join(given)}) and split.given is {params.given!r}"
    elif given and "train" not in given:
        why = f"the source gives its own splits ({', '.join(given)}) and no train split to carve from"
    elif given:
        train = [u for u in units(dataset, params.block) if _given(u) == "train"]
        why = (f"the given train split holds only {_units_text(train)}, too few to carve "
               f"{', '.join(empty)} from it and keep train (each split needs one)")
    else:
        why = (f"only {_units_text(units(dataset, params.block))} to split, too few for split.ratios {params.ratios}: "
               f"each of the {live} splits with a positive ratio needs one")
    fix = "add images or set their ratio to 0" + (", or set split.given: carve" if given and params.given == "keep" else "")
    if params.block is None and any(s.tile is not None for s in dataset.samples):
        fix += ", or deal large images by spatial blocks (split.block, e.g. 4 tiles wide)"
    raise InputError(f"{dataset.root}: split(s) {', '.join(empty)} would be empty: {why}; {fix}")


def write_splits(dataset: Dataset, params: SplitParams, out: Path) -> dict:
    """Write ``splits.json`` into the directory ``out`` (claimed and replaced atomically,
    like every directory output) and return the summary written."""
    out = Path(out)
    claim_dir(out, "splits", [dataset.root])
    assignment = assign_splits(dataset, params)
    counts = Counter(v for v in assignment.values() if v != BUFFER)
    check_not_empty(counts, params, dataset)
    missing = missing_given(dataset, params)
    carved = Counter(assignment[s.id] for s in dataset.samples if s.split == "train" and assignment[s.id] in missing)
    by_class: dict[str, Counter] = defaultdict(Counter)
    objects: dict[str, Counter] = defaultdict(Counter)
    for s in dataset.samples:
        by_class[assignment[s.id]][s.label or ""] += 1
        objects[assignment[s.id]].update(o.label for o in s.objects)
    buffered = by_class.pop(BUFFER, Counter())
    buffered_objects = objects.pop(BUFFER, Counter())
    groups = [u for u in units(dataset, params.block) if len(u) > 1]
    duplicates = [u for u in groups if len({s.tile.source_id if s.tile else s.id for s in u}) > 1]
    summary = {
        "seed": params.seed,
        "ratios": params.ratios,
        "counts": dict(sorted(counts.items())),
        "per_class": {k: dict(sorted(v.items())) for k, v in sorted(by_class.items())},
        "objects_per_class": {k: dict(sorted(v.items())) for k, v in sorted(objects.items()) if v},
        "duplicate_groups": len(duplicates),
        "carved": {k: carved.get(k, 0) for k in missing},
        "moved": sorted(s.id for u in groups for s in u if s.split and assignment[s.id] != s.split),
        "assignment": dict(sorted(assignment.items())),
    }
    if params.block is not None:  # only then: other assignments keep their bytes
        summary["block"] = params.block
        summary["buffer"] = {"tiles": sum(buffered.values()), "objects": sum(buffered_objects.values()),
                             "objects_in_no_kept_tile": objects_in_no_kept_tile(dataset, assignment)}
    tiled = {s.tile.source_id for s in dataset.samples if s.tile is not None}
    if tiled:  # only a tiled dataset has the key: other assignments keep their bytes
        summary["tiled_images"] = {k: len({s.tile.source_id for s in dataset.samples if s.tile is not None
                                          and assignment[s.id] == k}) for k in sorted(counts)}
    with atomic_dir(out, "splits", [dataset.root]) as tmp:
        atomic_write_text(tmp / SPLITS_FILE, json.dumps(summary, indent=1) + "\n")
    return summary


def read_splits(path: Path) -> dict[str, str]:
    """The ``{sample id: split}`` assignment of a split directory's ``splits.json``."""
    from pipeline.core.errors import InputError

    f = Path(path) / SPLITS_FILE
    if os.path.lexists(path) and not Path(path).is_dir():
        raise InputError(f"{path}: not a directory; give the directory `pipeline split` writes (it holds {SPLITS_FILE})")
    if not os.path.lexists(f):
        raise InputError(f"{f}: split assignment not found; run `pipeline split` first")
    again = "re-run `pipeline split` to write it again"
    doc = read_json(f, again)
    assignment = doc.get("assignment") if isinstance(doc, dict) else None
    if not isinstance(assignment, dict) or not all(isinstance(v, str) for v in assignment.values()):
        raise InputError(f"{f}: no assignment {{sample id: split name}} in it; {again}")
    return assignment
