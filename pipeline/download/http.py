"""Streaming HTTP(S) downloads with resume, retries and errors that say what to do.

Standard library only (``urllib``; proxies come from ``http_proxy``/``https_proxy``
as usual). A transfer writes ``<dest>.part`` and renames it to ``dest`` only when
every byte arrived, so ``dest`` existing means complete. An interrupted transfer
resumes from the end of ``.part`` with a ``Range`` request; a server that ignores
ranges (answers 200) is read again from the start.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

from pipeline.errors import DownloadError
from pipeline.progress import byte_progress

CHUNK = 1 << 16
USER_AGENT = "pipeline-download/0.1 (+urllib)"
OFFLINE_HINT = ("The dataset mnist5k works offline; with a local copy use --from PATH, "
                "or --mirror URL for a reachable mirror.")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Retryable(Exception):
    """A failure worth another attempt: connection lost, timeout, 5xx."""


def disk_full(path: Path) -> DownloadError:
    return DownloadError(f"disk full while writing {path}: free some space, or put the download "
                         "cache on another disk (PIPELINE_CACHE=DIR or --cache DIR)")


def fetch_url(url: str, dest: Path, name: str, retries: int = 4, backoff: float = 1.0,
              timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``; resume ``dest.part`` if present; return ``dest``.

    Connection errors, timeouts, truncated bodies and HTTP 5xx/408/429 are retried
    up to ``retries`` times, waiting ``backoff * 2**k`` seconds; each retry resumes
    where the previous attempt stopped. 4xx and DNS failures fail at once.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.with_name(dest.name + ".lock")):
        if not dest.exists():  # another process may have finished it while we waited
            _fetch_with_retries(url, dest, name, retries, backoff, timeout)
    return dest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two runs sharing a cache never write one ``.part``."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock; concurrent runs are the user's risk
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fetch_with_retries(url: str, dest: Path, name: str, retries: int, backoff: float,
                        timeout: float) -> None:
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, name, timeout)
            break
        except _Retryable as err:
            if attempt == retries:
                raise DownloadError(
                    f"could not download {name} from {url} after {retries + 1} attempt(s): {err}. "
                    f"Check the network or proxy (http_proxy/https_proxy); a rerun resumes where "
                    f"this one stopped. {OFFLINE_HINT}"
                ) from None
            time.sleep(backoff * 2 ** attempt)
    os.replace(part, dest)


def _open(url: str, part: Path, have: int, name: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and have:  # .part is not a prefix we can extend: start over
            part.unlink()
            raise _Retryable(f"HTTP 416 for a resume at byte {have}; starting again") from None
        if err.code >= 500 or err.code in (408, 429):
            raise _Retryable(f"HTTP {err.code} {err.reason}") from None
        what = {404: "the file is not there", 403: "access is forbidden",
                401: "the server wants credentials"}.get(err.code, "the server refused the request")
        raise DownloadError(
            f"HTTP {err.code} {err.reason} for {url} ({name}): {what}. If you use --mirror, it "
            f"must serve every file as <mirror>/<upstream file name>; or fetch the file yourself "
            f"and pass --from PATH."
        ) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, socket.gaierror):
            host = urllib.parse.urlsplit(url).hostname
            raise DownloadError(f"cannot resolve host {host!r} for {name} (no network, or DNS "
                                f"failure): {err.reason}. {OFFLINE_HINT}") from None
        raise _Retryable(str(err.reason)) from None
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets, bad status lines
        raise _Retryable(f"{type(err).__name__}: {err}") from None


def _transfer(url: str, part: Path, name: str, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, part, have, name, timeout)
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if response.status == 206:
            m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink()
                raise _Retryable(f"bad Content-Range {response.headers.get('Content-Range')!r}")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
        else:  # 200: the whole body, whatever we asked for (the server ignores Range)
            have, total, mode = 0, length, "wb"
        bar = byte_progress(name, total, initial=have)
        try:
            _copy(response, part, mode, bar)
        finally:
            bar.close()
    got = part.stat().st_size
    if total is not None and got != total:
        raise _Retryable(f"connection closed after {got} of {total} bytes")


def _copy(response, part: Path, mode: str, bar) -> None:
    try:
        with open(part, mode) as f:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise _Retryable(f"transfer interrupted: {type(err).__name__}: {err}") from None
                if not chunk:
                    return
                f.write(chunk)
                bar.update(len(chunk))
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full(part) from None
        raise
