"""Streaming HTTP(S) downloads with resume, retries and errors that say what to do.

Standard library only (``urllib``; proxies come from ``http_proxy``/``https_proxy``
as usual). A transfer writes ``<dest>.part`` and renames it to ``dest`` only when
every byte arrived, so ``dest`` existing means complete. An interrupted transfer
resumes from the end of ``.part`` with a ``Range`` request; a server that ignores
ranges (answers 200) is read again from the start.

Slow servers: every read waits at most ``timeout`` seconds (a server that stops
sending mid-body is noticed then, not after the retries), and a transfer slower
than ``min_rate`` bytes per second, averaged over ``rate_window`` seconds, is cut
off (a server trickling a byte every 20 s would otherwise never time out). Neither
is retried: the bytes received so far are already flushed to ``.part``, the error
says so, and the next run resumes from there.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.core.errors import DownloadError
from pipeline.core.progress import byte_progress

CHUNK = 1 << 16
USER_AGENT = "pipeline-download/0.1 (+urllib)"
OFFLINE_HINT = ("The dataset mnist5k works offline; with a local copy use --from PATH, "
                "or --mirror URL for a reachable mirror.")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Retryable(Exception):
    """A failure worth another attempt: connection lost, 5xx."""


class _TooSlow(Exception):
    """No data for a whole read timeout, or less than the minimum rate: not retried."""


@dataclass(frozen=True)
class Pace:
    """How long a transfer may wait: per read, and on average (``min_rate`` 0 = no minimum)."""

    timeout: float = 30.0  # seconds one read (or the connection and headers) may take
    min_rate: int = 1024  # bytes per second, averaged over rate_window
    rate_window: float = 15.0  # seconds


def disk_full(path: Path) -> DownloadError:
    return DownloadError(f"disk full while writing {path}: free some space, or put the download "
                         "cache on another disk (PIPELINE_CACHE=DIR or --cache DIR)")


def fetch_url(url: str, dest: Path, name: str, retries: int = 4, backoff: float = 1.0,
              timeout: float = 30.0, min_rate: int = 1024, rate_window: float = 15.0) -> Path:
    """Download ``url`` to ``dest``; resume ``dest.part`` if present; return ``dest``.

    Connection errors, truncated bodies and HTTP 5xx/408/429 are retried up to
    ``retries`` times, waiting ``backoff * 2**k`` seconds; each retry resumes where
    the previous attempt stopped. 4xx and DNS failures fail at once; so does a read
    that waits ``timeout`` seconds, or a transfer slower than ``min_rate`` bytes/s
    over ``rate_window`` seconds (the next run resumes).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    pace = Pace(timeout, min_rate, rate_window)
    with _locked(dest.with_name(dest.name + ".lock")):
        if not dest.exists():  # another process may have finished it while we waited
            _fetch_with_retries(url, dest, name, retries, backoff, pace)
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
                        pace: Pace) -> None:
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, name, pace)
            break
        except _TooSlow as err:
            have = part.stat().st_size if part.exists() else 0
            kept = (f"the {have} bytes received so far are kept in {part} and the next run resumes "
                    "from there" if have else "nothing was received")
            raise DownloadError(
                f"{name} from {url}: {err}; {kept}. A slow or stalled server: try again later or use "
                f"another --mirror (limits: --timeout, --min-rate, --rate-window, or download.timeout, "
                f"download.min_rate, download.rate_window in params.yaml)."
            ) from None
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
        if isinstance(err.reason, TimeoutError):
            raise _TooSlow(f"no answer within {timeout:g} s (download.timeout)") from None
        if isinstance(err.reason, socket.gaierror):
            host = urllib.parse.urlsplit(url).hostname
            raise DownloadError(f"cannot resolve host {host!r} for {name} (no network, or DNS "
                                f"failure): {err.reason}. {OFFLINE_HINT}") from None
        raise _Retryable(str(err.reason)) from None
    except TimeoutError:
        raise _TooSlow(f"no answer within {timeout:g} s (download.timeout)") from None
    except (OSError, http.client.HTTPException) as err:  # resets, bad status lines
        raise _Retryable(f"{type(err).__name__}: {err}") from None


def _transfer(url: str, part: Path, name: str, pace: Pace) -> None:
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, part, have, name, pace.timeout)
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
            _copy(response, part, mode, bar, pace)
        finally:
            bar.close()
    got = part.stat().st_size
    if total is not None and got != total:
        raise _Retryable(f"connection closed after {got} of {total} bytes")


def _copy(response, part: Path, mode: str, bar, pace: Pace) -> None:
    """Append the body to ``part`` as it arrives (``read1``: whatever one receive
    brought, so nothing received is lost when the next read fails), flushing each
    chunk, and cut off a stalled or too slow transfer."""
    window_start, window_bytes = time.monotonic(), 0
    try:
        with open(part, mode) as f:
            while True:
                try:
                    chunk = response.read1(CHUNK)
                except TimeoutError:
                    raise _TooSlow(f"no data for {pace.timeout:g} s (download.timeout)") from None
                except (OSError, http.client.HTTPException) as err:
                    raise _Retryable(f"transfer interrupted: {type(err).__name__}: {err}") from None
                if not chunk:
                    return
                f.write(chunk)
                f.flush()
                bar.update(len(chunk))
                window_bytes += len(chunk)
                elapsed = time.monotonic() - window_start
                if pace.min_rate and elapsed >= pace.rate_window:
                    if window_bytes < pace.min_rate * elapsed:
                        raise _TooSlow(f"only {window_bytes} bytes in {elapsed:.0f} s, below download.min_rate "
                                       f"= {pace.min_rate} bytes/s")
                    window_start, window_bytes = time.monotonic(), 0
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full(part) from None
        raise
