"""ImageFolder ingest and the image policy: nothing lost, nothing modified."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import IngestParams
from pipeline.core.errors import InputError
from pipeline.ingest import ingest
from tests.conftest import make_imagefolder, tree_digest


def params(**kw):
    return IngestParams(workers=1, **kw)


def test_imagefolder_counts_labels_and_source_untouched(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=5)
    before = tree_digest(src)
    ds = ingest(src, tmp_path / "out", params())
    assert tree_digest(src) == before
    assert len(ds.samples) == 15 and ds.classes == ("class0", "class1", "class2")
    assert {s.label for s in ds.samples} == set(ds.classes)
    assert all(ds.read_image(s) and s.split is None for s in ds.samples)
    assert ds.quarantine == ()
    # PNG bytes are stored unchanged when nothing needed converting.
    s = next(x for x in ds.samples if x.id == "class1/002.png")
    assert ds.read_image(s) == (src / "class1/002.png").read_bytes()


def test_given_split_is_kept(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=3, splits=("train", "valid", "test"))
    ds = ingest(src, tmp_path / "out", params())
    assert {s.split for s in ds.samples} == {"train", "val", "test"}
    assert ds.classes == ("class0", "class1")


def test_parallel_equals_serial(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=40)
    a = ingest(src, tmp_path / "a", IngestParams(workers=1))
    b = ingest(src, tmp_path / "b", IngestParams(workers=2))
    assert (a.root / "manifest.jsonl").read_bytes() == (b.root / "manifest.jsonl").read_bytes()


@pytest.mark.parametrize("n, workers", [(64, 2), (70, 3), (2000, 2), (100_003, 16)])
def test_chunks_cover_every_job_once_and_shrink_to_the_end(n, workers):
    from pipeline.ingest.build import chunk_bounds

    bounds = list(chunk_bounds(n, workers))
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a < b for a, b in bounds) and all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) <= 256 and sizes == sorted(sizes, reverse=True)[:-1] + sizes[-1:]
    assert sizes[-2] <= 8  # the last chunks are small: no long idle tail
    assert len(bounds) <= -(-n // 8)  # yet far fewer round trips than jobs


def _bad_tree(root: Path) -> dict[str, str]:
    """Write a tree of bad and odd inputs; return {relative path: expected reason}."""
    good = make_imagefolder(root, classes=2, per_class=3, size=16)
    d = good / "class0"
    expected = {}
    (d / "empty.png").write_bytes(b"")
    expected["class0/empty.png"] = "empty-file"
    (d / "notes.png").write_text("not an image")  # an image by its name: decoded, and refused
    expected["class0/notes.png"] = "not-an-image"
    (d / "notes.txt").write_text("not an image")  # nobody's image: ignored with why, not lost data
    full = (d / "000.png").read_bytes()
    buf = np.full((64, 64, 3), 128, np.uint8)
    Image.fromarray(buf).save(d / "whole.jpg", quality=90)
    jpeg = (d / "whole.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(jpeg[:300])  # cut inside the header
    (d / "cut.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])  # cut inside the scan data
    (d / "whole.jpg").unlink()
    expected["class0/truncated.jpg"] = "truncated-or-corrupt"
    expected["class0/cut.jpg"] = "truncated-or-corrupt"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(d / "tiny.png")
    expected["class0/tiny.png"] = "too-small"
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(d / "big.png")
    expected["class0/big.png"] = "too-many-pixels"
    (root / "README.md").write_text("stray file at the root")  # ignored, like notes.txt
    (root / "class1" / "stray.bin").write_text("x")
    expected["class1/stray.bin"] = "not-an-image"
    (root / "stray.jpg").write_bytes(full)
    expected["stray.jpg"] = "outside-class-dir"
    (d / "nested").mkdir()
    (d / "nested" / "x.png").write_bytes(full)
    expected["class0/nested/x.png"] = "outside-class-dir"
    (d / ".DS_Store").write_bytes(b"\x00\x01garbage")  # hidden: skipped and counted, not a row
    return expected


def test_bad_inputs_are_quarantined_with_reasons(tmp_path):
    src = tmp_path / "src"
    expected = _bad_tree(src)
    before = tree_digest(src)
    ds = ingest(src, tmp_path / "out", params(max_pixels=200 * 200, on_loss="warn"))  # 10 of 16 lost: accepted
    assert tree_digest(src) == before
    got = {r.path: r.reason for r in ds.quarantine}
    assert got == expected
    assert all(r.detail for r in ds.quarantine)
    files = [p for p in src.rglob("*") if p.is_file()]
    report = json.loads((ds.root / "report.json").read_text())
    assert report["skipped_hidden"] == 1 and report["sources"][0]["skipped_hidden_examples"] == ["class0/.DS_Store"]
    assert report["sources"][0]["fates"]["ignored_examples"] == ["README.md (not an image: a .md file)",
                                                        "class0/notes.txt (not an image: a .txt file)"]
    assert len(ds.samples) + len(ds.quarantine) + report["skipped_hidden"] + 2 == len(files)
    rows = [json.loads(l) for l in (ds.root / "quarantine.jsonl").read_text().splitlines()]
    assert len(rows) == len(expected)
    assert report["fates"]["files"] == {"samples": len(ds.samples), "annotations": 0, "indexes": 0,
                                        "quarantined": len(expected), "hidden": 1, "unlisted": 0, "ignored": 2,
                                        "total": len(files)}
    assert [x["loss"] for x in report["loss"]] == ["quarantined"]


def test_the_marker_of_a_tree_pipeline_wrote_is_not_counted_as_a_hidden_file(tmp_path):
    """A downloaded or exported tree carries pipeline's output marker at its top: it is
    neither a sample nor noise the user left (the default mnist5k report said
    "skipped_hidden: 1"). A file of that name deeper down is the user's, and counted."""
    from pipeline.core.outputs import MARKER, write_marker

    src = make_imagefolder(tmp_path / "src", classes=2, per_class=3)
    write_marker(src, "download")
    report = json.loads((ingest(src, tmp_path / "a", params()).root / "report.json").read_text())
    assert (report["skipped_hidden"], report["sources"][0]["skipped_hidden"]) == (0, 0)
    assert "skipped_hidden_examples" not in report["sources"][0]
    (src / "class0" / MARKER).write_text("{}")
    report = json.loads((ingest(src, tmp_path / "b", params()).root / "report.json").read_text())
    assert report["skipped_hidden"] == 1
    assert report["sources"][0]["skipped_hidden_examples"] == [f"class0/{MARKER}"]


def test_modes_exif_and_misnamed_formats_are_normalized(tmp_path):
    src = tmp_path / "src"
    d = src / "a"
    d.mkdir(parents=True)
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:5, :, 0] = 255  # red band on top
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)).save(d / "gray16.png")
    Image.fromarray(rgb).convert("P").save(d / "palette.gif")
    Image.fromarray(rgb).save(d / "really_png.jpg", format="PNG")
    Image.fromarray(rgb).convert("RGBA").save(d / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    Image.fromarray(rgb).save(d / "exif6.jpg", exif=exif.tobytes(), quality=95)
    ds = ingest(src, tmp_path / "out", params())
    assert ds.quarantine == ()
    by = {s.id.split("/")[-1]: s for s in ds.samples}
    assert by["cmyk.jpg"].channels == 3 and "mode:CMYK->RGB" in by["cmyk.jpg"].notes
    assert by["gray16.png"].channels == 1 and any(n.startswith("mode:I") for n in by["gray16.png"].notes)
    assert by["palette.gif"].channels == 3
    assert any(n.startswith("format:PNG-named") for n in by["really_png.jpg"].notes)
    assert by["alpha.png"].channels == 3
    e = by["exif6.jpg"]
    assert (e.width, e.height) == (20, 30) and "exif-transposed:6" in e.notes
    with Image.open(io.BytesIO(ds.read_image(e))) as img:
        assert img.size == (20, 30) and img.format == "PNG"
        # The red band that was on top is now on the right after the 90-degree turn.
        a = np.asarray(img.convert("RGB")).astype(int)
        assert a[:, -3:, 0].mean() > 200 and a[:, :3, 0].mean() < 50


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="nope.*not found"):
        ingest(tmp_path / "nope", tmp_path / "out", params())
    assert not (tmp_path / "out").exists()


def test_placeholder_named_image_is_quarantined_unless_the_policy_is_off(tmp_path):
    # The hymenoptera tree's stand-in: a GIF that decodes fine, in a class directory.
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=3, channels=3)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(src / "class0" / "imageNotFound.gif")
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"))  # 1 of 7: more than max_loss
    assert len(ds.samples) == 6
    (row,) = ds.quarantine
    assert (row.path, row.reason) == ("class0/imageNotFound.gif", "placeholder")
    assert "ingest.placeholder_names" in row.detail and "imagenotfound.*" in row.detail
    kept = ingest(src, tmp_path / "kept", params(placeholder_names=()))
    assert len(kept.samples) == 7 and kept.quarantine == ()


def test_quarantine_rows_name_the_source(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=1, per_class=2)
    (src / "stray.png").write_bytes(b"x")  # outside a class directory
    (src / "class0" / "broken.png").write_bytes(b"not a png")
    ds = ingest(src, tmp_path / "out", params(on_loss="warn"))
    # Rows name the source by its name, whatever the spelling; report.json keeps the path as given.
    assert sorted((r.path, r.reason, r.source) for r in ds.quarantine) == [
        ("class0/broken.png", "not-an-image", "src"), ("stray.png", "outside-class-dir", "src")]
    assert {s.source.root for s in ds.samples} == {"src"}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (source,) = report["sources"]
    assert {k: source[k] for k in ("format", "name", "path", "prefix", "layout", "unlisted", "skipped_hidden")} == {
        "format": "imagefolder", "name": "src", "path": str(src), "prefix": "", "layout": "imagefolder",
        "unlisted": 0, "skipped_hidden": 0}


def test_the_bytes_do_not_depend_on_how_the_source_is_spelled(tmp_path, monkeypatch):
    src = make_imagefolder(tmp_path / "src", classes=2, per_class=2)
    (src / "stray.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    ingest(Path("src"), tmp_path / "rel", params(on_loss="warn"))
    ingest(src.resolve(), tmp_path / "abs", params(on_loss="warn"))
    monkeypatch.chdir(src)
    ingest(Path("."), tmp_path / "dot", params(on_loss="warn"))
    for name in ("manifest.jsonl", "quarantine.jsonl"):
        data = (tmp_path / "rel" / name).read_bytes()
        assert data == (tmp_path / "abs" / name).read_bytes() == (tmp_path / "dot" / name).read_bytes()
        assert str(tmp_path).encode() not in data
