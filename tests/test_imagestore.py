"""The canonical dataset's image packs: plain tar, deterministic, read back exactly."""

import hashlib
import pickle
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.config import IngestParams
from pipeline.core.errors import InputError
from pipeline.images.imagestore import ImageReader, PackWriter, split_ref
from pipeline.ingest import ingest
from pipeline.datasets import load_dataset
from tests.conftest import make_imagefolder


@pytest.mark.parametrize("ref, expected", [
    ("images/00000.tar/ab.jpg", ("images/00000.tar", "ab.jpg")),
    ("images/00012.tar/sub/ab.png", ("images/00012.tar", "sub/ab.png")),
    ("images/ab.png", None),
    ("ab.tar", None),  # a file named .tar, not a member of one
])
def test_split_ref(ref, expected):
    assert split_ref(ref) == expected


def test_pack_round_trip_rollover_and_standard_tar(tmp_path):
    blobs = {f"{i:02d}.bin": bytes([i]) * (700 + 300 * i) for i in range(8)}
    with PackWriter(tmp_path, pack_bytes=4096) as w:
        refs = {name: w.add(name, data) for name, data in blobs.items()}
    files = sorted(p.name for p in (tmp_path / "images").iterdir())
    packs = [f for f in files if f.endswith(".tar")]
    assert len(packs) > 2 and packs[0] == "00000.tar"
    assert files == sorted(packs + [p + ".idx" for p in packs])  # each pack and its index, nothing else
    reader = ImageReader(tmp_path)
    assert {n: reader.read(r) for n, r in refs.items()} == blobs
    # Any tar tool reads the packs: every member, with its bytes, in write order.
    seen = {}
    for p in packs:
        with tarfile.open(tmp_path / "images" / p) as tar:
            for m in tar:
                assert m.mode == 0o644 and m.mtime == 0 and m.uid == 0
                seen[m.name] = tar.extractfile(m).read()
    assert seen == blobs and list(seen) == list(blobs)


def test_pack_refuses_a_name_twice(tmp_path):
    with PackWriter(tmp_path) as w:
        w.add("a.png", b"x")
        with pytest.raises(ValueError, match="stored twice"):
            w.add("a.png", b"y")


def test_reader_threads_pickling_and_plain_files(tmp_path):
    with PackWriter(tmp_path) as w:
        refs = [w.add(f"{i}.bin", hashlib.sha256(bytes([i])).digest() * 50) for i in range(64)]
    (tmp_path / "images" / "loose.png").write_bytes(b"plain file")
    reader = ImageReader(tmp_path)
    expected = [reader.read(r) for r in refs]
    with ThreadPoolExecutor(8) as ex:
        assert list(ex.map(reader.read, refs * 4)) == expected * 4
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.read(refs[5]) == expected[5]
    assert clone.read("images/loose.png") == b"plain file"


def test_reader_errors_name_the_pack_and_member(tmp_path):
    with PackWriter(tmp_path) as w:
        ref = w.add("a.png", b"x" * 2000)
    reader = ImageReader(tmp_path)
    with pytest.raises(InputError, match=r"00000\.tar: has no member 'b\.png'"):
        reader.read("images/00000.tar/b.png")
    with pytest.raises(InputError, match=r"images/gone\.png: cannot read the stored image"):
        reader.read("images/gone.png")
    pack = tmp_path / "images" / "00000.tar"
    pack.write_bytes(pack.read_bytes()[:600])  # header intact, data cut short
    with pytest.raises(InputError, match="truncated|cannot read the image pack"):
        ImageReader(tmp_path).read(ref)
    with pytest.raises(InputError, match=r"01234\.tar: cannot read the image pack"):
        reader.read("images/01234.tar/a.png")


def test_ingest_packs_are_identical_for_any_worker_count(tmp_path):
    src = make_imagefolder(tmp_path / "src", classes=3, per_class=30)  # >= 64 images: the pool path
    one = ingest(src, tmp_path / "one", IngestParams(workers=1))
    two = ingest(src, tmp_path / "two", IngestParams(workers=2))
    assert one.samples == two.samples
    # Nothing but the pack and its index is written under images/: files per pack, not per image.
    assert sorted(p.name for p in (tmp_path / "one" / "images").iterdir()) == ["00000.tar", "00000.tar.idx"]
    for name in ("images/00000.tar", "images/00000.tar.idx", "manifest.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    reloaded = load_dataset(tmp_path / "two")
    s = reloaded.samples[7]
    assert s.image.startswith("images/00000.tar/")
    assert reloaded.read_image(s) == (src / s.source.path).read_bytes()


def test_reader_without_pread_seeks_under_the_lock(tmp_path, monkeypatch):
    import os

    with PackWriter(tmp_path) as w:
        refs = [w.add(f"{i}.bin", bytes([i]) * (100 + i)) for i in range(16)]
    monkeypatch.delattr(os, "pread")  # as on Windows
    reader = ImageReader(tmp_path)
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(reader.read, refs * 3)) == [bytes([i]) * (100 + i) for i in range(16)] * 3


def test_fast_index_matches_tarfile_and_falls_back_for_other_tars(tmp_path):
    import io

    from pipeline.images.imagestore import _scan_ustar

    with PackWriter(tmp_path) as w:
        for i in range(50):
            w.add(f"{i:03d}.png", bytes([i]) * (i * 37))  # sizes on and off the 512-byte blocks
    pack = tmp_path / "images" / "00000.tar"
    with tarfile.open(pack) as tar:
        expected = {m.name: (m.offset_data, m.size) for m in tar}
    with open(pack, "rb") as f:
        assert _scan_ustar(f) == expected
    # A tar another tool wrote (pax headers, a long name): the scan declines, tarfile reads it.
    other = tmp_path / "other" / "images"
    other.mkdir(parents=True)
    long_name = "sub/" + "x" * 120 + ".png"
    with tarfile.open(other / "00000.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(long_name)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    with open(other / "00000.tar", "rb") as f:
        assert _scan_ustar(f) is None
    assert ImageReader(tmp_path / "other").read("images/00000.tar/" + long_name) == b"hello"


def test_corrupt_pack_header_is_an_input_error(tmp_path):
    with PackWriter(tmp_path) as w:
        ref = w.add("a.png", b"x" * 100)
        bad = w.add("b.png", b"y" * 100)
    pack = tmp_path / "images" / "00000.tar"
    data = bytearray(pack.read_bytes())
    data[512 + 512 + 10] ^= 0xFF  # inside the second member's name: its checksum no longer matches
    pack.write_bytes(bytes(data))
    # Through the index only the member read has its header checked: a.png is intact.
    assert ImageReader(tmp_path).read(ref) == b"x" * 100
    with pytest.raises(InputError, match="cannot read the image pack"):
        ImageReader(tmp_path).read(bad)
    (tmp_path / "images" / "00000.tar.idx").unlink()  # the scan checks every header
    with pytest.raises(InputError, match="cannot read the image pack"):
        ImageReader(tmp_path).read(ref)


def test_pack_bytes_are_golden(tmp_path):
    # Our own ustar writer; on Python 3.11.7 these bytes also equal tarfile's USTAR output
    # for the same members. The hash pins them: equal images must give equal packs
    # (and equal DVC hashes) whatever Python version or machine wrote them.
    with PackWriter(tmp_path) as w:
        for i in range(12):
            w.add(f"{i:02d}.png", bytes([i]) * (i * 100))
    data = (tmp_path / "images" / "00000.tar").read_bytes()
    assert len(data) == 20480  # padded to tar's 10 KiB records
    assert hashlib.sha256(data).hexdigest() == "4d2f1f8f4e9653476db9a4f5e68a2e39dd974de294c859fab24c982cee00ec03"


@pytest.mark.parametrize("name, size, message", [
    ("x" * 101 + ".png", 1, "longer than ustar's 100 bytes"),
    ("a.png", 8 ** 11, "over ustar's 8 GiB"),
])
def test_ustar_limits_are_errors(name, size, message):
    from pipeline.images.imagestore import ustar_header

    with pytest.raises(ValueError, match=message):
        ustar_header(name, size)
