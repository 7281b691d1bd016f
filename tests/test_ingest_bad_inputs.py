"""A folder of 20+ kinds of bad input: exit 0, each bad file quarantined with a specific
reason, every good file ingested, accepted + quarantined = inputs."""

import json
import os
import random
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image

from tests.conftest import REPO, tree_digest

XXE = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       "<annotation><filename>xxe.jpg</filename><object><name>&x;</name></object></annotation>")
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
          '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><annotation><filename>laughs.jpg</filename>'
          "<object><name>&c;</name></object></annotation>")


def voc(filename, objects=(), size=None):
    o = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                f"<ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objects)
    s = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    return f"<annotation><filename>{filename}</filename>{s}{o}</annotation>"


def png_header_only(w, h) -> bytes:
    """A PNG whose header claims w x h (a decompression bomb's header)."""
    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def rgb(seed, w=48, h=32):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def build(root):
    """Return (expected file-level reasons, expected object-level reasons, good inputs)."""
    src = root / "src"
    src.mkdir(parents=True)
    (root / "outside.jpg").write_bytes(b"secret")
    bad, objects, good = {}, {}, []

    def img(name, seed, **kw):
        Image.fromarray(rgb(seed)).save(src / name, **kw)

    def xml(name, text):
        (src / name).write_text(text)

    # --- good inputs, some odd: each must be ingested --------------------------------
    img("ok.jpg", 1, quality=90)
    xml("ok.xml", voc("ok.jpg", [("cat", 5, 5, 20, 20)], (48, 32)))
    Image.fromarray(rgb(2)).save(src / "png_named.jpg", format="PNG")  # PNG named .jpg
    xml("png_named.xml", voc("png_named", [("cat", 1, 1, 10, 10)]))  # filename without extension
    Image.fromarray(rgb(3)).convert("CMYK").save(src / "cmyk.jpg")
    xml("cmyk.xml", voc("CMYK.JPG", [("dog", 1, 1, 10, 10)]))  # filename differs in case
    Image.fromarray((np.arange(48 * 32, dtype=np.uint16).reshape(32, 48) * 40)).save(src / "gray16.png")
    Image.fromarray(rgb(4)).convert("P").save(src / "palette.gif")
    for o in (3, 6, 8):  # EXIF orientations, annotated in the stored frame
        exif = Image.Exif()
        exif[0x0112] = o
        Image.fromarray(rgb(10 + o)).save(src / f"exif{o}.jpg", exif=exif.tobytes(), quality=95)
        xml(f"exif{o}.xml", voc(f"exif{o}.jpg", [("cat", 3, 3, 12, 20)], (48, 32)))
    Image.fromarray(rgb(5)).save(src / "naïve (1).png")  # non-ASCII, parenthesised
    img("background.png", 6)  # no annotation: a background sample
    good += ["ok.jpg", "png_named.jpg", "cmyk.jpg", "gray16.png", "palette.gif", "exif3.jpg", "exif6.jpg",
             "exif8.jpg", "naïve (1).png", "background.png"]

    # --- bad images --------------------------------------------------------------------
    (src / "empty.jpg").write_bytes(b"")
    bad["empty.jpg"] = "empty-file"
    jpeg = (src / "ok.jpg").read_bytes()
    (src / "cut_header.jpg").write_bytes(jpeg[:200])
    bad["cut_header.jpg"] = "truncated-or-corrupt"
    (src / "cut_scan.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    bad["cut_scan.jpg"] = "truncated-or-corrupt"
    (src / "notes.txt").write_text("not an image")  # a text file: ignored with why (counted, not lost)
    (src / "notes.jpg").write_text("not an image")  # an image by its name: decoded and refused
    bad["notes.jpg"] = "not-an-image"
    (src / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: skipped and counted in report.json
    Image.fromarray(rgb(7, 4, 4)).save(src / "tiny.png")
    bad["tiny.png"] = "too-small"
    (src / "bomb.png").write_bytes(png_header_only(60000, 60000))
    bad["bomb.png"] = "too-many-pixels"
    # Fixed bytes: about 3 in 1,000 random tails after the PNG signature get past PIL's
    # identification and fail later as truncated-or-corrupt (a flaky CI run, 2026-12-07).
    (src / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(90).randbytes(64))
    bad["garbage.png"] = "not-an-image"  # no plugin accepts it
    (src / "saved_page.jpg").write_text("<html>404 not found</html>")
    bad["saved_page.jpg"] = "not-an-image"
    Image.fromarray(rgb(40)).save(src / "imageNotFound.gif")  # decodes fine: caught by name
    bad["imageNotFound.gif"] = "placeholder"
    os.symlink(root / "outside.jpg", src / "link.jpg")
    bad["link.jpg"] = "path-outside-root"

    # --- bad annotation files ------------------------------------------------------------
    img("xxe.jpg", 20)
    xml("xxe.xml", XXE)
    bad["xxe.xml"] = "unsafe-xml"
    bad["xxe.jpg"] = "annotation-unusable"
    img("laughs.jpg", 21)
    xml("laughs.xml", LAUGHS)
    bad["laughs.xml"] = "unsafe-xml"
    bad["laughs.jpg"] = "annotation-unusable"
    xml("broken.xml", "<annotation><object>")
    bad["broken.xml"] = "malformed-xml"
    xml("html.xml", "<html><body/></html>")
    bad["html.xml"] = "not-voc"
    xml("orphan.xml", voc("nowhere.jpg", [("cat", 1, 1, 5, 5)]))
    bad["orphan.xml"] = "annotation-without-image"
    xml("escape.xml", voc("../outside.jpg", [("cat", 1, 1, 5, 5)]))
    bad["escape.xml"] = "path-outside-root"
    xml("ok_again.xml", voc("ok.jpg", [("cat", 1, 1, 5, 5)]))
    bad["ok_again.xml"] = "duplicate-annotation"

    # --- bad objects inside a good annotation: the image stays, each row is refused -------
    img("rows.jpg", 30)
    xml("rows.xml", voc("rows.jpg", [
        ("cat", 5, 5, 20, 20),        # 0 good
        ("cat", 20, 5, 5, 20),        # 1 inverted
        ("cat", 6, 6, 5, 20),         # 2 zero area (1-based inclusive: xmin 6 -> 5.0 == xmax 5)
        ("cat", "nan", 5, 20, 20),    # 3 NaN: not a number to the strict parser
        ("cat", 100, 100, 120, 120),  # 4 outside the image
        ("cat", 5, 5, 20, 20),        # 5 duplicate of 0
        ("cat", "x", 5, 20, 20),      # 6 not a number
        ("zebra", 1, 1, 9, 9),        # 7 unknown class
        ("dog", -5, -5, 30, 30),      # 8 clipped, kept
    ]))
    rows = (src / "rows.xml").read_text()
    (src / "rows.xml").write_text(rows.replace("</annotation>", "<object><name>cat</name></object>"  # 9
                                                "<object><bndbox/></object></annotation>"))  # 10
    objects.update({9: "missing-box", 10: "missing-label"})
    os.mkfifo(src / "pipe.jpg")  # a FIFO would hang a naive reader
    bad["pipe.jpg"] = "not-a-regular-file"
    objects.update({1: "inverted-box", 2: "zero-area-box", 3: "bad-coordinate", 4: "outside-image",
                    5: "duplicate-object", 6: "bad-coordinate", 7: "unknown-class"})
    good.append("rows.jpg")
    return src, bad, objects, good


def fates_ignored(report: dict) -> list[str]:
    return report["sources"][0]["fates"].get("ignored_examples", [])


def test_twenty_kinds_of_bad_input(tmp_path):
    src, bad, objects, good = build(tmp_path)
    kinds = set(bad.values()) | set(objects.values())
    assert len(bad) + len(objects) >= 25 and len(kinds) >= 20
    (tmp_path / "params.yaml").write_text(
        "ingest: {format: voc, workers: 2, min_size: 8, max_pixels: 100000000, classes: [cat, dog]}\n")
    before = tree_digest(src)
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pipeline", "ingest", str(src), "--out", str(tmp_path / "ds")]
    # So much lost is refused: exit 3, one line, nothing written ...
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: data lost: ") and "inputs quarantined" in r.stderr
    assert "object entries refused" in r.stderr and "--allow-loss" in r.stderr
    assert not (tmp_path / "ds").exists()
    # ... unless accepted: the same line as a warning after the summary.
    r = subprocess.run([*cmd, "--allow-loss"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("warning: data lost: ")
    assert r.stdout.splitlines()[-1].endswith("accepted (ingest.on_loss: warn)")
    assert tree_digest(src) == before  # nothing written into the source tree
    rows = [json.loads(line) for line in (tmp_path / "ds" / "quarantine.jsonl").read_text().splitlines()]
    files = {q["path"]: q["reason"] for q in rows if "index" not in q}
    assert files == bad
    assert {q["index"]: q["reason"] for q in rows if "index" in q} == objects
    assert all(q["detail"] for q in rows)
    assert {q.get("source") for q in rows} == {"src"}  # every row names the source (report.json: its path)
    samples = [json.loads(line) for line in (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(s["id"] for s in samples) == sorted(good)
    # accepted + quarantined + hidden = inputs: every image file, every annotation without its image
    annotated = {"ok.xml", "png_named.xml", "cmyk.xml", "exif3.xml", "exif6.xml", "exif8.xml", "rows.xml"}
    inputs = {p.name for p in src.iterdir()} - annotated
    report = json.loads((tmp_path / "ds" / "report.json").read_text())
    assert report["skipped_hidden"] == 1 and report["unlisted"] == 0
    assert fates_ignored(report) == ["notes.txt (not an image: a .txt file)"]
    assert len(samples) + len(files) + report["skipped_hidden"] + 1 == len(inputs)
    fates = report["fates"]
    assert fates["files"]["total"] == len(list(src.iterdir()))
    assert fates["files"]["annotations"] == len(annotated) and fates["files"]["quarantined"] == len(files)
    e = fates["entries"]
    assert (e["objects"], e["refused"]) == (sum(len(s["objects"]) for s in samples), len(objects))
    by = {s["id"]: s for s in samples}
    assert [o["box"] for o in by["rows.jpg"]["objects"]] == [[4, 4, 20, 20], [0, 0, 30, 30]]
    assert "clipped:1" in by["rows.jpg"]["notes"]
    assert "annotation-exif-mapped:6" in by["exif6.jpg"]["notes"]
    assert "annotation-exif-mapped:8" in by["exif8.jpg"]["notes"]
    (x1, y1, x2, y2), = [o["box"] for o in by["exif6.jpg"]["objects"]]
    assert (by["exif6.jpg"]["width"], by["exif6.jpg"]["height"]) == (32, 48) and (x2 - x1, y2 - y1) == (18, 10)
    assert "background" in by["background.png"]["notes"]
    assert by["cmyk.jpg"]["channels"] == 3 and by["gray16.png"]["channels"] == 1
