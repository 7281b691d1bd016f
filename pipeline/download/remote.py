"""Where a dataset's files come from, and getting verified copies of them.

A dataset is a list of ``Remote`` files (upstream name, upstream URLs, official
digest). ``obtain`` returns a verified local path for each: from ``--from``
(used in place, never modified), else from the download cache, else downloaded
(from ``--mirror`` when given, else upstream) into the cache. Every file is
verified before it is used; a file that fails is deleted from the cache so a
rerun fetches it afresh. The same holds for a file whose bytes turn out wrong
only when used (``BadDownload``: not an archive, an unsafe or bomb archive, not
the dataset's layout): ``forget_bad_copies`` deletes the cached copy, so a page
of HTML a mirror answered 200 with (for a dataset without an official checksum)
cannot poison every later run. Files given with ``--from`` are never deleted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from pipeline.download.checksums import file_digest, load_checksums, verify
from pipeline.download.http import fetch_url
from pipeline.core.errors import ConfigError, DownloadError, InputError

log = logging.getLogger("pipeline.download")


class BadDownload(DownloadError):
    """A file's bytes are not what the dataset needs (found when unpacking or parsing);
    ``path`` is the file at fault when known."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Remote:
    name: str  # upstream file name (a mirror serves it as <mirror>/<name>)
    urls: tuple[str, ...]  # upstream URLs, tried in order
    digest: str | None  # official "md5:<hex>"/"sha256:<hex>"; None where none is published


@dataclass(frozen=True)
class FetchOptions:
    """How to obtain files; the CLI options of ``pipeline download``."""

    mirror: str | None = None
    checksums: Path | None = None  # JSON {file name: digest} replacing the official digests
    digests: tuple[tuple[str, str], ...] = ()  # (file name, digest) from params.yaml; the file wins
    source: Path | None = None  # --from: an archive (or a directory of the files) on disk
    cache: Path | None = None  # default: $PIPELINE_CACHE or ~/.cache/pipeline/downloads
    retries: int = 4
    backoff: float = 1.0  # seconds; doubled after each failed attempt
    timeout: float = 30.0  # seconds one read may wait
    min_rate: int = 1024  # bytes per second over rate_window, else the transfer is cut off; 0 = none
    rate_window: float = 15.0  # seconds


def cache_root(opts: FetchOptions) -> Path:
    if opts.cache is not None:
        return Path(opts.cache)
    if env := os.environ.get("PIPELINE_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "pipeline" / "downloads"


def _expected(remotes: list[Remote], opts: FetchOptions) -> dict[str, str | None]:
    expected = {r.name: r.digest for r in remotes}
    sources = [("download.checksums in params.yaml", dict(opts.digests))]
    if opts.checksums is not None:
        sources.append((str(opts.checksums), load_checksums(opts.checksums)))
    for source, overrides in sources:
        if unknown := sorted(set(overrides) - set(expected)):
            raise ConfigError(f"{source}: unknown file name(s) {', '.join(unknown)}; "
                              f"this dataset's files are: {', '.join(expected)}")
        expected.update(overrides)
    return expected


def _check(path: Path, digest: str | None, name: str, origin: str) -> None:
    if digest is not None:
        verify(path, digest, name, origin)
    else:
        log.warning("%s: no official checksum is published, so these bytes were NOT verified; "
                    "their digest is %s (pin it with --checksums FILE)", name, file_digest(path, "sha256"))


def _from_disk(dataset: str, remotes: list[Remote], source: Path) -> dict[str, Path]:
    if source.is_file():
        if len(remotes) != 1:
            raise InputError(f"--from {source}: {dataset} has {len(remotes)} files; pass a directory "
                             f"holding {', '.join(r.name for r in remotes)}")
        return {remotes[0].name: source}
    if not source.is_dir():
        from pipeline.core.inputfile import InputRefused, check_regular

        try:
            check_regular(source)  # a FIFO or device says what it is, rather than "no such file"
        except InputRefused as err:
            raise InputError(f"--from {source}: {err.detail}") from None
    missing = [r.name for r in remotes if not (source / r.name).is_file()]
    if missing:
        raise InputError(f"--from {source}: missing {', '.join(missing)} (the upstream file names)")
    return {r.name: source / r.name for r in remotes}


def _download(remote: Remote, urls: list[str], dest: Path, opts: FetchOptions) -> str:
    """Fetch into ``dest`` from the first URL that answers; return that URL."""
    errors = []
    for url in urls:
        try:
            fetch_url(url, dest, remote.name, opts.retries, opts.backoff, opts.timeout, opts.min_rate,
                      opts.rate_window)
            return url
        except DownloadError as err:
            errors.append(str(err))
    raise DownloadError(errors[0] if len(errors) == 1 else
                        f"every URL for {remote.name} failed:\n  " + "\n  ".join(errors))


def obtain(dataset: str, remotes: list[Remote], opts: FetchOptions,
           fetch_file: Callable[[Remote, Path, FetchOptions], str] | None = None) -> dict[str, Path]:
    """Verified local paths of ``remotes``, keyed by upstream file name.

    ``fetch_file(remote, dest, opts)`` writes a file missing from the cache to ``dest`` and
    returns where it came from (default: HTTP from the mirror or the upstream URLs).
    """
    expected = _expected(remotes, opts)
    if opts.source is not None:
        paths = _from_disk(dataset, remotes, Path(opts.source))
        for name, path in paths.items():
            _check(path, expected[name], name, str(path))
        return paths
    paths = {}
    for remote in remotes:
        dest = cache_root(opts) / dataset / remote.name
        digest = expected[remote.name]
        if dest.is_file():
            try:
                _check(dest, digest, remote.name, str(dest))
                paths[remote.name] = dest
                continue
            except DownloadError:  # a stale or foreign copy: fetch again
                dest.unlink()
        if fetch_file is not None:
            origin = fetch_file(remote, dest, opts)
        else:
            urls = [opts.mirror.rstrip("/") + "/" + remote.name] if opts.mirror else list(remote.urls)
            origin = _download(remote, urls, dest, opts)
        try:
            _check(dest, digest, remote.name, origin)
        except DownloadError:
            dest.unlink()  # never keep unverified bytes in the cache
            raise
        paths[remote.name] = dest
    return paths


def forget_bad_copies(err: BadDownload, dataset: str, remotes: Iterable[Remote], opts: FetchOptions) -> BadDownload:
    """Delete the cached copy ``err`` blames (every file of ``dataset`` when it names
    none) and return the error, saying so; ``--from`` files are the user's: kept."""
    if opts.source is not None:
        return err
    folder = (cache_root(opts) / dataset).resolve()
    candidates = [Path(err.path)] if err.path is not None else [folder / r.name for r in remotes]
    gone = []
    for path in candidates:
        if path.resolve().parent == folder and path.is_file():
            path.unlink()
            gone.append(str(path))
    if not gone:
        return err
    return BadDownload(f"{err} The cached copy ({', '.join(gone)}) was deleted, so the next run downloads it "
                       "again; if a --mirror served it, use another.", err.path)
