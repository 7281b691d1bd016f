"""Every file and every annotation entry of generated trees gets exactly one fate (report.json ``fates``).

Hypothesis builds ImageFolder, flat YOLO and flat VOC trees out of good, too-small and
corrupt images, stray and hidden files, annotations with good and refused entries and
annotations without their image; the test walks each tree itself, counts the entries
in the files that were read, and holds the report's fates to both. (The layouts of
real tools are held to the same in ``test_ingest_layouts.py``.)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import IngestParams
from pipeline.ingest import ingest
from pipeline.ingest.fates import ENTRY_FATES, FILE_FATES
from tests.layout_trees import count_entries, labelimg_xml, write
from tests.ingest_trees import draw

W, H = 24, 20
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))
IMAGE = st.sampled_from(["good", "good", "tiny", "corrupt"])
# (label index, box) in pixels: kept, degenerate (refused after decode), outside the image (refused)
BOX = st.sampled_from([(0, (2, 2, 12, 12)), (1, (4, 3, 20, 18)), (0, (5, 5, 5, 15)), (1, (40, 40, 50, 50))])
NOISE = st.lists(st.sampled_from(["README.md", ".DS_Store", "__MACOSX/._x.jpg", ".ipynb_checkpoints/x.jpg"]),
                 unique=True, max_size=3)


def _image(root: Path, rel: str, kind: str, seed: int) -> None:
    if kind == "corrupt":
        write(root, rel, b"\xff\xd8\xff not really a jpeg")
    else:
        draw(root / rel, *((W, H) if kind == "good" else (3, 3)), seed)


def files_found(root: Path) -> int:
    return sum(1 for _, _, names in os.walk(root) for _ in names)


def check(root: Path, fmt: str, parsed: list[str]) -> None:
    with tempfile.TemporaryDirectory() as out:
        ds = ingest(root, Path(out) / "ds", IngestParams(workers=1, min_size=8, near_duplicate_bits=-1,
                                                         on_loss="warn"), fmt=fmt)
        report = json.loads((ds.root / "report.json").read_text())
    files, entries = report["fates"]["files"], report["fates"]["entries"]
    assert sum(files[k] for k in FILE_FATES) == files["total"] == files_found(root)
    assert (files["samples"], files["quarantined"]) == (report["accepted"], report["quarantined_inputs"])
    assert sum(entries[k] for k in ENTRY_FATES) == entries["total"] == count_entries(root, parsed)
    assert entries["objects"] == sum(len(s.objects) for s in ds.samples)
    assert entries["refused"] == sum(1 for r in ds.quarantine if r.index is not None)
    # a sample without objects had no annotation entry at all, never entries that were all refused
    for s in ds.samples:
        assert s.objects or s.label is not None or not count_entries(root, [s.source.annotation or ""]), s


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["cat", "dog", "."]), IMAGE), min_size=1, max_size=6), NOISE)
def test_imagefolder_trees_account_for_every_file(images, noise):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for i, (folder, kind) in enumerate(images):
            _image(root, f"{folder}/{i}.jpg" if folder != "." else f"{i}.jpg", kind, i)
        for rel in noise:
            write(root, rel, b"noise")
        check(root, "imagefolder", [])


ANNOTATED = st.lists(st.tuples(IMAGE, st.none() | st.lists(BOX, max_size=3)), min_size=1, max_size=5)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANNOTATED, st.lists(st.lists(BOX, min_size=1, max_size=2), max_size=2), NOISE,
       st.booleans())
def test_yolo_trees_account_for_every_file_and_entry(images, orphans, noise, bad_ids):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write(root, "classes.txt", "cat\ndog\n")
        parsed = []

        def lines(boxes):
            return "".join(f"{9 if bad_ids and k == 0 else c} {(x1 + x2) / 2 / W} {(y1 + y2) / 2 / H} "
                           f"{(x2 - x1) / W} {(y2 - y1) / H}\n" for k, (c, (x1, y1, x2, y2)) in enumerate(boxes))

        for i, (kind, boxes) in enumerate(images):
            _image(root, f"{i}.jpg", kind, i)
            if boxes is not None:
                write(root, f"{i}.txt", lines(boxes))
                parsed.append(f"{i}.txt")
        for j, boxes in enumerate(orphans):  # no image of that name: quarantined, never parsed
            write(root, f"orphan{j}.txt", lines(boxes))
        for rel in noise:
            write(root, rel, b"noise")
        check(root, "yolo", parsed)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANNOTATED, st.lists(st.lists(BOX, max_size=2), max_size=2), NOISE)
def test_voc_trees_account_for_every_file_and_entry(images, orphans, noise):
    names = ["cat", "dog"]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        parsed = []
        for i, (kind, boxes) in enumerate(images):
            _image(root, f"{i}.jpg", kind, i)
            if boxes is not None:
                write(root, f"{i}.xml", labelimg_xml(f"{i}.jpg", [(names[c], *b) for c, b in boxes]))
                parsed.append(f"{i}.xml")
        for j, boxes in enumerate(orphans):  # parsed, then quarantined: their entries go with them
            write(root, f"orphan{j}.xml", labelimg_xml(f"orphan{j}.jpg", [(names[c], *b) for c, b in boxes]))
            parsed.append(f"orphan{j}.xml")
        for rel in noise:
            write(root, rel, b"noise")
        check(root, "voc", parsed)


def test_every_fate_has_its_words_in_the_summary():
    from pipeline.reports.summary import ENTRY_WORDS, FILE_WORDS

    assert list(FILE_WORDS) == ["total", *FILE_FATES]
    assert list(ENTRY_WORDS) == ["total", *ENTRY_FATES]
