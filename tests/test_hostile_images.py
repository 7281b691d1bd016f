"""Hostile and awkward image files: one table, one ingest run, one row per file.

Every row is generated here (no binaries in the repository). The run must exit 0;
each file is either accepted (with its notes and channels) or quarantined with its
own reason; accepted + quarantined = inputs; the source tree is byte-identical
afterwards. The unit tables below pin the pieces: the mode policy for every mode
Pillow opens from a file, EXIF orientation of any stored type, the decode-cost
budget, and the fault boundary.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.ingest.build import _Job, _process
from pipeline.ingest.candidate import Candidate
from pipeline.images.imageread import DecodeBudget, ImageRejected, load_checked, parse_orientation, read_checked
from pipeline.record import Source
from tests.conftest import REPO, tree_digest

W, H = 48, 32


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _gray(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W), dtype=np.uint8)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_raw(w: int, h: int, depth: int, color_type: int, rows: np.ndarray | None) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit gray+alpha or 16-bit RGB(A));
    ``rows=None`` gives a header whose pixels are not there (a decode bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h)) if rows is not None else b"\0" * 64
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def png16(channels: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    a = np.random.default_rng(seed).integers(0, 65536, (H, W, channels), dtype=np.uint16).astype(">u2")
    color_type = {2: 4, 3: 2, 4: 6}[channels]  # gray+alpha, RGB, RGBA
    return png_raw(W, H, 16, color_type, a.reshape(H, W * channels)), a


def gif_header_only(w: int, h: int) -> bytes:
    """A valid 35-byte GIF: a ``w`` x ``h`` screen (Pillow's canvas, filled with the
    background) holding one 1x1 frame; two palette entries."""
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
            + b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00" + b";")


def frames(fmt: str, mode: str, n: int = 3, **kw) -> bytes:
    imgs = [Image.fromarray(_gray(k) if mode == "L" else _rgb(k)) for k in range(n)]
    return _encode(imgs[0], fmt, save_all=True, append_images=imgs[1:], **kw)


def exif_jpeg(value, seed: int = 0) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _encode(Image.fromarray(_rgb(seed)), "JPEG", exif=exif.tobytes(), quality=95)


def exif_jpeg_raw(field_type: int, count: int, value: bytes) -> bytes:
    """A JPEG whose EXIF holds one Orientation entry of any TIFF type, written by hand."""
    entry = struct.pack("<HHI", 0x0112, field_type, count) + value.ljust(4, b"\0")[:4]
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    jpeg = _encode(Image.fromarray(_rgb(5)), "JPEG", quality=95)
    app1 = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def tiff_float(special: bool) -> bytes:
    a = np.random.default_rng(3).random((H, W), dtype=np.float32) * 7 - 2
    if special:
        a[0, :3] = [np.nan, np.inf, -np.inf]
    return _encode(Image.fromarray(a), "TIFF")


def gray16(mode: str) -> bytes:
    a = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 40).astype(np.uint16)
    if mode == "I;16B":
        return _encode(Image.frombytes("I;16B", (W, H), a.astype(">u2").tobytes()), "TIFF")
    return _encode(Image.fromarray(a), "TIFF" if mode == "I;16-tiff" else "PNG")


# name -> (bytes, expected reason or None, notes that must be present, channels)
@functools.lru_cache(maxsize=1)
def image_rows() -> dict[str, tuple[bytes, str | None, tuple[str, ...], int]]:
    p_trans = Image.fromarray(_rgb(1)).convert("P")
    p_trans.info["transparency"] = 0
    rows = {
        # multi-frame: the first frame, noted (an AssertionError inside Pillow before)
        "multipage.tif": (frames("TIFF", "L"), None, ("first-frame-of:3",), 1),
        "multipage_rgb.tif": (frames("TIFF", "RGB"), None, ("first-frame-of:3",), 3),
        "animated_gray.gif": (frames("GIF", "L"), None, ("first-frame-of:3",), 1),
        "animated.gif": (frames("GIF", "RGB"), None, ("first-frame-of:3",), 3),
        "animated.png": (frames("PNG", "RGB"), None, ("first-frame-of:3",), 3),
        "animated.webp": (frames("WEBP", "RGB", lossless=True), None, ("first-frame-of:3",), 3),
        # EXIF orientation stored as any type
        "exif_short6.jpg": (exif_jpeg(6), None, ("exif-transposed:6",), 3),
        "exif_ascii6.jpg": (exif_jpeg_raw(2, 2, b"6\0"), None, ("exif-transposed:6",), 3),
        "exif_undefined6.jpg": (exif_jpeg_raw(7, 1, b"6"), None, ("exif-transposed:6",), 3),
        "exif_long3.jpg": (exif_jpeg_raw(4, 1, struct.pack("<I", 3)), None, ("exif-transposed:3",), 3),
        # two SHORTs: Pillow keeps the first (with a warning, silenced during the decode)
        "exif_pair.jpg": (exif_jpeg_raw(3, 2, struct.pack("<HH", 6, 3)), None, ("exif-transposed:6",), 3),
        "exif_undefined_short.jpg": (exif_jpeg_raw(7, 2, b"\x06\0"), None, ("orientation-ignored:b'\\x06",), 3),
        "exif_huge.jpg": (exif_jpeg_raw(4, 1, struct.pack("<I", 2**32 - 1)), None,
                          ("orientation-ignored:4294967295",), 3),
        "exif_zero.jpg": (exif_jpeg(0), None, ("orientation-ignored:0",), 3),
        "exif_text.jpg": (exif_jpeg_raw(2, 3, b"up\0"), None, ("orientation-ignored:'up'",), 3),
        "exif_signed.jpg": (exif_jpeg_raw(9, 1, struct.pack("<i", -6)), None, ("orientation-ignored:-6",), 3),
        "exif_rational.jpg": (exif_jpeg_raw(5, 1, b"\0\0\0\0"), None, ("orientation-ignored",), 3),
        # every mode Pillow opens from a file: only L or RGB come out
        "mode_1.png": (_encode(Image.fromarray(_gray()).convert("1"), "PNG"), None, ("mode:1->L",), 1),
        "mode_1.bmp": (_encode(Image.fromarray(_gray()).convert("1"), "BMP"), None, ("mode:1->L",), 1),
        "mode_L.png": (_encode(Image.fromarray(_gray(2)), "PNG"), None, (), 1),
        "mode_LA.png": (_encode(Image.fromarray(_gray(3)).convert("LA"), "PNG"), None, ("mode:LA->L",), 1),
        "mode_LA.tif": (_encode(Image.fromarray(_gray(3)).convert("LA"), "TIFF"), None, ("mode:LA->L",), 1),
        "mode_P.png": (_encode(Image.fromarray(_rgb(4)).convert("P"), "PNG"), None, ("mode:P->RGB",), 3),
        "mode_P_transparent.png": (_encode(p_trans, "PNG"), None, ("mode:P->RGB",), 3),
        "mode_PA.tif": (_encode(Image.fromarray(_rgb(4)).convert("PA"), "TIFF"), None, ("mode:PA->RGB",), 3),
        "mode_RGB.png": (_encode(Image.fromarray(_rgb(5)), "PNG"), None, (), 3),
        "mode_RGBA.png": (_encode(Image.fromarray(_rgb(6)).convert("RGBA"), "PNG"), None, ("mode:RGBA->RGB",), 3),
        "mode_CMYK.jpg": (_encode(Image.fromarray(_rgb(7)).convert("CMYK"), "JPEG"), None, ("mode:CMYK->RGB",), 3),
        "mode_CMYK.tif": (_encode(Image.fromarray(_rgb(7)).convert("CMYK"), "TIFF"), None, ("mode:CMYK->RGB",), 3),
        "mode_YCbCr.tif": (_encode(Image.fromarray(_rgb(8)).convert("YCbCr"), "TIFF"), None,
                           ("mode:YCbCr->RGB",), 3),
        "mode_YCbCr.jpg": (_encode(Image.fromarray(_rgb(8)).convert("YCbCr"), "JPEG"), None, (), 3),
        "mode_LAB.tif": (_encode(Image.fromarray(_rgb(9)).convert("LAB"), "TIFF"), None, ("mode:LAB->RGB",), 3),
        "mode_I.tif": (_encode(Image.fromarray((_gray(10).astype(np.int32) - 100) * 1000), "TIFF"), None,
                       ("mode:I->L",), 1),
        "mode_I16.png": (gray16("I;16"), None, ("mode:I;16->L",), 1),
        "mode_I16.tif": (gray16("I;16-tiff"), None, ("mode:I;16->L",), 1),
        "mode_I16B.tif": (gray16("I;16B"), None, ("mode:I;16B->L",), 1),
        "mode_F.tif": (tiff_float(False), None, ("mode:F->L",), 1),
        "mode_F_nan_inf.tif": (tiff_float(True), None, ("mode:F->L",), 1),
        "gray_alpha16.png": (png16(2)[0], None, ("mode:LA;16->L",), 1),
        "rgb16.png": (png16(3)[0], None, (), 3),
        "rgba16.png": (png16(4)[0], None, ("mode:RGBA->RGB",), 3),
        "rgba.webp": (_encode(Image.fromarray(np.dstack([_rgb(11), _gray(12)])), "WEBP", lossless=True), None,
                      ("mode:RGBA->RGB",), 3),
        # bombs: refused from the header, before the decode
        "bomb_35_bytes.gif": (gif_header_only(13000, 13000), "decode-too-costly", (), 0),
        "bomb_rgb.png": (png_raw(13000, 13000, 8, 2, None), "decode-too-costly", (), 0),
        "bomb_rgba16.png": (png_raw(10000, 10000, 16, 6, None), "decode-too-costly", (), 0),
        "bomb_pixels.png": (png_raw(60000, 60000, 8, 0, None), "too-many-pixels", (), 0),
    }
    assert len(gif_header_only(13000, 13000)) == 35
    return rows


def _special_files(src: Path, outside: Path) -> dict[str, str]:
    """Links and special files inside the tree; name -> expected reason."""
    os.mkfifo(src / "c" / "fifo.png")
    (src / "c" / "dangling.png").symlink_to("nowhere.png")
    (src / "c" / "loop.png").symlink_to("loop.png")
    (src / "c" / "ping.png").symlink_to("pong.png")
    (src / "c" / "pong.png").symlink_to("ping.png")
    reasons = {"fifo.png": "not-a-regular-file", "dangling.png": "dangling-link", "loop.png": "link-loop",
               "ping.png": "link-loop", "pong.png": "link-loop"}
    if os.path.exists("/dev/zero"):  # a device that never ends, linked from inside the tree
        os.symlink("/dev/zero", outside / "zero")
        (src / "c" / "device.png").symlink_to(outside / "zero")
        reasons["device.png"] = "path-outside-root"
    return reasons


def test_hostile_image_corpus(tmp_path):
    src = tmp_path / "src"
    (src / "c").mkdir(parents=True)
    rows = image_rows()
    for name, (data, *_rest) in rows.items():
        (src / "c" / name).write_bytes(data)
    special = _special_files(src, tmp_path)
    (tmp_path / "params.yaml").write_text("ingest: {workers: 2, min_size: 8, on_loss: warn}\n")  # hostile: all
    before = tree_digest(src)
    parent_before = sorted(p.name for p in tmp_path.iterdir())
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(src), "--out", str(tmp_path / "ds")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert tree_digest(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(parent_before + ["ds"])
    quarantine = [json.loads(line) for line in (tmp_path / "ds" / "quarantine.jsonl").read_text().splitlines()]
    got_reasons = {q["path"].split("/")[-1]: q["reason"] for q in quarantine}
    samples = {s["id"].split("/")[-1]: s for s in map(json.loads, (tmp_path / "ds" / "manifest.jsonl")
                                                       .read_text().splitlines())}
    inputs = set(rows) | set(special)
    assert len(samples) + len(quarantine) == len(inputs)
    assert set(samples) | set(got_reasons) == inputs
    expected = {n: reason for n, (_, reason, _, _) in rows.items() if reason} | special
    assert got_reasons == expected
    for name, (_, reason, notes, channels) in rows.items():
        if reason:
            continue
        s = samples[name]
        assert s["channels"] == channels, name
        for note in notes:
            assert any(n.startswith(note) for n in s.get("notes", [])), (name, s.get("notes"))
        if "exif-transposed:6" in notes:
            assert (s["width"], s["height"]) == (H, W), name
    for q in quarantine:
        assert q["detail"] and " at 0x" not in q["detail"]
    by_name = {q["path"].split("/")[-1]: q["detail"] for q in quarantine}
    assert "13000x13000 P image needs about" in by_name["bomb_35_bytes.gif"]
    assert "ingest.max_decode_bytes" in by_name["bomb_35_bytes.gif"]


# --- the mode policy, pixel by pixel --------------------------------------------------

def _load(data: bytes):
    return load_checked(Path("x"), 1, 10**9, data, embedded=True)


@pytest.mark.parametrize("name", [n for n, row in image_rows().items() if row[1] is None])
def test_every_mode_becomes_l_or_rgb(name):
    data, _, _, channels = image_rows()[name]
    img, _, info = _load(data)
    assert img.mode == ("L" if channels == 1 else "RGB")
    assert info.channels == channels and img.size in ((W, H), (H, W))
    assert np.asarray(img).dtype == np.uint8


def test_gray_alpha16_keeps_the_gray_high_byte():
    data, a = png16(2, seed=4)
    img, _, _ = _load(data)
    assert np.array_equal(np.asarray(img), (a[:, :, 0] >> 8).astype(np.uint8))


def test_rgb16_keeps_the_high_bytes():
    data, a = png16(3, seed=5)
    img, _, _ = _load(data)
    assert np.array_equal(np.asarray(img), (a >> 8).astype(np.uint8))


def test_float_with_nan_and_infinities_scales_its_finite_range():
    img, _, _ = _load(tiff_float(True))
    px = np.asarray(img)
    assert px[0, 0] == 0 and px[0, 1] == 255 and px[0, 2] == 0  # NaN -> min, +inf -> max, -inf -> min
    assert px[1:].min() == 0 and px[1:].max() == 255


def test_first_frame_is_the_one_kept():
    img, _, info = _load(frames("TIFF", "L"))
    assert np.array_equal(np.asarray(img), _gray(0)) and "first-frame-of:3" in info.notes


# --- EXIF orientation of any stored type ------------------------------------------------

@pytest.mark.parametrize("value, expected, noted", [
    (6, 6, False), (1, 1, False), ("6", 6, False), (" 8\0", 8, False), (b"3", 3, False), (b"3\0", 3, False),
    ((6,), 6, False), ([2], 2, False), (6.0, 6, False), (True, 1, True), (0, 1, True), (9, 1, True),
    (-6, 1, True), (2**64, 1, True), ((6, 6), 1, True), ((), 1, True), ("６", 1, True), ("1_0", 1, True),
    ("", 1, True), (b"\x06", 1, True), (float("nan"), 1, True), (float("inf"), 1, True), (6.5, 1, True),
    (None, 1, True), ({"a": 1}, 1, True),
])
def test_parse_orientation(value, expected, noted):
    got, note = parse_orientation(value)
    assert got == expected and (note is not None) == noted
    if note:
        assert note.startswith("orientation-ignored:") and len(note) <= len("orientation-ignored:") + 24


# --- the decode-cost budget --------------------------------------------------------------

def test_budget_counts_workers_and_names_the_numbers():
    budget = DecodeBudget.resolve(1_000_000, 2)
    assert budget.per_image == 500_000
    DecodeBudget.resolve(1_000_000, 1).check("RGB", 200, 200)  # 280,000 bytes: fits one worker
    with pytest.raises(ImageRejected) as err:
        budget.check("P", 220, 220)  # 532,400 x 2 workers
    assert err.value.reason == "decode-too-costly"
    assert "220x220 P image needs about 532400 bytes" in err.value.detail
    assert "x 2 decode worker(s) = 1064800 bytes" in err.value.detail
    assert "ingest.max_decode_bytes = 1000000" in err.value.detail


def test_default_budget_is_at_most_half_the_available_memory(monkeypatch):
    from pipeline.images import imageread as images

    monkeypatch.setattr(images, "available_memory", lambda: 3 << 30)
    b = DecodeBudget.resolve(None, 4)
    assert b.total == 3 << 29 and "half the available memory" in b.origin
    monkeypatch.setattr(images, "available_memory", lambda: 64 << 30)
    assert DecodeBudget.resolve(None, 4).per_image == images.DECODE_BYTES_PER_WORKER


def test_the_35_byte_gif_is_refused_before_decoding():
    with pytest.raises(ImageRejected) as err:
        _load(gif_header_only(13000, 13000))
    assert err.value.reason == "decode-too-costly"


def test_max_decode_bytes_param_reaches_the_workers(tmp_path):
    src = tmp_path / "src" / "c"
    src.mkdir(parents=True)
    Image.fromarray(np.zeros((220, 220, 3), np.uint8) + 7).convert("P").save(src / "big.png")
    Image.fromarray(_rgb(1)).save(src / "small.png")
    (tmp_path / "params.yaml").write_text("ingest: {workers: 2, max_decode_bytes: 1000000, on_loss: warn}\n")
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(tmp_path / "src"), "--out",
                        str(tmp_path / "ds")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (q,) = [json.loads(line) for line in (tmp_path / "ds" / "quarantine.jsonl").read_text().splitlines()]
    assert q["path"] == "c/big.png" and q["reason"] == "decode-too-costly"
    assert "x 2 decode worker(s)" in q["detail"]


# --- the fault boundary ----------------------------------------------------------------------

class _Weird(Exception):
    pass


@pytest.mark.parametrize("exc, detail", [
    (_Weird("bad state in <_io.BytesIO object at 0x7f3a2b1c4d50>"), "_Weird: bad state in <_io.BytesIO object>"),
    (AssertionError(), "AssertionError"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    (MemoryError(), "MemoryError: not enough memory"),
    (RecursionError("maximum recursion depth exceeded"), "RecursionError: maximum recursion depth exceeded"),
])
def test_any_decoder_failure_is_one_quarantined_image(tmp_path, monkeypatch, exc, detail):
    from pipeline.images import imageread as images

    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr(images, "load_checked", broken)
    (tmp_path / "a.png").write_bytes(_encode(Image.fromarray(_rgb()), "PNG"))
    c = Candidate(id="c/a.png", path=str(tmp_path / "a.png"),
                  source=Source(format="imagefolder", path="c/a.png", root=str(tmp_path)), label="c")
    name, payload, info, reason, got, tiles = _process(_Job(c, 1, 10**9))
    assert (name, payload, info, reason, tiles) == ("", b"", None, "decode-failed", ())
    assert got.startswith(detail) and "0x" not in got


def test_read_checked_keeps_the_reader_reasons(tmp_path):
    os.mkfifo(tmp_path / "p.png")
    with pytest.raises(ImageRejected) as err:
        read_checked(tmp_path / "p.png", 1, 10**9)
    assert err.value.reason == "not-a-regular-file" and "fifo" in err.value.detail


# --- property: corrupted bytes never escape the fault boundary ------------------------------

def _seeds() -> list[bytes]:
    rows = image_rows()
    return [rows[n][0] for n in ("multipage.tif", "animated.gif", "animated.png", "animated.webp", "mode_P.png",
                                 "mode_CMYK.jpg", "exif_ascii6.jpg", "mode_I16B.tif", "mode_F.tif", "mode_1.bmp",
                                 "gray_alpha16.png")]


def test_corrupted_images_are_accepted_or_rejected_never_crash():
    """Random byte changes, truncations and splices of real files in every format: each
    either decodes to L or RGB or is an ImageRejected with a reason and an address-free
    detail. A small decode budget keeps a mutated header from costing real memory."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    budget = DecodeBudget(64 << 20)
    seeds = _seeds()

    @settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(seeds) - 1),
           st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
           st.one_of(st.none(), st.floats(0, 1)), st.booleans())
    def check(k, flips, cut, splice):
        data = bytearray(seeds[k])
        for where, value in flips:
            data[int(where * len(data))] = value
        if cut is not None:
            data = data[: int(cut * len(data))]
        if splice:
            data += seeds[(k + 1) % len(seeds)]
        try:
            _, img, _, info = read_checked(Path("x.img"), 1, 4_000_000, bytes(data), embedded=True, budget=budget)
        except ImageRejected as err:
            assert err.reason and err.detail is not None and " at 0x" not in err.detail
            return
        assert img.mode in ("L", "RGB") and info.channels == (1 if img.mode == "L" else 3)

    check()


# --- non-UTF-8 file names ------------------------------------------------------------------------

def _bytes_digest(root: Path) -> str:
    """``tree_digest`` for names that are not UTF-8 (hashed as their bytes)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(os.fsencode(p.relative_to(root)))
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("fmt", ["imagefolder", "voc"])
def test_non_utf8_names_get_stable_printable_ids(tmp_path, fmt):
    """``caf\\xe9.png`` (Latin-1 bytes on a UTF-8 system) is ingested as ``caf%E9.png``;
    two runs give the same bytes."""
    src = tmp_path / "src"
    folder = os.fsencode(src / "c") if fmt == "imagefolder" else os.fsencode(src)
    os.makedirs(folder)
    png = _encode(Image.fromarray(_rgb(1)), "PNG")
    with open(folder + b"/caf\xe9.png", "wb") as f:
        f.write(png)
    if fmt == "imagefolder":
        os.makedirs(os.fsencode(src) + b"/d\xe9")
        with open(os.fsencode(src) + b"/d\xe9/x.png", "wb") as f:
            f.write(png)
    before = _bytes_digest(src)
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    manifests = []
    for run in ("a", "b"):
        r = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(src), "--format", fmt, "--out",
                            str(tmp_path / run)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        manifests.append((tmp_path / run / "manifest.jsonl").read_bytes())
    assert manifests[0] == manifests[1] and _bytes_digest(src) == before
    rows = {s["id"]: s for s in map(json.loads, manifests[0].decode("utf-8").splitlines())}
    if fmt == "imagefolder":
        assert set(rows) == {"c/caf%E9.png", "d%E9/x.png"} and rows["d%E9/x.png"]["label"] == "d%E9"
    else:
        assert set(rows) == {"caf%E9.png"}
