"""HTTP behaviour against a loopback server: resume with Range, servers that ignore
Range, retries on 5xx, and the errors for 404, refused connections, DNS, disk full."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pipeline.download.http import fetch_url
from pipeline.core.errors import DownloadError
from tests.download_fixtures import loopback

__all__ = ["loopback"]
DATA = bytes(range(256)) * 4096  # 1 MiB: many read chunks, so a cut lands mid-transfer


def _fetch(url: str, dest: Path, retries: int = 3) -> Path:
    return fetch_url(url, dest, dest.name, retries=retries, backoff=0.01, timeout=5)


def test_plain_download(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    assert _fetch(url, tmp_path / "f.bin").read_bytes() == DATA
    assert loopback.requests("f.bin") == [None]
    assert not (tmp_path / "f.bin.part").exists()


def test_dropped_connection_resumes_with_range(tmp_path, loopback):
    """Show 3: the retry continues from where the cut-off transfer stopped."""
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    loopback.drop_once.add("/m/f.bin")
    assert _fetch(url, tmp_path / "f.bin").read_bytes() == DATA
    assert loopback.requests("f.bin") == [None, f"bytes={len(DATA) // 2}-"]


def test_interrupted_run_resumes_on_the_next_run(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    loopback.drop_once.add("/m/f.bin")
    with pytest.raises(DownloadError, match="rerun resumes"):
        _fetch(url, tmp_path / "f.bin", retries=0)
    assert not (tmp_path / "f.bin").exists()  # only a complete file gets the final name
    assert (tmp_path / "f.bin.part").stat().st_size == len(DATA) // 2
    assert _fetch(url, tmp_path / "f.bin", retries=0).read_bytes() == DATA
    assert loopback.requests("f.bin")[-1] == f"bytes={len(DATA) // 2}-"


def test_server_ignoring_range_gets_a_full_download(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    loopback.no_range = True
    loopback.drop_once.add("/m/f.bin")
    assert _fetch(url, tmp_path / "f.bin").read_bytes() == DATA  # not half + whole
    assert loopback.requests("f.bin") == [None, f"bytes={len(DATA) // 2}-"]


def test_stale_part_longer_than_the_file_restarts(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * (len(DATA) + 10))  # server answers 416
    assert _fetch(url, tmp_path / "f.bin").read_bytes() == DATA


def test_5xx_is_retried(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    loopback.fail["/m/f.bin"] = 2
    assert _fetch(url, tmp_path / "f.bin").read_bytes() == DATA
    assert len(loopback.requests("f.bin")) == 3


def test_5xx_gives_up_after_the_retries(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    loopback.fail["/m/f.bin"] = 10
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\): HTTP 503"):
        _fetch(url, tmp_path / "f.bin", retries=2)
    assert len(loopback.requests("f.bin")) == 3


def test_404_fails_at_once_naming_url_and_remedies(tmp_path, loopback):
    url = loopback.url + "/m/missing.gz"
    with pytest.raises(DownloadError) as err:
        _fetch(url, tmp_path / "missing.gz")
    msg = str(err.value)
    assert "HTTP 404" in msg and url in msg and "--mirror" in msg and "--from" in msg
    assert len(loopback.log) == 1


def test_connection_refused_mentions_offline_dataset(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="after 2 attempt.*mnist5k works offline"):
        _fetch(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", retries=1)


def test_dns_failure_fails_at_once(tmp_path, monkeypatch):
    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError, match="cannot resolve host 'example.invalid'.*mnist5k works offline"):
        _fetch("http://example.invalid/f.bin", tmp_path / "f.bin")
    assert len(calls) == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_a_clear_error(tmp_path, loopback):
    url = loopback.serve("m", {"f.bin": DATA}) + "/f.bin"
    (tmp_path / "f.bin.part").symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(DownloadError, match="disk full while writing .*f.bin.part.*PIPELINE_CACHE"):
        _fetch(url, tmp_path / "f.bin")
