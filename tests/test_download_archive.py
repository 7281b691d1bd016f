"""Safe extraction (tar-slip, zip-slip, links, devices), truncated archives, and the
pure parsers (IDX, checksums)."""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import zipfile

import numpy as np
import pytest

from pipeline.download import download
from pipeline.download.archive import safe_extract
from pipeline.download.checksums import parse_checksums
from pipeline.download.mnist import parse_idx
from pipeline.core.errors import ConfigError, DownloadError
from tests.download_fixtures import (cifar10_archive, hymenoptera_archive, idx_bytes, loopback, mnist_files,
                                     sha256_checksums)

__all__ = ["loopback"]


def _tar(*members: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("data/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))  # a good member first: it must not be written either
        for m in members:
            tf.addfile(m, io.BytesIO(b"evil"[: m.size]) if m.isfile() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    m.size = 4 if kind == tarfile.REGTYPE else 0
    return m


def _zip(name: str, mode: int = 0) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data/ok.txt", b"ok")
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, b"/etc/passwd" if stat.S_ISLNK(mode) else b"evil")
    return buf.getvalue()


UNSAFE = [
    ("tar", _tar(_member("../evil.txt")), "../evil.txt", "'..' path component"),
    ("tar", _tar(_member("data/../../evil.txt")), "data/../../evil.txt", "'..' path component"),
    ("tar", _tar(_member("/tmp/evil.txt")), "/tmp/evil.txt", "absolute path"),
    ("tar", _tar(_member("data/link", tarfile.SYMTYPE, "/etc/passwd")), "data/link", "symbolic link"),
    ("tar", _tar(_member("data/hard", tarfile.LNKTYPE, "data/ok.txt")), "data/hard", "hard link"),
    ("tar", _tar(_member("data/dev", tarfile.CHRTYPE)), "data/dev", "device"),
    ("tar", _tar(_member("data/fifo", tarfile.FIFOTYPE)), "data/fifo", "device, FIFO"),
    ("zip", _zip("../evil.txt"), "../evil.txt", "'..' path component"),
    ("zip", _zip("/tmp/evil.txt"), "/tmp/evil.txt", "absolute path"),
    ("zip", _zip("C:/evil.txt"), "C:/evil.txt", "absolute path"),
    ("zip", _zip("data\\..\\..\\evil.txt"), "data\\..\\..\\evil.txt", "'..' path component"),
    ("zip", _zip("data/link", stat.S_IFLNK | 0o777), "data/link", "symbolic link"),
]


@pytest.mark.parametrize("kind, data, member, why", UNSAFE, ids=[f"{k}:{m}:{w}" for k, _, m, w in UNSAFE])
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, kind, data, member, why):
    archive = tmp_path / f"a.{kind}"
    archive.write_bytes(data)
    dest = tmp_path / "work" / "dest"
    with pytest.raises(DownloadError, match=re.escape(f"unsafe archive member {member!r} ({why}")):
        safe_extract(archive, dest)
    assert list(dest.rglob("*")) == []  # not even the good member
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([archive.name, "work", "dest"])


def test_safe_members_are_extracted(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar(_member("./data/sub/x.bin")))
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "data" / "ok.txt").read_bytes() == b"ok"
    assert (dest / "data" / "sub" / "x.bin").read_bytes() == b"evil"


@pytest.mark.parametrize("name, data", [("a.tar.gz", cifar10_archive()), ("a.zip", hymenoptera_archive())])
def test_truncated_archives_are_refused(tmp_path, name, data):
    archive = tmp_path / name
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DownloadError, match="truncated or corrupt archive"):
        safe_extract(archive, tmp_path / "dest")


def test_malicious_archive_from_mirror_leaves_nothing(tmp_path, loopback):
    """Show 4: refused before anything is written outside the temporary directory."""
    evil = {"cifar-10-python.tar.gz": _tar(_member("../../escaped.txt"))}
    mirror = loopback.serve("m", evil)
    sums = sha256_checksums(tmp_path / "sums.json", evil)  # the attacker's bytes "verify"
    out = tmp_path / "a" / "raw"
    with pytest.raises(DownloadError, match="'../../escaped.txt'"):
        download("cifar10", out, mirror=mirror, checksums=sums, cache=tmp_path / "cache", backoff=0.01)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert list((tmp_path / "a").iterdir()) == []  # no DIR, no temporary directory


def test_truncated_gzip_idx_from_mirror_fails_cleanly(tmp_path, loopback):
    files = mnist_files(1, 1)
    files["t10k-images-idx3-ubyte.gz"] = files["t10k-images-idx3-ubyte.gz"][:-40]
    mirror = loopback.serve("m", files)
    sums = sha256_checksums(tmp_path / "sums.json", files)
    with pytest.raises(DownloadError, match="t10k-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        download("mnist", tmp_path / "raw", mirror=mirror, checksums=sums, cache=tmp_path / "cache")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "sums.json"]


IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


@pytest.mark.parametrize("data, ndim, error", [
    (idx_bytes(IMAGES), 3, None),
    (idx_bytes(IMAGES)[:-1], 3, "needs 24 bytes of data, file has 23"),
    (idx_bytes(IMAGES) + b"\0", 3, "needs 24 bytes of data, file has 25"),
    (idx_bytes(IMAGES), 1, "has 3 dimensions, expected 1"),
    (b"\x01" + idx_bytes(IMAGES)[1:], 3, "bad magic number"),
    (idx_bytes(IMAGES)[:2] + b"\x0d" + idx_bytes(IMAGES)[3:], 3, "type code 0x0d"),
    (idx_bytes(IMAGES)[:9], 3, "header is truncated"),
    (b"", 3, "bad magic number"),
])
def test_parse_idx(data, ndim, error):
    if error is None:
        assert (parse_idx(data, "f", ndim) == IMAGES).all()
    else:
        with pytest.raises(DownloadError, match=error):
            parse_idx(data, "f", ndim)


def test_gzip_round_trip_of_generated_idx():
    files = mnist_files(1, 1)
    labels = parse_idx(gzip.decompress(files["t10k-labels-idx1-ubyte.gz"]), "labels", 1)
    assert labels.tolist() == list(range(10))


@pytest.mark.parametrize("text, result", [
    ('{"a.gz": "md5:' + "A" * 32 + '"}', {"a.gz": "md5:" + "a" * 32}),
    ('{"a.gz": "sha256:' + "0" * 64 + '", "b": "md5:' + "1" * 32 + '"}',
     {"a.gz": "sha256:" + "0" * 64, "b": "md5:" + "1" * 32}),
    ("{}", {}),
    ('{"a.gz": "' + "0" * 32 + '"}', "a.gz: '0000"),  # no algorithm
    ('{"a.gz": "md5:' + "0" * 31 + '"}', "not a digest"),  # wrong length
    ('{"a.gz": "sha1:' + "0" * 40 + '"}', "not a digest"),
    ('{"a.gz": 5}', "not a digest"),
    ('["md5:x"]', "must be a JSON object"),
    ("{", "not valid JSON"),
    ("[" * 100_000, "json-too-deep"),
    ('{"a.gz": NaN}', "not valid JSON"),
])
def test_parse_checksums(text, result):
    if isinstance(result, dict):
        assert parse_checksums(text, "sums.json") == result
    else:
        with pytest.raises(ConfigError, match=result):
            parse_checksums(text, "sums.json")


def test_tar_member_path_rules_match_zip_ones(tmp_path):
    # A harmless name that merely contains dots stays allowed.
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip("data/..hidden..name"))
    assert (safe_extract(archive, tmp_path / "d") / "data" / "..hidden..name").read_bytes() == b"evil"


def test_tar_bomb_is_refused_at_its_header(tmp_path):
    # The header alone declares 9 GiB: refused before a byte of it is decompressed or written.
    huge = tarfile.TarInfo("data/zeros.bin")
    huge.size = 9 << 30
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(huge)  # header only: the data never follows
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match=r"refusing to unpack more than 8 GiB .*'data/zeros\.bin'"):
        safe_extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").rglob("*")) == []


def test_zip_member_inflating_too_far_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/ok.txt", b"ok")
        zf.writestr("data/zeros.bin", bytes(10 << 20))  # ~1,000:1
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match=r"'data/zeros\.bin' \(inflates \d+ times, above 500"):
        safe_extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").rglob("*")) == []


@pytest.mark.parametrize("name, data", [("a.tar.gz", cifar10_archive()), ("a.zip", hymenoptera_archive())])
def test_size_cap_and_free_space_are_checked_before_writing(tmp_path, monkeypatch, name, data):
    from types import SimpleNamespace

    from pipeline.download import archive as mod

    archive = tmp_path / name
    archive.write_bytes(data)
    monkeypatch.setattr(mod, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(DownloadError, match="refusing to unpack more than"):
        safe_extract(archive, tmp_path / "a")
    monkeypatch.setattr(mod, "MAX_UNPACKED_BYTES", 8 << 30)
    monkeypatch.setattr(mod.shutil, "disk_usage", lambda p: SimpleNamespace(total=100, used=90, free=10))
    with pytest.raises(DownloadError, match=r"unpacks to [\d.]+ MiB but .* has only 0\.0 MiB free"):
        safe_extract(archive, tmp_path / "b")
    assert list((tmp_path / "a").rglob("*")) == list((tmp_path / "b").rglob("*")) == []


@pytest.mark.timeout(10)
def test_a_checksums_file_is_read_by_the_guarded_reader(tmp_path):
    from pipeline.download.checksums import load_checksums

    os.mkfifo(tmp_path / "sums.json")  # no writer: a plain open() would wait forever
    with pytest.raises(ConfigError, match=r"sums.json: cannot read checksums file \(not-a-regular-file\): is a fifo"):
        load_checksums(tmp_path / "sums.json")
    (tmp_path / "latin1.json").write_bytes(b'{"caf\xe9": "md5:' + b"0" * 32 + b'"}')
    with pytest.raises(ConfigError, match=r"latin1.json: refused \(not-utf8\)"):
        load_checksums(tmp_path / "latin1.json")
    (tmp_path / "big.json").write_bytes(b" " * (2 << 20))
    with pytest.raises(ConfigError, match=r"big.json: cannot read checksums file \(file-too-large\)"):
        load_checksums(tmp_path / "big.json")
