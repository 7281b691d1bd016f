"""ingest(export(x)) gives x back, every format: objects, classes and splits.

The matrix: format (and YOLO/COCO task) x box / polygon / mixed data x where the
splits come from (each sample's own, a ``--splits`` assignment that overrides them,
none at all: ``train``, a dataset version). What each format cannot hold is
expected gone, nothing else: VOC and YOLO ``detect`` write boxes (VOC in integer
pixels, within 0.5 px), YOLO and COCO ``segment`` give a box-only object its
rectangle, YOLO joins an object's parts into one polygon.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from pipeline.config import AugmentParams, IngestParams
from pipeline.export import export
from pipeline.ingest import ingest
from pipeline.datasets import load_dataset
from pipeline.record import Sample
from pipeline.version import write_version
from tests.conftest import make_imagefolder
from tests.export_data import KINDS, SPLITS, make_detection


TARGETS = [pytest.param("yolo", "detect", id="yolo-detect"), pytest.param("yolo", "segment", id="yolo-segment"),
           pytest.param("coco", "detect", id="coco-detect"),
           pytest.param("coco", "segment", id="coco-segment"),
           pytest.param("voc", "detect", id="voc"),
           pytest.param("labelme", "detect", id="labelme")]
SOURCES = ("own", "assigned", "unsplit", "version")


def params():
    return IngestParams(workers=1, min_size=4, near_duplicate_bits=-1)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """``(kind, source) -> (dataset, assignment or None)``, made once each."""
    made: dict = {}

    def get(kind: str, source: str):
        if (kind, source) not in made:
            root = tmp_path_factory.mktemp(f"{kind}-{source}")
            ds = make_detection(root / "canonical", kind, splits="none" if source == "unsplit" else "own")
            assignment = None
            if source == "assigned":  # differs from every sample's own split: the assignment wins
                assignment = {s.id: SPLITS[(SPLITS.index(s.split) + 1) % 3] for s in ds.samples}
            if source == "version":
                write_version(ds, {s.id: s.split for s in ds.samples},
                              AugmentParams(copies=1, pipeline=[{"name": "hflip", "p": 0.5}], device="cpu"),
                              root / "version")
                ds = load_dataset(root / "version")
                assert all(s.lineage is not None for s in ds.samples)
            made[kind, source] = (ds, assignment)
        return made[kind, source]
    return get


def stem(s: Sample) -> str:
    """The file stem an export gives a sample of these datasets (no name is shared)."""
    if s.lineage is None:
        return PurePosixPath(s.id).stem
    return f"{PurePosixPath(s.lineage.source_id).stem}_copy{s.lineage.copy}"


def rectangle(box):
    x1, y1, x2, y2 = box
    return (x1, y1, x2, y1, x2, y2, x1, y2)


def expected_objects(s: Sample, fmt: str, task: str) -> list:
    """``(label, box, parts)`` the re-ingested sample holds; ``parts`` None: one part, not
    compared point by point (YOLO's bridged polygon)."""
    out = []
    for o in s.objects:
        if fmt == "voc" or (fmt == "yolo" and task == "detect"):
            parts = ()
        elif task == "segment" and not o.polygons:
            parts = (rectangle(o.box),)
        elif fmt == "yolo" and len(o.polygons) > 1:
            parts = None
        else:
            parts = o.polygons
        out.append((o.label, o.box, parts))
    return sorted(out, key=lambda t: (t[0], t[1]))


def assert_objects(got: Sample, want: list, tol: float) -> None:
    objs = sorted(got.objects, key=lambda o: (o.label, o.box))
    assert [o.label for o in objs] == [w[0] for w in want], got.id
    for o, (label, box, parts) in zip(objs, want):
        assert max(abs(u - v) for u, v in zip(o.box, box)) <= tol, (got.id, o.box, box)
        if parts is None:
            assert len(o.polygons) == 1, (got.id, o)
            continue
        assert len(o.polygons) == len(parts), (got.id, o, parts)
        for p, q in zip(o.polygons, parts):
            assert len(p) == len(q) and max(abs(u - v) for u, v in zip(p, q)) <= 0.01, (got.id, p, q)


def round_trip(ds, assignment, fmt: str, task: str, out):
    summary = export(ds, out / "export", fmt, assignment, task=task)
    back = ingest(out / "export", out / "back", params(), fmt=fmt)
    return summary, back


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt, task", TARGETS)
def test_round_trip(sources, tmp_path, fmt, task, kind, source):
    ds, assignment = sources(kind, source)
    summary, back = round_trip(ds, assignment, fmt, task, tmp_path)
    assert back.quarantine == (), back.quarantine[:3]
    by_stem = {PurePosixPath(s.id).stem: s for s in back.samples}
    assert sorted(by_stem) == sorted(stem(s) for s in ds.samples)
    for s in ds.samples:
        got = by_stem[stem(s)]
        split = (assignment or {}).get(s.id) or s.split or "train"
        assert got.split == split, (s.id, got.id)
        assert (got.width, got.height) == (s.width, s.height)
        assert_objects(got, expected_objects(s, fmt, task), 0.5 + 1e-6 if fmt == "voc" else 0.01)
    used = {o.label for s in ds.samples for o in s.objects}
    if fmt in ("yolo", "coco"):  # the names list / categories hold every class
        assert set(back.classes) == set(ds.classes)
    else:
        assert set(back.classes) == used
    assert summary["splits"] == {sp: n for sp in ("train", "val", "test")
                                 if (n := sum(1 for s in ds.samples
                                              if ((assignment or {}).get(s.id) or s.split or "train") == sp))}
    assert summary.get("unsplit_as_train", 0) == (len(ds.samples) if source == "unsplit" else 0)


@pytest.mark.parametrize("source", ("own", "assigned", "unsplit", "version"))
def test_round_trip_imagefolder(tmp_path, source):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=3, size=16, channels=3,
                           splits=() if source == "unsplit" else ("train", "val", "test"))
    ds = ingest(src, tmp_path / "ds", params())
    assignment = None
    if source == "assigned":
        assignment = {s.id: SPLITS[(SPLITS.index(s.split) + 1) % 3] for s in ds.samples}
    if source == "version":
        write_version(ds, {s.id: s.split for s in ds.samples},
                      AugmentParams(copies=1, pipeline=[{"name": "hflip", "p": 0.5}], device="cpu"),
                      tmp_path / "v")
        ds = load_dataset(tmp_path / "v")
    summary = export(ds, tmp_path / "out", "imagefolder", assignment)
    back = ingest(tmp_path / "out", tmp_path / "back", params())
    assert back.quarantine == ()
    by_name = {(s.split, PurePosixPath(s.id).stem): s for s in back.samples}
    assert len(by_name) == len(ds.samples) == summary["images"]
    for s in ds.samples:
        split = (assignment or {}).get(s.id) or s.split or "train"
        name = PurePosixPath(s.id).stem if s.lineage is None else None
        got = [b for (sp, st), b in by_name.items() if sp == split and b.label == s.label
               and (name is None or st == name or st.startswith(name + "-"))]
        assert got, (s.id, split)
    assert set(back.classes) == set(ds.classes)
