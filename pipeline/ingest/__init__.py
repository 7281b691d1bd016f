"""The ingest stage: user trees in, one canonical dataset out.

``ingest`` reads each source with its format reader (one module per format:
``imagefolder``, ``voc``, ``yolo``, ``createml``, ``labelme``, ``coco``, ``cvat``; ``auto``
detects it from the tree's shape, ``detect.py``), maps class names to one class
list (``classmap.py``), decodes and checks every image in parallel
(``build.py``), checks the annotations against the decoded size
(``annotations.py``), groups duplicates (``duplicates.py``) and writes the
canonical dataset (see ``pipeline.record``) atomically, plus ``report.json`` and
``duplicates.json``.

Every file of a source has exactly one fate, and every entry of its annotation
files too (``fates.py``): a file is a sample (``accepted``), a quarantine row
without an ``index`` (``quarantined_inputs``; ``inputs`` is the two together), an
annotation or index file that was read, a file the format's index does not name
(``unlisted``), a hidden file (``skipped_hidden``) or a file the format ignores on
purpose; an entry is an object, a class label, a refused entry (a row with its
``index``), an ignored one (crowd regions) or goes with its quarantined input.
``report.json`` holds the counts per fate, in total and per source (``fates``),
with a few examples; files only counted are never listed one by one.

Before the new dataset replaces the previous one, the loss policy (``loss.py``)
checks the accounting: a run that loses data stops with exit 3 unless
``ingest.on_loss`` is ``warn``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pipeline.core.atomic import atomic_dir
from pipeline.config import IngestParams, SourceParams
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.formats import INGEST_CHOICES
from pipeline.core.formats import INGEST_FORMATS as FORMATS
from pipeline.ingest.build import Outcome, decode_all
from pipeline.ingest.candidate import Candidate, ClassOrder, Layout, Skipped, Tally
from pipeline.ingest.classmap import apply_class_map
from pipeline.ingest.duplicates import duplicate_groups
from pipeline.ingest.fates import EXAMPLES, account, total
from pipeline.ingest.loss import enforce
from pipeline.ingest.placeholders import quarantine_placeholders
from pipeline.core.outputs import MARKER, claim_dir
from pipeline.core.ranks import world_size
from pipeline.record import DUPLICATES, REPORT, Dataset, Rejected, load_canonical, save_dataset


def read_source(fmt: str, root: Path, params: IngestParams, prefix: str = "", name: str = "") -> list:
    """Candidates and rejections of one source tree (no image is decoded here).

    Every row is stamped with the source's ``name`` (``Source.root``,
    ``Rejected.source``), never with the path as typed, so the output bytes do not
    depend on how the source was spelled; ``report.json`` maps names to paths.
    """
    from pipeline.ingest import coco, createml, cvat, imagefolder, labelme, voc, yolo
    from pipeline.ingest.tree import ReadLimits

    keep = params.keep_background
    limits = ReadLimits(annotation_bytes=params.max_annotation_bytes, index_bytes=params.max_index_bytes,
                        max_pixels=params.max_pixels)
    if fmt == "imagefolder":
        items = imagefolder.read_imagefolder(root, prefix.rstrip("/"))
    elif fmt == "labelme":
        items = labelme.read_labelme(root, keep, prefix, params.labelme.flags_as_label, limits)
    else:
        readers = {"voc": voc.read_voc, "yolo": yolo.read_yolo, "createml": createml.read_createml,
                   "coco": coco.read_coco, "cvat": cvat.read_cvat}
        if fmt not in readers:
            raise ConfigError(f"unknown ingest format {fmt!r}; known: {', '.join(FORMATS)}")
        items = readers[fmt](root, keep, prefix, limits)
    out = []
    for it in items:
        if isinstance(it, (Rejected, Tally)):
            it = dataclasses.replace(it, source=name)
        elif isinstance(it, Candidate):
            it = dataclasses.replace(it, source=dataclasses.replace(it.source, root=name))
        out.append(it)
    return out


def _source_report(items: list) -> dict:
    """What a source's reader understood (layout, notes, the splits its index names) and
    examples of the files it only counted (the counts come with the fates)."""
    layout = next((it for it in items if isinstance(it, Layout)), None)
    out: dict = {}
    if layout is not None:
        out["layout"] = layout.name
        if layout.notes:
            out["notes"] = list(layout.notes)
        if layout.splits:
            out["named_splits"] = [list(x) for x in layout.splits]
    for kind, key in (("unlisted", "unlisted"), ("hidden", "skipped_hidden")):
        paths = sorted(it.path for it in items if isinstance(it, Skipped) and it.kind == kind)
        if paths:
            out[key + "_examples"] = paths[:EXAMPLES]
    return out


@dataclasses.dataclass(frozen=True)
class _Read:
    """One source as read: its report entry, the files it only counted, the paths given to
    its embedded images (not files of the tree)."""

    entry: dict
    skipped: list
    embedded: frozenset


def _without_marker(items: list) -> list:
    """Drop the output marker at the top of a tree pipeline wrote (a download, an export):
    it describes the tree and is not one of its inputs, nor a hidden file the user left."""
    def is_marker(item) -> bool:
        path = item.source.path if isinstance(item, Candidate) else getattr(item, "path", None)
        return path == MARKER
    return [i for i in items if not is_marker(i)]


def _sources(src: Path | None, params: IngestParams, fmt: str | None) -> list[tuple[SourceParams, str, str]]:
    """(source, id prefix, name) triples: ``ingest.sources`` when set, else ``src`` alone.

    A source's name is its ``name`` or the last component of its resolved path, so
    ``src``, ``./src`` and ``/abs/src`` give the same name (and the same bytes).
    """
    if fmt is not None and fmt not in INGEST_CHOICES:
        raise ConfigError(f"unknown ingest format {fmt!r}; known: {', '.join(INGEST_CHOICES)}")
    if params.sources:
        sources = list(params.sources)
    elif src is not None:
        sources = [SourceParams(format=fmt or params.format, path=str(src))]  # type: ignore[arg-type]
    else:
        raise ConfigError("nothing to ingest: give a source directory or set ingest.sources")

    def name_of(s: SourceParams) -> str:
        return s.name or Path(s.path).resolve().name or "source"

    if len(sources) == 1 and not sources[0].name:
        return [(sources[0], "", name_of(sources[0]))]
    out, used = [], set()
    for s in sources:
        name = name_of(s)
        if name in used:
            raise ConfigError(f"ingest.sources: two sources named {name!r}; give each a distinct `name`")
        used.add(name)
        out.append((s, name + "/", name))
    return out


def ingest(src: Path | None, out: Path, params: IngestParams, fmt: str | None = None) -> Dataset:
    """Ingest the source(s) (read-only) into the canonical dataset directory ``out``.

    With ``ingest.sources`` set, every listed source is merged into one dataset
    (ids prefixed by the source name); otherwise ``src`` is read as ``fmt``. A run
    that loses data raises ``DataLossError`` (``loss.py``) and leaves ``out`` as it was.
    """
    from pipeline.ingest.detect import detect_format

    items: list = []
    reads = []
    declared: list[ClassOrder] = []
    sources = _sources(src, params, fmt)
    # Before anything is read: --out is apart from every source (else it would replace
    # a source, or be ingested as one on the next run) and is ours to replace.
    source_paths = [Path(s.path) for s, _, _ in sources]
    claim_dir(Path(out), "canonical", source_paths)
    for s, prefix, name in sources:
        root = Path(s.path)
        if not root.is_dir():
            raise InputError(f"{root}: source directory not found (format {s.format})")
        entry = {"format": s.format, "path": str(root), "prefix": prefix, "name": name}
        if s.format == "auto":
            found = detect_format(root)
            entry.update(format=found.format, detected=found.evidence)
        got = _without_marker(read_source(entry["format"], root, params, prefix, name))
        entry.update(_source_report(got))
        reads.append(_Read(entry, [it for it in got if isinstance(it, Skipped)],
                           frozenset(it.source.path for it in got if isinstance(it, Candidate) and not it.path)))
        items.extend(it for it in got if isinstance(it, (Candidate, Rejected, Tally)))
        declared.extend(ClassOrder(it.names, prefix + it.where) for it in got if isinstance(it, ClassOrder))
    items = quarantine_placeholders(items, params.placeholder_names)
    items, classes, class_report = apply_class_map(items, params.classes, params.aliases, declared)
    candidates = [c for c in items if isinstance(c, Candidate)]
    rejected = [r for r in items if isinstance(r, Rejected)]
    tallies = [t for t in items if isinstance(t, Tally)]
    seen: set[str] = set()
    for c in candidates:
        if c.id in seen:
            raise InputError(f"two inputs give the sample id {c.id!r}; name the sources distinctly")
        seen.add(c.id)

    def write(tmp: Path, outcomes: list[Outcome]) -> None:
        _write(tmp, outcomes, rejected, tallies, classes, class_report, reads, params)

    if world_size() > 1:  # under torchrun: every rank decodes a share, rank 0 writes
        from pipeline.ingest.sharded import ingest_sharded

        ingest_sharded(candidates, Path(out), source_paths, params, write)
        return load_canonical(Path(out))
    with atomic_dir(Path(out), "canonical", source_paths) as tmp:
        write(tmp, decode_all(candidates, tmp, params.min_size, params.max_pixels, params.workers,
                              params.max_decode_bytes, params.near_duplicate_bits >= 0, params.tile))
    return load_canonical(Path(out))


def tiling_report(outcomes: list[Outcome], params: IngestParams) -> dict:
    """``report.json`` ``tiling``: the grid, the images cut and kept whole, the tiles, and what
    became of the objects of the cut images (whole in a tile, only in clipped pieces, in none)."""
    from collections import Counter

    counts: Counter = Counter()
    for o in outcomes:
        if o.tiled is not None:
            counts.update(o.tiled.counts)
    keys = ("images_tiled", "tiles", "objects", "objects_whole_in_a_tile", "objects_only_in_pieces",
            "objects_in_no_tile", "tile_objects", "tile_objects_clipped")
    whole = sum(1 for o in outcomes if o.sample and o.tiled is None)
    return {**params.tile.model_dump(), "images_whole": whole,  # type: ignore[union-attr]
            **{k: counts.get(k, 0) for k in keys}}


def _write(tmp: Path, outcomes: list[Outcome], rejected: list[Rejected], tallies: list[Tally], classes,
           class_report, reads: list[_Read], params: IngestParams) -> None:
    """Everything of the canonical dataset but the image packs, from the decoded candidates;
    first the accounting and the loss policy, which may stop the run (nothing is renamed)."""
    from collections import Counter

    samples = [o.sample for o in outcomes if o.sample is not None]
    rows = rejected + [r for o in outcomes for r in o.rows]
    tallies = tallies + [o.entries for o in outcomes]
    roots = []
    for read in reads:
        entry, name = dict(read.entry), read.entry["name"]
        fates = account(name, read.skipped, set(read.embedded), samples, rows, tallies)
        mine = [s for s in samples if s.source.root == name]
        entry.update(fates=fates, unlisted=fates["files"]["unlisted"], skipped_hidden=fates["files"]["hidden"],
                     splits=dict(sorted(Counter(s.split or "unassigned" for s in mine).items())),
                     labelled=sum(1 for s in mine if s.label is not None))
        roots.append(entry)
    files_rejected = sum(1 for r in rows if r.index is None)
    report = {
        "sources": roots,
        "inputs": len(samples) + files_rejected,
        "accepted": len(samples),
        "quarantined_inputs": files_rejected,
        "rejected_objects": len(rows) - files_rejected,
        "unlisted": sum(r["unlisted"] for r in roots),
        "skipped_hidden": sum(r["skipped_hidden"] for r in roots),
        "fates": total([r["fates"] for r in roots]),
        "class_map": class_report,
    }
    if params.tile is not None:
        report["tiling"] = tiling_report(outcomes, params)
    report["loss"] = enforce(report, params)  # DataLossError here leaves the previous output as it was
    stored = [s for o in outcomes for s in o.stored]
    if len({s.id for s in stored}) != len(stored):
        twice = sorted(i for i, n in Counter(s.id for s in stored).items() if n > 1)
        raise InputError(f"the sample id {twice[0]!r} is given twice (a tile's id is <image id>@<x>,<y>); "
                         "rename the file whose name looks like a tile's")
    groups = duplicate_groups(stored, params.near_duplicate_bits)
    save_dataset(tmp, stored, classes, rows)
    (tmp / REPORT).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (tmp / DUPLICATES).write_text(json.dumps(
        {"near_duplicate_bits": params.near_duplicate_bits, "groups": groups}, indent=1) + "\n",
        encoding="utf-8")
