"""Safe extraction of tar and zip archives (no tar-slip, no zip-slip).

Every member is checked before anything is written: an absolute path, a drive
letter, a ``..`` component, a symbolic or hard link, a device or FIFO is refused
with an error naming the member. Only regular files and directories are
extracted, by copying their bytes to a path built from the checked name, so
nothing can land outside ``dest``. A truncated or corrupt archive is an error too.

Archive bombs: the members are counted and their declared sizes added up before
anything is written (a tar is scanned header by header, so one giant member is
refused at its header, before its data is decompressed); more than ``MAX_MEMBERS``
members, more than ``MAX_UNPACKED_BYTES`` in all, more than ``MAX_RATIO`` times the
archive's own size (a zip: per member; a compressed tar: in all, as its members
share one stream), or more than the free disk space, is refused. The declared
sizes bound what is written: zipfile and tarfile never read past them.

A file that is no archive at all (an HTML error page a server answered 200 with)
is named as such. Every refusal caused by the archive's bytes is a ``BadDownload``,
so a cached copy is deleted rather than failing every later run.
"""

from __future__ import annotations

import errno
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from pipeline.download.remote import BadDownload
from pipeline.core.errors import DownloadError

_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError)
MAX_UNPACKED_BYTES = 8 << 30  # 40x the largest catalog dataset unpacked (CIFAR-100, ~180 MiB)
MAX_RATIO = 500  # deflate peaks near 1,000:1 on zeros; images and arrays stay far below
MAX_MEMBERS = 10_000  # 25x the largest catalog archive (hymenoptera, ~400 entries)
_RATIO_FLOOR = 1 << 20  # below 1 MiB unpacked the ratio is not judged: tiny files compress wildly
# How the first bytes of each format begin: zip, gzip, bzip2, xz; a tar says "ustar" at 257.
_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def member_path(name: str, archive: str) -> PurePosixPath:
    """The relative path a member may be written to; DownloadError if it points outside."""
    posix = name.replace("\\", "/")  # a backslash is a separator on Windows: judge it as one
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise _unsafe(archive, name, "absolute path")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, name, "'..' path component")
    if not parts:
        raise _unsafe(archive, name, "empty path")
    return PurePosixPath(*parts)


def _unsafe(archive: str, member: str, why: str) -> DownloadError:
    return BadDownload(f"{archive}: refusing unsafe archive member {member!r} ({why}); nothing "
                         "was extracted. The archive is not the official one: fetch it again "
                         "from the upstream URL or a trusted --mirror.")


def _corrupt(archive: str, err: BaseException) -> DownloadError:
    why = " ".join(str(err).split())  # tarfile's message spans lines
    return BadDownload(f"{archive}: truncated or corrupt archive ({type(err).__name__}: {why}). "
                         "The bytes on disk are bad even if a checksum matched them "
                         "(--checksums/--from): fetch the file again.")


def _too_big(archive: str, total: int, member: str) -> DownloadError:
    return BadDownload(f"{archive}: refusing to unpack more than {MAX_UNPACKED_BYTES / 2**30:.0f} GiB "
                         f"(at least {total / 2**30:.1f} GiB declared by member {member!r}); an archive "
                         "bomb or not the official archive: fetch it again from a trusted source.")


def _too_many(archive: str, member: str) -> DownloadError:
    return _unsafe(archive, member, f"member number {MAX_MEMBERS + 1}, above the limit of {MAX_MEMBERS} "
                                    "members: an archive bomb")


def _tar_plan(tf: tarfile.TarFile, archive: str, packed: int) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    """Check every header (``packed``: the archive's size on disk) before anything is written."""
    plan, total = [], 0
    for m in tf:  # lazily: a giant member is refused at its header, before its data is read
        if len(plan) == MAX_MEMBERS:
            raise _too_many(archive, m.name)
        total += m.size
        if total > MAX_UNPACKED_BYTES:
            raise _too_big(archive, total, m.name)
        if total > _RATIO_FLOOR and total > MAX_RATIO * max(packed, 1):
            raise _unsafe(archive, m.name, f"the members up to it declare {total} bytes, {total / max(packed, 1):.0f}"
                          f" times the archive's {packed} bytes, above {MAX_RATIO}: an archive bomb")
        rel = member_path(m.name, archive)
        if m.issym() or m.islnk():
            raise _unsafe(archive, m.name, f"{'symbolic' if m.issym() else 'hard'} link to {m.linkname!r}")
        if not (m.isfile() or m.isdir()):
            raise _unsafe(archive, m.name, "device, FIFO or other special file")
        plan.append((m, rel))
    return plan


def _zip_plan(zf: zipfile.ZipFile, archive: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    plan, total = [], 0
    for info in zf.infolist():
        if len(plan) == MAX_MEMBERS:
            raise _too_many(archive, info.filename)
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise _too_big(archive, total, info.filename)
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _unsafe(archive, info.filename, f"inflates {info.file_size / max(info.compress_size, 1):.0f}"
                          f" times, above {MAX_RATIO}: an archive bomb")
        rel = member_path(info.filename, archive)
        kind = stat.S_IFMT(info.external_attr >> 16)  # Unix mode, when the zip was made on Unix
        if kind == stat.S_IFLNK:
            raise _unsafe(archive, info.filename, "symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _unsafe(archive, info.filename, "device, FIFO or other special file")
        plan.append((info, rel))
    return plan


def _write(dest: Path, rel: PurePosixPath, is_dir: bool, open_member) -> None:
    target = dest.joinpath(*rel.parts)
    if is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_member() as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _check_space(dest: Path, needed: int, archive: str) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DownloadError(f"{archive} unpacks to {needed / 2**20:.1f} MiB but {dest} has only "
                            f"{free / 2**20:.1f} MiB free: free some space and run again")


def _check_is_archive(archive: Path, label: str) -> None:
    with open(archive, "rb") as f:
        head = f.read(512)
    if head.startswith(_MAGIC) or head[257:262] == b"ustar" or zipfile.is_zipfile(archive):
        return
    text = head.lstrip().lower()
    what = ("an HTML page (a server's error or login page, answered as if it were the file)"
            if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) else
            "empty" if not head else f"it begins {head[:16]!r}")
    raise BadDownload(f"{label}: not a zip or tar archive: {what}. The server or mirror did not send the "
                      "dataset's file: fetch it again from the upstream URL or a trusted --mirror.", archive)


def safe_extract(archive: Path, dest: Path, keep: Callable[[PurePosixPath], bool] | None = None) -> Path:
    """Extract a tar (any compression) or zip ``archive`` into ``dest``; return ``dest``.

    ``keep`` chooses the members written by their checked path (default: all); every
    member is checked all the same, so an unsafe archive is refused whatever is kept.
    Every refusal caused by the archive's bytes is a ``BadDownload`` naming ``archive``.
    """
    archive, dest = Path(archive), Path(dest)
    label = archive.name
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _check_is_archive(archive, label)
        return _extract(archive, dest, label, keep or (lambda rel: True))
    except BadDownload as err:
        err.path = archive
        raise


def _extract(archive: Path, dest: Path, label: str, keep: Callable[[PurePosixPath], bool]) -> Path:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                plan = [(info, rel) for info, rel in _zip_plan(zf, label) if keep(rel)]
                _check_space(dest, sum(info.file_size for info, _ in plan), label)
                for info, rel in plan:
                    _write(dest, rel, info.is_dir(), lambda info=info: zf.open(info))
        else:
            with tarfile.open(archive, "r:*") as tf:
                tplan = [(m, rel) for m, rel in _tar_plan(tf, label, archive.stat().st_size) if keep(rel)]
                _check_space(dest, sum(m.size for m, _ in tplan), label)
                for m, rel in tplan:
                    _write(dest, rel, m.isdir(), lambda m=m: tf.extractfile(m))
    except _CORRUPT as err:
        raise _corrupt(label, err) from None
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DownloadError(f"disk full while extracting {label} into {dest}: free some space") from None
        if err.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise BadDownload(f"{label}: members clash ({err}); the archive is malformed") from None
        raise
    return dest
