"""The index beside each image pack: found members, never wrong bytes, scans only as a fallback."""

import struct

import pytest

from pipeline.images import imagestore, packindex
from pipeline.core.errors import InputError
from pipeline.images.imagestore import ImageReader, PackWriter
from pipeline.images.packindex import PackIndex, index_bytes

BLOBS = {f"{i * 7919 % 1000:03d}{'x' * (i % 3)}.png": bytes([i]) * (i * 37) for i in range(60)}


def _write(root, blobs=BLOBS, **kw):
    with PackWriter(root, **kw) as w:
        return {name: w.add(name, data) for name, data in blobs.items()}


def _no_scan(monkeypatch):
    def refuse(f):
        raise AssertionError("the pack's headers were scanned")
    monkeypatch.setattr(imagestore, "_scan_ustar", refuse)


@pytest.mark.parametrize("table", [False, True], ids=["search", "table"])
def test_every_member_is_found_through_the_index_without_a_scan(tmp_path, monkeypatch, table):
    if table:
        monkeypatch.setattr(packindex, "_SEARCHES_BEFORE_TABLE", 0)
    refs = _write(tmp_path)
    _no_scan(monkeypatch)
    reader = ImageReader(tmp_path)
    assert {n: reader.read(r) for n, r in refs.items()} == BLOBS
    index = PackIndex.open(tmp_path / "images" / "00000.tar.idx", (tmp_path / "images" / "00000.tar").stat().st_size)
    for absent in ("", "000.pn", "999.png", "zzz.png", "x" * 101, "a\0b"):
        assert index.find(absent) is None
    assert (index._table is not None) == table
    index.close()


def test_a_dataset_without_indexes_is_still_read(tmp_path):
    refs = _write(tmp_path, pack_bytes=4096)
    for idx in (tmp_path / "images").glob("*.idx"):
        idx.unlink()
    reader = ImageReader(tmp_path)
    assert {n: reader.read(r) for n, r in refs.items()} == BLOBS


def test_index_bytes_are_golden_and_sorted():
    members = [(b"b.png", 0, 3), (b"a.jpg", 1024, 600), (b"cc.png", 2560, 0)]
    data = index_bytes(20480, members)
    # Spelled out: magic, pack size, count, name width, 4 zero bytes; then sorted records.
    le = lambda v, n=8: v.to_bytes(n, "little")  # noqa: E731
    assert data == (b"PKIDX\0\1\n" + le(20480) + le(3) + le(6, 4) + bytes(4)
                    + b"a.jpg\0" + le(1024) + le(600)
                    + b"b.png\0" + le(0) + le(3)
                    + b"cc.png" + le(2560) + le(0))
    assert index_bytes(20480, members[::-1]) == data  # write order does not matter


def _damage(idx_path, how):
    data = bytearray(idx_path.read_bytes())
    width = struct.unpack_from("<I", data, 24)[0]
    rec = width + 16
    if how == "swapped":  # the first two records' offsets exchanged: names point at each other's data
        a, b = 32 + width, 32 + rec + width
        data[a:a + 8], data[b:b + 8] = data[b:b + 8], data[a:a + 8]
    elif how == "huge-size":
        struct.pack_into("<Q", data, 32 + width + 8, 1 << 40)
    elif how == "unsorted":
        first, second = bytes(data[32:32 + rec]), bytes(data[32 + rec:32 + 2 * rec])
        data[32:32 + 2 * rec] = second + first
    elif how == "truncated":
        del data[-5:]
    elif how == "stale":  # describes a pack of another size
        struct.pack_into("<Q", data, 8, struct.unpack_from("<Q", data, 8)[0] + 512)
    elif how == "garbage":
        data = bytearray(b"not an index at all" * 9)
    elif how == "empty":
        data = bytearray()
    idx_path.write_bytes(bytes(data))


@pytest.mark.parametrize("table", [False, True], ids=["search", "table"])
@pytest.mark.parametrize("how", ["swapped", "huge-size", "unsorted", "truncated", "stale", "garbage", "empty"])
def test_a_damaged_or_stale_index_never_gives_wrong_bytes(tmp_path, monkeypatch, how, table):
    if table:  # the dict a reader builds from the index once it has searched it often
        monkeypatch.setattr(packindex, "_SEARCHES_BEFORE_TABLE", 0)
    refs = _write(tmp_path)
    _damage(tmp_path / "images" / "00000.tar.idx", how)
    reader = ImageReader(tmp_path)
    assert {n: reader.read(r) for n, r in refs.items()} == BLOBS
    with pytest.raises(InputError, match="has no member"):
        reader.read("images/00000.tar/nothere.png")


def test_a_rewritten_pack_of_the_same_size_is_caught_by_the_header_check(tmp_path):
    # Same member sizes, other names: the old index matches the pack's size but not its headers.
    _write(tmp_path / "old", {"a.png": b"1" * 700, "b.png": b"2" * 700})
    refs = _write(tmp_path / "new", {"b.png": b"3" * 700, "a.png": b"4" * 700})
    (tmp_path / "new" / "images" / "00000.tar.idx").write_bytes(
        (tmp_path / "old" / "images" / "00000.tar.idx").read_bytes())
    reader = ImageReader(tmp_path / "new")
    assert reader.read(refs["a.png"]) == b"4" * 700 and reader.read(refs["b.png"]) == b"3" * 700


def test_an_abandoned_pack_gets_no_index(tmp_path):
    with pytest.raises(RuntimeError):
        with PackWriter(tmp_path) as w:
            w.add("a.png", b"x")
            raise RuntimeError("stop")
    assert not (tmp_path / "images" / "00000.tar.idx").exists()


def _fifo_in_place_of(tmp_path, name):
    """A written pack whose ``name`` in images/ is replaced by a FIFO; its refs."""
    import os

    refs = _write(tmp_path)
    (tmp_path / "images" / name).unlink()
    os.mkfifo(tmp_path / "images" / name)
    return refs


@pytest.mark.timeout(30)  # a reader that opened the FIFO would wait for a writer forever
def test_an_index_that_is_a_fifo_is_skipped_not_waited_on(tmp_path):
    refs = _fifo_in_place_of(tmp_path, "00000.tar.idx")
    reader = ImageReader(tmp_path)
    assert {n: reader.read(r) for n, r in refs.items()} == BLOBS


@pytest.mark.timeout(30)
def test_a_pack_that_is_a_fifo_is_a_clear_error_not_a_hang(tmp_path):
    refs = _fifo_in_place_of(tmp_path, "00000.tar")
    with pytest.raises(InputError, match=r"00000\.tar: cannot read the image pack .*fifo"):
        ImageReader(tmp_path).read(next(iter(refs.values())))
