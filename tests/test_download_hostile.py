"""Hostile servers and archives, all on 127.0.0.1: a server trickling bytes, one that
stalls mid-body (the bytes received are kept and resumed), a mirror answering 200
with an HTML page (the cached copy is deleted, a good mirror then works), and tar
bombs (one huge member, tens of thousands of members) refused before writing.

Every case that could hang runs in a thread joined with a generous timeout, so a
regression fails the test instead of blocking the suite; no test asserts speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from pipeline.core.outputs import MARKER
from pipeline.download import download
from pipeline.download.archive import MAX_MEMBERS, safe_extract
from pipeline.download.http import fetch_url
from pipeline.core.errors import DownloadError
from tests.conftest import REPO
from tests.download_fixtures import (hymenoptera_archive, loopback, sha256_checksums, tar_gz_of_many,
                                     tar_gz_of_zeros)

__all__ = ["loopback"]
DATA = bytes(range(256)) * 4096  # 1 MiB
HANG_GUARD = 60  # seconds: far above every limit used here; reaching it means a hang


def _bounded(fn, *args, **kwargs):
    """Run ``fn`` in a thread; return its result or raise its exception; fail on a hang."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # handed to the test thread
            box["error"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG_GUARD)
    assert not t.is_alive(), f"{fn.__name__} still running after {HANG_GUARD} s: a hang"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _fetch(url: str, dest: Path, **kw) -> Path:
    kw = {"retries": 2, "backoff": 0.01, "timeout": 1.0, "min_rate": 0, "rate_window": 1.0, **kw}
    return fetch_url(url, dest, dest.name, **kw)


# --- slow and stalled servers ------------------------------------------------------------

@pytest.mark.parametrize("case, server, limits, message", [
    ("trickle", {"trickle": 0.3}, {"min_rate": 1000, "rate_window": 1.0, "timeout": 5.0},
     "below download.min_rate = 1000 bytes/s"),
    ("stall", {"stall_after": 300_000}, {"timeout": 1.0}, "no data for 1 s (download.timeout)"),
    ("silent", {"stall_after": 0}, {"timeout": 1.0}, "no data for 1 s"),
])
def test_slow_server_is_cut_off_and_the_next_run_resumes(tmp_path, loopback, case, server, limits, message):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    for key, value in server.items():
        getattr(loopback, key)["/m/f.bin"] = value
    with pytest.raises(DownloadError) as err:
        _bounded(_fetch, url, tmp_path / "f.bin", **limits)
    msg = str(err.value)
    assert message in msg and "try again later or use another --mirror" in msg
    assert len(loopback.requests("f.bin")) == 1  # a stall is not retried: the error comes at once
    part = tmp_path / "f.bin.part"
    got = part.stat().st_size if part.exists() else 0
    assert DATA[:got] == (part.read_bytes() if got else b"")  # what arrived, flushed, nothing else
    if case == "stall":
        assert got == 300_000  # every byte sent before the stall (not lost in a read buffer)
    if got:
        assert f"the {got} bytes received so far are kept in {part}" in msg and "next run resumes" in msg
    else:
        assert "nothing was received" in msg
    for key in server:
        getattr(loopback, key).clear()  # the server recovers
    assert _bounded(_fetch, url, tmp_path / "f.bin").read_bytes() == DATA
    assert loopback.requests("f.bin")[-1] == (f"bytes={got}-" if got else None)


def test_slow_but_steady_transfer_is_not_cut(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA[:30]}) + "/f.bin"
    loopback.trickle["/m/f.bin"] = 0.02  # ~50 bytes/s, above the minimum below
    got = _bounded(_fetch, url, tmp_path / "f.bin", min_rate=10, rate_window=0.2, timeout=5.0)
    assert got.read_bytes() == DATA[:30]


def test_cli_flags_set_the_limits_and_are_validated(tmp_path, loopback):
    mirror = loopback.serve("m", {"hymenoptera_data.zip": DATA})
    loopback.stall_after["/m/hymenoptera_data.zip"] = 1000
    env = dict(os.environ, PIPELINE_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "pipeline", "download", "hymenoptera", "--out", str(tmp_path / "raw"),
            "--mirror", mirror, "--cache", str(tmp_path / "cache")]
    r = subprocess.run(base + ["--timeout", "1"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=HANG_GUARD)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no data for 1 s" in r.stderr and "the 1000 bytes received so far are kept in" in r.stderr
    for flag, value in (("--timeout", "0"), ("--timeout", "nan"), ("--min-rate", "-1"), ("--rate-window", "inf")):
        bad = subprocess.run(base + [flag, value], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=HANG_GUARD)
        key = flag.removeprefix("--").replace("-", "_")
        assert bad.returncode == 2 and key in bad.stderr and "Traceback" not in bad.stderr, (flag, value, bad.stderr)


# --- a mirror answering 200 with HTML: never cached for good ---------------------------------

HTML = b"<!DOCTYPE html>\n<html><body><h1>Welcome</h1><p>Please log in to continue.</p></body></html>\n"


def test_html_page_from_a_mirror_is_deleted_and_a_good_mirror_then_works(tmp_path, loopback):
    bad = loopback.serve("bad", {"hymenoptera_data.zip": HTML})
    good = loopback.serve("good", {"hymenoptera_data.zip": hymenoptera_archive()})
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        _bounded(download, "hymenoptera", tmp_path / "raw", mirror=bad, cache=cache, backoff=0.01)
    msg = str(err.value)
    assert "hymenoptera_data.zip: not a zip or tar archive: an HTML page" in msg
    assert "was deleted, so the next run downloads it again" in msg
    assert not (cache / "hymenoptera" / "hymenoptera_data.zip").exists()
    assert not (tmp_path / "raw").exists()
    out = _bounded(download, "hymenoptera", tmp_path / "raw", mirror=good, cache=cache, backoff=0.01)
    assert sorted(p.name for p in out.iterdir() if p.name != MARKER) == ["train", "val"]


def test_a_poisoned_cache_heals_on_the_next_run(tmp_path, loopback):
    """A copy cached before this check existed: refused once and deleted, then fetched again."""
    good = loopback.serve("good", {"hymenoptera_data.zip": hymenoptera_archive()})
    cached = tmp_path / "cache" / "hymenoptera" / "hymenoptera_data.zip"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(HTML)
    with pytest.raises(DownloadError, match="an HTML page"):
        download("hymenoptera", tmp_path / "raw", mirror=good, cache=tmp_path / "cache")
    assert not cached.exists() and loopback.log == []
    download("hymenoptera", tmp_path / "raw", mirror=good, cache=tmp_path / "cache")
    assert cached.read_bytes() == hymenoptera_archive()


def test_from_file_is_never_deleted(tmp_path):
    page = tmp_path / "hymenoptera_data.zip"
    page.write_bytes(HTML)
    with pytest.raises(DownloadError, match="an HTML page"):
        download("hymenoptera", tmp_path / "raw", source=page, cache=tmp_path / "cache")
    assert page.read_bytes() == HTML


def test_pinned_checksum_of_a_bad_archive_still_leaves_no_cache(tmp_path, loopback):
    files = {"cifar-10-python.tar.gz": b"\x1f\x8b" + b"not really gzip" * 10}
    mirror = loopback.serve("m", files)
    sums = sha256_checksums(tmp_path / "sums.json", files)
    with pytest.raises(DownloadError, match="truncated or corrupt archive.*was deleted"):
        download("cifar10", tmp_path / "raw", mirror=mirror, checksums=sums, cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz").exists()


# --- archive bombs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zero_bomb() -> bytes:
    return tar_gz_of_zeros(1 << 30)  # ~1 MB declaring a 1 GiB member


@pytest.fixture(scope="module")
def many_bomb() -> bytes:
    return tar_gz_of_many(50_008)  # ~300 KB creating 50,008 files


def test_tar_gz_member_far_larger_than_the_archive_is_refused_at_its_header(tmp_path, zero_bomb):
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(zero_bomb)
    assert len(zero_bomb) < 2 << 20
    with pytest.raises(DownloadError) as err:
        _bounded(safe_extract, archive, tmp_path / "dest")
    assert "'data/zeros.bin'" in str(err.value) and "an archive bomb" in str(err.value)
    assert f"declare {1 << 30}" in str(err.value) and "above 500" in str(err.value)
    assert list((tmp_path / "dest").rglob("*")) == []


def test_tar_gz_of_fifty_thousand_files_is_refused_before_writing(tmp_path, many_bomb):
    archive = tmp_path / "many.tar.gz"
    archive.write_bytes(many_bomb)
    with pytest.raises(DownloadError) as err:
        _bounded(safe_extract, archive, tmp_path / "dest")
    assert f"above the limit of {MAX_MEMBERS} members: an archive bomb" in str(err.value)
    assert f"'d/{MAX_MEMBERS:05d}'" in str(err.value)  # the first member past the cap
    assert list((tmp_path / "dest").rglob("*")) == []


def test_zip_with_too_many_members_is_refused(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(MAX_MEMBERS + 1):
            zf.writestr(f"d/{i:05d}", b"")
    with pytest.raises(DownloadError, match=f"above the limit of {MAX_MEMBERS} members"):
        safe_extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").rglob("*")) == []


def test_bomb_from_a_mirror_is_refused_and_not_kept(tmp_path, loopback, zero_bomb):
    files = {"cifar-10-python.tar.gz": zero_bomb}
    mirror = loopback.serve("m", files)
    sums = sha256_checksums(tmp_path / "sums.json", files)  # the attacker's bytes "verify"
    with pytest.raises(DownloadError, match="an archive bomb.*was deleted"):
        _bounded(download, "cifar10", tmp_path / "a" / "raw", mirror=mirror, checksums=sums,
                 cache=tmp_path / "cache", backoff=0.01)
    assert list((tmp_path / "a").iterdir()) == []
    assert list((tmp_path / "cache" / "cifar10").glob("*.gz")) == []
